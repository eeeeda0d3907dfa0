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


def test_topic_specs_from_settings(settings, monkeypatch):
    for name in ("RAW_RETENTION_MS", "DLQ_RETENTION_MS", "DLQ_PARTITIONS",
                 "KAFKA_MIN_INSYNC_REPLICAS"):
        monkeypatch.delenv(f"LAE_{name}", raising=False)
    raw, dlq = topic_specs(replace(settings, raw_partitions=6, kafka_replication_factor=1))
    assert (raw.name, raw.partitions, raw.replication_factor) == (settings.raw_topic, 6, 1)
    assert raw.configs == {"retention.ms": str(7 * 86_400_000), "min.insync.replicas": "1"}
    assert (dlq.name, dlq.partitions) == (settings.dlq_topic, 1)
    assert int(dlq.configs["retention.ms"]) > int(raw.configs["retention.ms"])

    monkeypatch.setenv("LAE_RAW_RETENTION_MS", "60000")
    monkeypatch.setenv("LAE_DLQ_PARTITIONS", "3")
    raw, dlq = topic_specs(replace(settings, kafka_replication_factor=3))
    assert raw.configs == {"retention.ms": "60000", "min.insync.replicas": "2"}
    assert dlq.partitions == 3 and dlq.replication_factor == 3


def test_min_insync_replicas_cannot_exceed_replication(settings, monkeypatch):
    monkeypatch.setenv("LAE_KAFKA_MIN_INSYNC_REPLICAS", "2")
    with pytest.raises(ValueError, match="exceeds replication factor 1"):
        topic_specs(replace(settings, kafka_replication_factor=1))


def test_stats_pending():
    assert DeliveryStats(sent=10, delivered=6, failed=1, buffered_bytes=0).pending == 3


def test_no_broker_fails_fast_and_clearly(settings):
    from kafka.errors import NoBrokersAvailable

    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(NoBrokersAvailable):
        LogProducer(settings, bootstrap_servers=f"127.0.0.1:{port}", bootstrap_timeout_ms=1_000)
    assert time.monotonic() - started < 10
