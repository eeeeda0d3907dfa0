"""The librdkafka range reader against the real broker: exactly the planned offsets, in order,
and no request for more records than the range still holds (such a request makes
``consume()`` sit out its whole timeout at the end of every range: 1 s per partition)."""

from __future__ import annotations

import uuid

import confluent_kafka
import pytest

from lae.archive.plan import PartitionPlan
from lae.archive.reader import read_range_confluent
from lae.kafka import LogProducer, TopicSpec, ensure_topics

pytestmark = pytest.mark.integration


class RecordingConsumer(confluent_kafka.Consumer):
    """The real consumer; only notes what each consume() call asked for."""

    calls: list[tuple[int, int]] = []  # (records asked for, records returned)

    def consume(self, num_messages=1, timeout=-1):
        got = super().consume(num_messages=num_messages, timeout=timeout)
        records = sum(1 for m in got if m.error() is None)
        RecordingConsumer.calls.append((num_messages, records))
        return got


@pytest.mark.parametrize(("start", "end"), [(0, 50), (10, 40), (49, 50)])
def test_reads_exactly_the_range_and_never_asks_past_its_end(kafka_service, settings,
                                                            monkeypatch, start, end):
    topic = f"lae.test.archive.reader.{uuid.uuid4().hex[:10]}"
    ensure_topics(settings, specs=[TopicSpec(topic, 1, 1, {})])
    with LogProducer(settings, topic=topic) as producer:
        for i in range(50):
            producer.send(b'{"n": %d}' % i, b"svc")
    monkeypatch.setattr(confluent_kafka, "Consumer", RecordingConsumer)
    RecordingConsumer.calls = []

    batches = list(read_range_confluent(settings.kafka_bootstrap,
                                        PartitionPlan(topic, 0, start, end),
                                        group_id=f"g-{topic}", batch=16))

    offsets = [o for b in batches for o in b.offsets]
    assert offsets == list(range(start, end))
    assert [v for b in batches for v in b.values] == [b'{"n": %d}' % i for i in offsets]
    assert RecordingConsumer.calls, "the reader did not go through confluent_kafka.Consumer"
    remaining = end - start  # records of the range not yet returned
    for asked, returned in RecordingConsumer.calls:
        assert 1 <= asked <= min(16, remaining)
        remaining -= min(returned, remaining)
    assert remaining == 0
