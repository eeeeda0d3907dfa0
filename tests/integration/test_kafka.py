"""The local Kafka: keyed round trip on logs.raw, topic layout, data kept across down/up."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient

from lae.stack.process import port_open

pytestmark = pytest.mark.integration


def _produce(settings, records: list[tuple[bytes, bytes]]) -> list[tuple[int, int]]:
    """Send (key, value) records to logs.raw; returns their (partition, offset)."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                             enable_idempotence=True, compression_type="gzip")
    try:
        futures = [producer.send(settings.raw_topic, key=k, value=v) for k, v in records]
        producer.flush(timeout=30)
        return [(m.partition, m.offset) for m in (f.get(timeout=30) for f in futures)]
    finally:
        producer.close(timeout=10)


def _read_at(settings, partition: int, offset: int) -> tuple[bytes, bytes]:
    tp = TopicPartition(settings.raw_topic, partition)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                             enable_auto_commit=False, consumer_timeout_ms=15000)
    try:
        consumer.assign([tp])
        consumer.seek(tp, offset)
        for record in consumer:
            return record.key, record.value
        raise AssertionError(f"nothing at {settings.raw_topic}[{partition}]@{offset}")
    finally:
        consumer.close()


def _partition_counts(settings) -> dict[str, int]:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        topics = admin.describe_topics([settings.raw_topic, settings.dlq_topic])
    finally:
        admin.close()
    return {t["name"]: len(t["partitions"]) for t in topics if t["error_code"] == 0}


def test_topics_exist_with_configured_partitions(kafka_service, settings):
    counts = _partition_counts(settings)
    assert counts[settings.raw_topic] == settings.raw_partitions
    assert settings.dlq_topic in counts


def test_keyed_round_trip(kafka_service, settings):
    run = uuid.uuid4().hex
    keys = [f"svc-{i}".encode() for i in range(4)]
    records = [(k, f"{run}:{k.decode()}:{n}".encode()) for n in range(3) for k in keys]
    coords = _produce(settings, records)

    # One key, one partition: a service's events keep their order.
    partition_of: dict[bytes, set[int]] = {}
    for (key, _), (partition, _) in zip(records, coords, strict=True):
        partition_of.setdefault(key, set()).add(partition)
    assert all(len(parts) == 1 for parts in partition_of.values())

    for (key, value), (partition, offset) in zip(records, coords, strict=True):
        assert _read_at(settings, partition, offset) == (key, value)


def test_message_and_topics_survive_down_up(kafka_service, settings):
    value = f"survive-{uuid.uuid4().hex}".encode()
    [(partition, offset)] = _produce(settings, [(b"svc-restart", value)])

    assert kafka_service.down()
    assert not kafka_service.process.is_running()
    assert not port_open(settings.host, settings.kafka_port)

    kafka_service.up()
    assert _read_at(settings, partition, offset) == (b"svc-restart", value)
    assert _partition_counts(settings)[settings.raw_topic] == settings.raw_partitions
