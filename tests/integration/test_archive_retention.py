"""The retention guard against the real broker: data deleted before it was archived makes the
plan fail, naming the partition and the lost range, and never resets the group's offset."""

from __future__ import annotations

import uuid

import pytest
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient

from lae.archive.plan import new_consumer, plan_partitions
from lae.archive.retention import RetentionError
from lae.kafka import LogProducer, TopicSpec, ensure_topics

pytestmark = pytest.mark.integration


def test_deleted_unarchived_range_fails_loudly(kafka_service, settings):
    topic = f"lae.test.archive.retention.{uuid.uuid4().hex[:10]}"
    ensure_topics(settings, specs=[TopicSpec(topic, 1, 1, {})])
    with LogProducer(settings, topic=topic) as producer:
        for i in range(100):
            producer.send(b'{"x": %d}' % i, b"svc")
    group = f"g-{topic}"
    consumer = new_consumer(settings.kafka_bootstrap, group)
    try:
        # First run: plan [0, 100) and store it, but "crash" before archiving anything.
        (plan,) = plan_partitions(consumer, topic, max_rows=10, retention_ms=None)
        assert (plan.start, plan.end) == (0, 100)
        # Retention (here: an explicit delete) removes offsets [0, 40) meanwhile.
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        try:
            admin.delete_records({TopicPartition(topic, 0): 40})
        finally:
            admin.close()
        for _ in range(2):  # and again: the failure does not "fix itself" by resetting
            with pytest.raises(RetentionError) as err:
                plan_partitions(consumer, topic, max_rows=10, retention_ms=None)
            assert err.value.partition == 0 and err.value.lost == (0, 40)
            assert "[0, 40)" in str(err.value) and "partition 0" in str(err.value)
            assert consumer.committed(TopicPartition(topic, 0)) == 0
    finally:
        consumer.close()


def test_old_unarchived_data_is_at_risk(kafka_service, settings):
    topic = f"lae.test.archive.retention.{uuid.uuid4().hex[:10]}"
    ensure_topics(settings, specs=[TopicSpec(topic, 1, 1, {})])
    with LogProducer(settings, topic=topic) as producer:
        producer.send(b"{}", b"svc")
    consumer = new_consumer(settings.kafka_bootstrap, f"g-{topic}")
    try:
        # retention 1 h, margin 1 h: any unarchived message is already inside the margin.
        with pytest.raises(RetentionError) as err:
            plan_partitions(consumer, topic, retention_ms=3_600_000, margin_ms=3_600_000)
        assert err.value.lost is None and "at risk" in str(err.value)
        assert consumer.committed(TopicPartition(topic, 0)) is None, "nothing stored"
    finally:
        consumer.close()


def test_planning_consumer_peeks_a_batch_bigger_than_its_fetch(kafka_service, settings):
    """The planning consumer fetches 64 KiB, yet the retention guard's peek still reads a
    record whose batch is bigger: the broker returns a whole first batch whatever the limit."""
    from kafka import KafkaProducer

    from lae.archive.plan import PLAN_FETCH_BYTES, peek_timestamp, planning_consumer

    topic = f"lae.test.archive.peek.{uuid.uuid4().hex[:10]}"
    ensure_topics(settings, specs=[TopicSpec(topic, 1, 1, {})])
    big = b"x" * (4 * PLAN_FETCH_BYTES)
    stamps = [1_700_000_000_000 + i for i in range(3)]
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap,
                             max_request_size=8 * len(big))
    try:
        for ts in stamps:
            producer.send(topic, big, timestamp_ms=ts)
        producer.flush()
    finally:
        producer.close()
    consumer = planning_consumer(settings.kafka_bootstrap, f"g-{topic}")
    try:
        tp = TopicPartition(topic, 0)
        assert [peek_timestamp(consumer, tp, offset) for offset in (0, 1, 2)] == stamps
    finally:
        consumer.close()
