"""LogProducer, ensure_topics and send_dlq against the real local broker.

Every producer test runs with both clients (the ``client`` fixture sets LAE_KAFKA_CLIENT).
Each test uses its own topic so counts are exact whatever else runs on the broker. The
broker-outage test comes last because it stops the broker.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections import Counter

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from lae.kafka import (
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
    BufferFullError,
    DeliveryError,
    LogProducer,
    TopicSpec,
    ensure_topics,
    parse_dlq_headers,
    send_dlq,
    topic_message_count,
    topic_specs,
)
from tests.integration.helpers import restart_broker_mid_run

pytestmark = pytest.mark.integration


def _topic(prefix: str = "lae.test.producer") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


def _create(settings, topic: str, partitions: int = 3, **configs: str) -> None:
    ensure_topics(settings, specs=[TopicSpec(topic, partitions, 1, configs)])


def _read_all(settings, topic: str, expected: int, timeout_ms: int = 20_000):
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=timeout_ms)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(parts)
        consumer.seek_to_beginning()
        records = []
        for record in consumer:
            records.append(record)
            if len(records) >= expected:
                break
        return records
    finally:
        consumer.close()


@pytest.fixture(params=["confluent", "kafka-python"])
def client(request, monkeypatch) -> str:
    monkeypatch.setenv("LAE_KAFKA_CLIENT", request.param)
    return request.param


@pytest.fixture
def admin(kafka_service, settings):
    client = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    yield client
    client.close()


def test_delivers_keyed_records_and_counts_them(kafka_service, settings, client):
    topic = _topic()
    _create(settings, topic, partitions=4)
    with LogProducer(settings, topic=topic) as producer:
        futures = [producer.send(f"v{i}".encode(), key=f"svc-{i % 5}".encode())
                   for i in range(2_000)]
        stats = producer.flush()
    assert (stats.sent, stats.delivered, stats.failed, stats.pending) == (2_000, 2_000, 0, 0)
    assert stats.buffered_bytes == 0
    by_key: dict[bytes, set[int]] = {}
    for i, f in enumerate(futures):
        by_key.setdefault(f"svc-{i % 5}".encode(), set()).add(f.value.partition)
    assert all(len(parts) == 1 for parts in by_key.values()), "one key, one partition"
    assert topic_message_count(settings, topic) == 2_000


def test_partitioning_matches_kafka_python_default(kafka_service, settings, client):
    """Both backends place keys exactly where kafka-python's Java-compatible default does
    (the memoised partitioner; librdkafka's murmur2_random)."""
    from kafka import KafkaProducer

    topic = _topic()
    _create(settings, topic, partitions=6)
    keys = [f"service-{i}".encode() for i in range(40)]
    plain = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        expected = [plain.send(topic, b"x", key=k).get(timeout=30).partition for k in keys]
    finally:
        plain.close()
    with LogProducer(settings, topic=topic) as producer:
        got = [producer.send(b"y", key=k) for k in keys]
        producer.flush()
    assert [f.value.partition for f in got] == expected


def test_both_clients_put_a_key_on_the_same_partition(kafka_service, settings):
    topic = _topic()
    _create(settings, topic, partitions=6)
    keys = [b"search", b"checkout", b"", b"a-much-longer-service.name_42",
            *(f"svc-{i}".encode() for i in range(30))]
    placed = {}
    for name in ("confluent", "kafka-python"):
        with LogProducer(settings, topic=topic, client=name) as producer:
            futures = [producer.send(b"v", key=k) for k in keys]
            producer.flush()
        placed[name] = [f.value.partition for f in futures]
    assert placed["confluent"] == placed["kafka-python"]
    assert len(set(placed["confluent"])) > 1, "keys spread over partitions"


def test_producer_is_idempotent_with_acks_all(kafka_service, settings, client):
    with LogProducer(settings, topic=_topic()) as producer:
        assert producer.client == client
        if client == "kafka-python":
            assert producer.config["acks"] == "all"
            assert producer._producer.config["enable_idempotence"] is True
            assert producer._producer.config["acks"] == -1
        else:
            assert producer.config["acks"] == "all"
            assert producer.config["enable.idempotence"] is True
        producer.flush()


def test_broker_rejection_is_counted_and_raised(kafka_service, settings, client):
    topic = _topic()
    # Records above the topic's max.message.bytes are refused by the broker, not the client.
    _create(settings, topic, partitions=1, **{"max.message.bytes": "2000"})
    producer = LogProducer(settings, topic=topic, compression_type=None, linger_ms=0)
    try:
        producer.send(b"small", key=b"k")
        producer.flush()
        producer.send(os.urandom(10_000), key=b"k")
        with pytest.raises(DeliveryError) as caught:
            producer.flush()
        stats = caught.value.stats
        assert (stats.sent, stats.delivered, stats.failed) == (2, 1, 1)
        # kafka-python: MessageSizeTooLargeError; librdkafka: MSG_SIZE_TOO_LARGE
        assert "toolarge" in re.sub("[^a-z]", "", stats.last_error.lower())
        assert producer.flush().failed == 1  # reported once, still visible in the stats
    finally:
        producer.close(raise_on_failure=False)


def _await_metadata(producer, topic: str, timeout_s: float = 60.0) -> None:
    """kafka-python's send() also waits for the topic's metadata within max_block_ms: on a
    loaded machine a fresh producer's first lookup took longer than this test's 300 ms (CI:
    KafkaTimeoutError "Failed to update metadata after 0.3 secs" before any buffering). The
    lookup is done here first, so the test measures the buffer bound only. (librdkafka's
    produce() does not wait for metadata: nothing to do for confluent-kafka.)"""
    from kafka.errors import KafkaTimeoutError

    if producer.client != "kafka-python":
        return
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            producer._producer.partitions_for(topic)  # noqa: SLF001 - the client's own lookup
            return
        except KafkaTimeoutError:
            assert time.monotonic() < deadline, f"no metadata for {topic} in {timeout_s} s"


def test_full_buffer_blocks_then_raises(kafka_service, settings, client):
    topic = _topic()
    _create(settings, topic, partitions=1)
    # A long linger keeps records buffered, so the 20 kB bound is reached deterministically.
    producer = LogProducer(settings, topic=topic, linger_ms=30_000, batch_size=1024 * 1024,
                           max_buffer_bytes=20_000, max_block_ms=300,
                           delivery_timeout_ms=120_000)
    try:
        _await_metadata(producer, topic)
        sent = 0
        with pytest.raises(BufferFullError) as caught:
            for _ in range(100):
                producer.send(b"x" * 1_000, key=b"k")
                sent += 1
        assert 10 <= sent < 25
        assert caught.value.stats.sent == sent  # the refused record was not sent
        stats = producer.flush()
        assert stats.delivered == sent and stats.buffered_bytes == 0
        producer.send(b"x" * 1_000, key=b"k")  # space again once acknowledged
    finally:
        producer.close()
    assert topic_message_count(settings, topic) == sent + 1


def test_send_dlq_keeps_raw_bytes_and_says_why(kafka_service, settings, client):
    topic = _topic("lae.test.dlq")
    _create(settings, topic, partitions=1)
    raw = b'{"event_id": 12, broken'
    with LogProducer(settings, topic=topic) as producer:
        send_dlq(producer, raw, "invalid_json", source_topic="logs.raw", source_partition=3,
                 source_offset=1234, key=b"search", dlq_topic=topic)
        send_dlq(producer, b"", "invalid_json", dlq_topic=topic)
        producer.flush()
    first, second = _read_all(settings, topic, 2)
    assert first.value == raw and first.key == b"search"
    headers = parse_dlq_headers(first.headers)
    assert headers == {DLQ_REASON: "invalid_json", DLQ_SOURCE_TOPIC: "logs.raw",
                       DLQ_SOURCE_PARTITION: "3", DLQ_SOURCE_OFFSET: "1234"}
    assert second.value == b"" and parse_dlq_headers(second.headers) == {DLQ_REASON: "invalid_json"}


def _topic_config(admin, topic: str) -> dict[str, str]:
    result = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
    return {name: c["value"] for name, c in result["topic"][topic].items()}


def test_ensure_topics_creates_with_configs_and_is_idempotent(kafka_service, settings, admin,
                                                              monkeypatch):
    raw, dlq = _topic("lae.test.raw"), _topic("lae.test.dlq")
    monkeypatch.setenv("LAE_RAW_RETENTION_MS", "3600000")
    monkeypatch.setenv("LAE_RAW_TOPIC", raw)
    monkeypatch.setenv("LAE_DLQ_TOPIC", dlq)
    monkeypatch.setenv("LAE_RAW_PARTITIONS", "4")
    from lae.config import get_settings

    local = get_settings()
    first = ensure_topics(local, admin)
    assert [(r.name, r.created, r.partitions, r.warnings) for r in first] == [
        (raw, True, 4, []), (dlq, True, 1, [])]
    config = _topic_config(admin, raw)
    assert config["retention.ms"] == "3600000" and config["min.insync.replicas"] == "1"
    assert _topic_config(admin, dlq)["retention.ms"] == str(30 * 24 * 3600 * 1000)

    again = ensure_topics(local, admin)
    assert [r.created for r in again] == [False, False]

    monkeypatch.setenv("LAE_RAW_PARTITIONS", "8")
    grown = ensure_topics(get_settings(), admin)
    assert grown[0].partitions == 4 and grown[0].expected_partitions == 8
    assert "not growing" in grown[0].warnings[0]


def test_topic_specs_follow_replication_factor(settings):
    from dataclasses import replace

    cluster = replace(settings, kafka_replication_factor=3, kafka_min_insync_replicas=0)
    raw, dlq = topic_specs(cluster)
    assert raw.replication_factor == 3 and raw.configs["min.insync.replicas"] == "2"
    with pytest.raises(ValueError):
        topic_specs(replace(cluster, kafka_min_insync_replicas=4))


def test_broker_outage_mid_run_loses_and_duplicates_nothing(kafka_service, settings, client):
    """The broker stops while records are in flight and comes back: every record lands once."""
    topic = _topic()
    _create(settings, topic, partitions=6)
    count, rate = 12_000, 2_000.0
    # delivery_timeout_ms bounds the retries and max_block_ms a send on a full buffer: both
    # well above the outage so the producer rides it out.
    producer = LogProducer(settings, topic=topic, delivery_timeout_ms=300_000,
                           max_block_ms=300_000, request_timeout_ms=10_000,
                           reconnect_backoff_max_ms=1_000)
    futures: list = []
    errors: list = []

    def run():
        try:
            started = time.monotonic()
            for i in range(count):
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                value = json.dumps({"event_id": f"e-{i}", "n": i}).encode()
                futures.append(producer.send(value, key=f"svc-{i % 7}".encode()))
            producer.flush()
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)

    worker = threading.Thread(target=run, name="send", daemon=True)
    worker.start()
    try:
        down_at = restart_broker_mid_run(kafka_service, producer, worker, count, errors)
    finally:
        stats = producer.close(raise_on_failure=False)
    assert not errors, errors
    assert (stats.sent, stats.delivered, stats.failed) == (count, count, 0), stats
    assert down_at.delivered < count, "the outage happened while records were still sent"
    assert all(f.succeeded() for f in futures)

    records = _read_all(settings, topic, count + 1, timeout_ms=5_000)  # +1: find extras too
    assert topic_message_count(settings, topic) == count
    ids = Counter(json.loads(r.value)["event_id"] for r in records)
    assert len(ids) == count and set(ids.values()) == {1}, "no loss, no duplicate"
    where = {(r.partition, r.offset): json.loads(r.value)["event_id"] for r in records}
    assert all(where[(f.value.partition, f.value.offset)] == f"e-{i}"
               for i, f in enumerate(futures)), "the futures say where each record is"
