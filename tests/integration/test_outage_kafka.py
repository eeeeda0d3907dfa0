"""Kafka stops while log shippers keep POSTing to the API server (issue 9, item 3c).

The single broker of the test stack is stopped (``lae.stack`` service, SIGTERM) while three
shipper threads send generator events to POST /v1/logs, and started again a few seconds later.
What must hold:

- every answer is 202 (everything acknowledged by Kafka) or 503 with Retry-After (nothing
  acknowledged, send it again); no other status, no dropped connection;
- no partial acks: every event of a 202 is in logs.raw, the same event as sent; an event whose
  request was answered 202 at the first attempt is there exactly once; re-sent events at most
  once per attempt (the documented at-least-once contract; the batch layer de-duplicates);
- recovery: once the broker is back, the shippers' retries are acknowledged and every event
  gets in.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime

import pytest

from lae import schema
from tests.integration.faults import (
    ApiServer,
    Shipper,
    event_id,
    generator_batches,
    record_figures,
)

pytestmark = pytest.mark.integration

BATCHES, BATCH_SIZE = 60, 50
OUTAGE_S = 6.0


def _end_offsets(bootstrap: str, topic: str) -> dict:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return consumer.end_offsets(parts)
    finally:
        consumer.close()


def _read_from(bootstrap: str, start: dict, wanted: set[str],
               timeout: float = 120) -> tuple[Counter, dict[str, bytes]]:
    """Copies per wanted event_id among the records after ``start``, until all are seen."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        end = consumer.end_offsets(list(start))
        found: Counter = Counter()
        values: dict[str, bytes] = {}
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end[tp] for tp in start):
            assert time.monotonic() < deadline, f"read {sum(found.values())} records"
            for tp, records in consumer.poll(timeout_ms=500).items():
                for r in records:
                    if r.offset >= end[tp]:
                        continue
                    try:
                        eid = event_id(r.value)
                    except (ValueError, KeyError, TypeError):
                        continue  # other tests' garbage on the shared topic
                    if eid in wanted:
                        found[eid] += 1
                        values[eid] = r.value
        return found, values
    finally:
        consumer.close()


def test_kafka_outage_under_load_503_then_recovery(settings, kafka_service):
    batches = generator_batches(57, BATCHES, BATCH_SIZE, datetime(2021, 8, 1))
    produced = {event_id(p): p for b in batches for p in b}
    start = _end_offsets(settings.kafka_bootstrap, settings.raw_topic)
    with ApiServer(settings, ack_timeout_s=3.0, retry_after_s=1) as api:
        shipper = Shipper(api.url, batches, threads=3, give_up_s=240).start()
        deadline = time.monotonic() + 120
        while shipper.done_batches < BATCHES // 4:
            assert time.monotonic() < deadline, shipper.stats.statuses
            time.sleep(0.05)
        acked_before = shipper.done_batches
        t0 = time.monotonic()
        try:
            kafka_service.down()
            stopped_s = time.monotonic() - t0
            time.sleep(OUTAGE_S)
        finally:
            kafka_service.up()
        back_at = time.monotonic()
        stats = shipper.join(timeout=400)
        done_at = time.monotonic()
    assert not stats.errors, stats.errors[:5]
    assert set(stats.statuses) <= {202, 503}, stats.statuses
    assert stats.statuses[503] > 0, "the outage was never seen by a request"
    assert stats.retry_after_missing == 0
    assert stats.acked == set(produced)

    copies, values = _read_from(settings.kafka_bootstrap, start, set(produced))
    assert set(copies) == set(produced), f"{len(set(produced) - set(copies))} acked, not in Kafka"
    for eid, value in values.items():
        assert schema.validate(value) == schema.validate(produced[eid])
    first_try = [e for e in produced if stats.attempts[e] == 1]
    assert all(copies[e] == 1 for e in first_try), "producer-level duplicates"
    assert all(copies[e] <= stats.attempts[e] for e in produced)

    record_figures(
        "kafka_outage_under_load",
        fault=f"the broker stopped (SIGTERM) for {OUTAGE_S:.0f} s + its stop/start time, "
              f"after {acked_before} of {BATCHES} requests were acknowledged",
        load=f"{len(produced)} events in {BATCHES} POST /v1/logs requests of {BATCH_SIZE}, "
             "3 shipper threads", events_in=len(produced), acknowledged=len(stats.acked),
        http_statuses=dict(stats.statuses), broker_stop_s=round(stopped_s, 1),
        drained_after_restart_s=round(done_at - back_at, 1),
        kafka_records=sum(copies.values()), lost=len(set(produced) - set(copies)),
        producer_duplicates=sum(copies[e] - 1 for e in first_try),
        resent_copies=sum(copies.values()) - len(produced))
