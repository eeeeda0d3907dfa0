"""Bring the local stack up and down as a whole, in dependency order."""

from __future__ import annotations

import importlib

from lae.config import Settings
from lae.stack.base import Service

# name -> "module:Class". Order matters: Airflow comes last because its connections point at
# the others. Imported lazily so that one service's heavy imports never slow down another's.
SERVICES: dict[str, str] = {
    "s3": "lae.stack.s3:S3Service",
    "kafka": "lae.stack.kafka:KafkaService",
    "cassandra": "lae.stack.cassandra:CassandraService",
    "airflow": "lae.stack.airflow:AirflowService",
}


def get_service(name: str, settings: Settings) -> Service:
    try:
        target = SERVICES[name]
    except KeyError:
        raise ValueError(f"unknown service {name!r}; known: {', '.join(SERVICES)}") from None
    if name == "kafka":
        return _kafka(settings)
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(settings)


def _kafka(settings: Settings) -> Service:
    """The one broker, or every node of the cluster that LAE_KAFKA_BROKERS (``--kafka-brokers``)
    asks for or the last ``up`` of this state dir recorded (so ``down`` stops all of them)."""
    from lae.stack.kafka import (
        KafkaClusterService,
        KafkaService,
        cluster_settings,
        recorded_brokers,
    )

    brokers = max(settings.kafka_brokers, recorded_brokers(settings))
    if brokers <= 1:
        return KafkaService(settings)
    return KafkaClusterService(cluster_settings(settings, brokers))
