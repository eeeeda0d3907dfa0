"""The generator against the real broker: what lands on the topic is exactly the ground truth,
also when the broker goes away and comes back in the middle of a run."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime

import pyarrow.compute as pc
import pytest
from kafka import KafkaConsumer, TopicPartition

from lae.generate import generate
from lae.generator.model import Mix
from lae.generator.truth import read_truth
from lae.kafka import LogProducer, TopicSpec, ensure_topics, topic_message_count
from tests.integration.helpers import restart_broker_mid_run

pytestmark = pytest.mark.integration

DAY = (datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC))
MIX = Mix(late=0.03, duplicate=0.02, malformed=0.01)


def _new_topic(settings, partitions: int = 6) -> str:
    topic = f"lae.test.generate.{uuid.uuid4().hex[:10]}"
    ensure_topics(settings, specs=[TopicSpec(topic, partitions, 1, {})])
    return topic


def _consume(settings, topic: str, expected: int) -> dict[tuple[int, int], tuple[bytes, bytes]]:
    """(partition, offset) -> (key, value) for the whole topic; reads past ``expected`` for a
    moment so that extra records (duplicates from retries) would show up too."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=5_000, max_poll_records=5_000)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(parts)
        consumer.seek_to_beginning()
        return {(r.partition, r.offset): (r.key, r.value) for r in consumer}
    finally:
        consumer.close()


def _ts_text(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _assert_topic_matches_truth(settings, topic: str, truth) -> None:
    on_topic = _consume(settings, topic, truth.num_rows)
    assert len(on_topic) == truth.num_rows == topic_message_count(settings, topic)
    assert truth["error"].null_count == truth.num_rows, "every message acknowledged"
    fields = [f for f in ("event_id", "service", "host", "method", "path", "status",
                          "latency_ms", "bytes", "user_id", "ip", "user_agent")]
    for row in truth.to_pylist():
        key, value = on_topic.pop((row["partition"], row["offset"]))
        assert key == row["key"]
        if row["kind"] == "malformed":
            assert value == row["raw"]
            continue
        sent = json.loads(value)
        assert {f: sent.get(f) for f in fields} == {f: row[f] for f in fields}
        assert sent["ts"] == _ts_text(row["ts"])
    assert not on_topic, "records on the topic that the ground truth does not know"


def test_topic_holds_exactly_the_ground_truth(kafka_service, settings, tmp_path):
    topic = _new_topic(settings)
    path = tmp_path / "truth.parquet"
    summary = generate(seed=21, count=20_000, history=DAY, mix=MIX, topic=topic,
                       truth_path=path, settings=settings, stream=None)
    assert (summary.sent, summary.delivered, summary.failed) == (20_000, 20_000, 0)
    truth = read_truth(path)
    kinds = Counter(truth["kind"].to_pylist())
    assert kinds["duplicate"] > 0 and kinds["late"] > 0 and kinds["malformed"] > 0
    _assert_topic_matches_truth(settings, topic, truth)


def test_broker_outage_mid_run_loses_and_duplicates_nothing(kafka_service, settings, tmp_path):
    topic = _new_topic(settings)
    path = tmp_path / "truth.parquet"
    count, rate = 24_000, 2_000.0
    # Retries are bounded by delivery_timeout_ms, and send() blocks on a full buffer for at
    # most max_block_ms: both well above the outage so the producer rides it out.
    producer = LogProducer(settings, topic=topic, delivery_timeout_ms=300_000,
                           max_block_ms=300_000, request_timeout_ms=10_000,
                           reconnect_backoff_max_ms=1_000)
    result: dict = {}

    def run():
        try:
            result["summary"] = generate(seed=22, count=count, rate=rate, history=DAY, mix=MIX,
                                         producer=producer, truth_path=path, stream=None)
        except BaseException as exc:  # surfaced by the main thread
            result["error"] = exc

    worker = threading.Thread(target=run, name="generate", daemon=True)
    worker.start()
    try:
        down_at = restart_broker_mid_run(kafka_service, producer, worker, count, result)
    finally:
        stats = producer.close(raise_on_failure=False)
    assert "error" not in result, result.get("error")
    summary = result["summary"]
    assert (summary.sent, summary.failed) == (count, 0), summary
    assert stats.failed == 0 and stats.delivered == count, stats
    assert down_at.delivered < count, "the outage happened while the run was still going"

    truth = read_truth(path)
    _assert_topic_matches_truth(settings, topic, truth)
    # Idempotence: retried batches were not written twice, so an event_id appears on the topic
    # exactly as often as the generator sent it (duplicates are the generator's own re-sends).
    events = truth.filter(pc.not_equal(truth["kind"], "malformed"))
    coordinates = set(zip(events["partition"].to_pylist(), events["offset"].to_pylist(),
                          strict=True))
    on_topic_ids = Counter(json.loads(value)["event_id"]
                           for where, (_, value) in _consume(settings, topic, count).items()
                           if where in coordinates)
    assert on_topic_ids == Counter(events["event_id"].to_pylist())
