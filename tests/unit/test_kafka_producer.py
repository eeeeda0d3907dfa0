"""Pure parts of lae.kafka: dead-letter headers, topic specs, stats; and the producer's
behaviour with no broker to talk to (a closed local port, not a mock)."""

from __future__ import annotations

import socket
import time
from dataclasses import replace

import pytest

from lae.kafka import (
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
    DeliveryStats,
    LogProducer,
    dlq_headers,
    parse_dlq_headers,
    topic_specs,
)


def test_dlq_headers_round_trip_and_skip_unknowns():
    headers = dlq_headers("missing_field:ts", source_topic="logs.raw", source_partition=0,
                          source_offset=42)
    assert all(isinstance(k, str) and isinstance(v, bytes) for k, v in headers)
    assert parse_dlq_headers(headers) == {DLQ_REASON: "missing_field:ts",
                                          DLQ_SOURCE_TOPIC: "logs.raw",
                                          DLQ_SOURCE_PARTITION: "0", DLQ_SOURCE_OFFSET: "42"}
    assert parse_dlq_headers(dlq_headers("invalid_json")) == {DLQ_REASON: "invalid_json"}


def test_topic_specs_from_settings(settings):
    raw, dlq = topic_specs(replace(settings, raw_partitions=6, kafka_replication_factor=1,
                                   raw_retention_ms=7 * 86_400_000, dlq_partitions=1,
                                   kafka_min_insync_replicas=0))
    assert (raw.name, raw.partitions, raw.replication_factor) == (settings.raw_topic, 6, 1)
    assert raw.configs == {"retention.ms": str(7 * 86_400_000), "min.insync.replicas": "1"}
    assert (dlq.name, dlq.partitions) == (settings.dlq_topic, 1)

    raw, dlq = topic_specs(replace(settings, kafka_replication_factor=3, raw_retention_ms=60000,
                                   dlq_partitions=3, kafka_min_insync_replicas=0))
    assert raw.configs == {"retention.ms": "60000", "min.insync.replicas": "2"}
    assert dlq.partitions == 3 and dlq.replication_factor == 3


def test_settings_read_topic_config_from_env(monkeypatch):
    from lae.config import get_settings

    monkeypatch.setenv("LAE_RAW_RETENTION_MS", "60000")
    monkeypatch.setenv("LAE_DLQ_PARTITIONS", "3")
    s = get_settings()
    assert (s.raw_retention_ms, s.dlq_partitions) == (60000, 3)
    assert s.dlq_retention_ms > s.raw_retention_ms  # quarantine outlives the raw topic


def test_min_insync_replicas_cannot_exceed_replication(settings):
    with pytest.raises(ValueError, match="exceeds replication factor 1"):
        topic_specs(replace(settings, kafka_replication_factor=1, kafka_min_insync_replicas=2))


def test_stats_pending():
    assert DeliveryStats(sent=10, delivered=6, failed=1, buffered_bytes=0).pending == 3


def test_no_broker_fails_fast_and_clearly(settings):
    from kafka.errors import KafkaTimeoutError

    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        LogProducer(settings, bootstrap_servers=f"127.0.0.1:{port}", bootstrap_timeout_ms=1_000)
    assert time.monotonic() - started < 10
