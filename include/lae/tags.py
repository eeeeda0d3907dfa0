"""The DAG tags LAE allows; tests/dags/test_dag_integrity.py rejects any other.

A closed list keeps the UI's tag filter useful: each tag names a layer of the architecture
(DESIGN.md) or an operational concern, so "show me everything in the speed layer" works.
"""

from __future__ import annotations

from enum import StrEnum


class Tag(StrEnum):
    INGESTION = "ingestion"  # getting events from Kafka into the master dataset
    BATCH = "batch"  # recomputing views from the master dataset
    SPEED = "speed"  # the streaming views and their supervision
    SERVING = "serving"  # merging batch and realtime views, drift
    OPS = "ops"  # housekeeping: cleanup, maintenance, backfills
    HEALTH = "health"  # checks that the services and data are alive
