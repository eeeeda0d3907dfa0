"""Pure parts of lae.kafka: dead-letter headers, topic specs, stats, the choice of client;
and the producer's behaviour, with each backend, with no broker to talk to (a closed local
port, not a mock)."""

from __future__ import annotations

import socket
import time
from dataclasses import replace

import pytest
from kafka.errors import KafkaTimeoutError

from lae.kafka import (
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
    BufferFullError,
    DeliveryStats,
    KafkaPythonLogProducer,
    LogProducer,
    dlq_headers,
    kafka_client,
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


@pytest.fixture(params=["confluent", "kafka-python"])
def client(request, monkeypatch) -> str:
    monkeypatch.setenv("LAE_KAFKA_CLIENT", request.param)
    return request.param


@pytest.fixture
def closed_port() -> str:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def test_client_choice(monkeypatch):
    monkeypatch.delenv("LAE_KAFKA_CLIENT", raising=False)
    assert kafka_client() == "confluent"  # the default, see lae.kafka's docstring
    monkeypatch.setenv("LAE_KAFKA_CLIENT", "kafka-python")
    assert kafka_client() == "kafka-python"
    assert kafka_client("confluent-kafka") == "confluent"  # an argument beats the env
    monkeypatch.setenv("LAE_KAFKA_CLIENT", "pykafka")
    with pytest.raises(ValueError, match="LAE_KAFKA_CLIENT"):
        kafka_client()


def test_log_producer_builds_the_chosen_backend(settings, client, closed_port):
    from lae.kafka_confluent import ConfluentLogProducer

    expected = ConfluentLogProducer if client == "confluent" else KafkaPythonLogProducer
    # kafka-python probes the broker version unless it is given one.
    producer = LogProducer(settings, bootstrap_servers=closed_port, api_version=(4, 0))
    try:
        assert type(producer) is expected and isinstance(producer, LogProducer)
        assert producer.client == client
        assert producer.stats().sent == 0
    finally:
        producer.close(timeout=0)


def test_no_broker_fails_fast_and_clearly(settings, client, closed_port):
    started = time.monotonic()
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        LogProducer(settings, bootstrap_servers=closed_port, bootstrap_timeout_ms=1_000)
    assert time.monotonic() - started < 10


def test_confluent_config_is_the_design_contract(settings, closed_port):
    producer = LogProducer(settings, client="confluent", bootstrap_servers=closed_port,
                           max_buffer_bytes=4 * 1024 * 1024, request_timeout_ms=7_000,
                           api_version=(4, 0), **{"socket.keepalive.enable": True})
    try:
        config = producer.config
        assert (config["acks"], config["enable.idempotence"]) == ("all", True)
        assert config["partitioner"] == "murmur2_random"  # Java's default for keyed records
        assert config["compression.type"] == "zstd"
        assert config["queue.buffering.max.kbytes"] == 4096
        assert config["request.timeout.ms"] == 7_000  # kafka-python name translated
        assert config["socket.keepalive.enable"] is True  # librdkafka name passed through
    finally:
        producer.close(timeout=0)
    with pytest.raises(TypeError, match="no confluent-kafka equivalent"):
        LogProducer(settings, client="confluent", bootstrap_servers=closed_port,
                    buffer_memory=1024)


def test_confluent_full_queue_blocks_then_raises_and_close_fails_the_rest(settings,
                                                                          closed_port):
    producer = LogProducer(settings, client="confluent", bootstrap_servers=closed_port,
                           max_buffer_bytes=8 * 1024, max_block_ms=200)
    sent = 0
    with pytest.raises(BufferFullError) as caught:
        for _ in range(100):
            producer.send(b"x" * 1_000, key=b"k")
            sent += 1
    assert 4 <= sent <= 8
    assert caught.value.stats.sent == sent  # the refused record was not sent
    stats = producer.close(timeout=0.2, raise_on_failure=False)
    # Nothing could be delivered: close gives up and counts every record as failed.
    assert (stats.sent, stats.delivered, stats.failed, stats.buffered_bytes) == (sent, 0, sent, 0)


def test_confluent_future_get_times_out_without_broker(settings, closed_port):
    producer = LogProducer(settings, client="confluent", bootstrap_servers=closed_port)
    try:
        future = producer.send(b"v", key=b"k")
        started = time.monotonic()
        with pytest.raises(KafkaTimeoutError):
            future.get(timeout=0.3)
        assert 0.3 <= time.monotonic() - started < 2
        assert not future.is_done and future.value is None
    finally:
        stats = producer.close(timeout=0, raise_on_failure=False)
    assert future.failed() and stats.failed == 1
