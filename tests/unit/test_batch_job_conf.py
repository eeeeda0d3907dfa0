"""The batch job's JVM-start properties come from the settings (LAE_BATCH_DRIVER_MEMORY)."""

from __future__ import annotations

from lae.batch.job import session_conf
from lae.config import get_settings


def test_the_driver_heap_is_the_configured_one(monkeypatch):
    monkeypatch.setenv("LAE_BATCH_DRIVER_MEMORY", "3g")
    assert session_conf(get_settings()) == {"spark.driver.memory": "3g"}
