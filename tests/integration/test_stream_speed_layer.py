"""The speed layer on the real stack: generated traffic → streaming job → rt_ tables.

One streaming job serves the whole module (a JVM start is the expensive part). It is started
and restarted the way production does it — ``lae.stream.supervisor`` (the functions the
``streaming_supervisor`` DAG calls), detached, with a lease — on a topic and keyspace of this
module's own. Expected rows come from the generator's ground-truth files, computed here in
plain Python (de-duplicated by event_id, malformed messages excluded).

Timeline of event times (watermark delay 10 min):
  A  day D1 23:50–23:54   on time                  → rt rows == truth
  B  day D2 00:30–00:34   on time, moves the watermark past D1
  C  day D1 23:50–23:54   late (behind the watermark) → counted in stream_late_events, not in rt
  E  day D2 00:40–00:44   sent in three parts around two kill -9 of the driver (chaos)
Then the job is stopped on purpose, D2 (no late data) is archived and recomputed by the batch
job, and rt == batch for D2.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from unittest import mock

import pytest
from cassandra import OperationTimedOut

from lae.config import Settings
from lae.generate import generate
from lae.generator.model import Mix
from lae.generator.truth import read_truth
from lae.kafka import TopicSpec, ensure_topics, topic_message_count
from lae.stream import process, store, supervisor
from lae.stream.job import query_names
from lae.views import bucket_index, estimate
from tests.integration.helpers import fresh_keyspace_and_bucket

# The timeout is per test: each (re)start of the job is a JVM start plus planning three
# streaming queries, minutes on a loaded 2-core machine (the chaos test starts it three times).
pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.timeout(2700)]

D1, D2 = date(2026, 11, 20), date(2026, 11, 21)
A_RANGE = (datetime(2026, 11, 20, 23, 50, tzinfo=UTC), datetime(2026, 11, 20, 23, 54, tzinfo=UTC))
B_RANGE = (datetime(2026, 11, 21, 0, 30, tzinfo=UTC), datetime(2026, 11, 21, 0, 34, tzinfo=UTC))
E_START = datetime(2026, 11, 21, 0, 40, tzinfo=UTC)
NAMES = query_names()
WAIT_S = 900  # a loaded 2-core machine can take minutes to start a JVM and plan the queries


class Alerts(list):
    """Records the supervisor's alerts instead of sending them (the channels are lae.alerts'
    business, tested there); the test asserts on kinds and severities."""

    def __call__(self, kind, title, details=None, *, severity="critical", **context):
        self.append({"kind": kind, "title": title, "details": details, "severity": severity})


@pytest.fixture(scope="module")
def stream_env(settings, s3_service, kafka_service, cassandra_service, tmp_path_factory):
    suffix = uuid.uuid4().hex[:8]
    state = tmp_path_factory.mktemp("stream-state")
    env = {
        "LAE_KEYSPACE": "lae_stream_it", "LAE_BUCKET": "lae-stream-it",
        "LAE_RAW_TOPIC": f"lae.stream.it.{suffix}", "LAE_DLQ_TOPIC": f"lae.stream.it.dlq.{suffix}",
        "LAE_STATE_DIR": str(state), "LAE_STREAM_CHECKPOINT": str(state / "checkpoint"),
        "LAE_STREAM_STARTING_OFFSETS": "earliest", "LAE_STREAM_TRIGGER": "1 second",
        "LAE_STREAM_ROLLUP_TRIGGER": "2 seconds",
        "LAE_STREAM_SHUFFLE_PARTITIONS": "2", "LAE_STREAM_LEASE_TTL_S": "90",
        "LAE_STREAM_MAX_RESTARTS_PER_HOUR": "10", "LAE_SPARK_MASTER": "local[2]",
    }
    with mock.patch.dict(os.environ, env):
        cfg = Settings.from_env()
    _, session = fresh_keyspace_and_bucket(cfg)
    ensure_topics(cfg, specs=[TopicSpec(cfg.raw_topic, 3, 1, {}),
                              TopicSpec(cfg.dlq_topic, 1, 1, {})])
    yield cfg, session, env
    record = process.read_pid(cfg, store.JOB)
    if record is not None:
        process.terminate(record, timeout_s=30)
    session.cluster.shutdown()


def _send(cfg, tmp_path, name: str, seed: int, count: int, span: tuple[datetime, datetime],
          mix: Mix) -> list[dict]:
    path = tmp_path / f"{name}.parquet"
    summary = generate(seed=seed, count=count, history=span, mix=mix, topic=cfg.raw_topic,
                       truth_path=path, settings=cfg, stream=None)
    assert summary.failed == 0, summary.line()
    return read_truth(path).to_pylist()


def _expected(truth: list[dict]) -> dict[tuple, dict]:
    """(service, minute, path, status_class) → the view's measures, from the ground truth."""
    seen, rows = set(), defaultdict(lambda: {
        "requests": 0, "errors": 0, "client_errors": 0, "bytes": 0, "latency_us": 0,
        "latency_max": 0.0, "hist": defaultdict(int), "users": set()})
    for t in truth:
        if t["kind"] == "malformed" or t["event_id"] in seen:
            continue
        seen.add(t["event_id"])
        ts = t["ts"].astimezone(UTC)
        acc = rows[(t["service"], ts.replace(second=0, microsecond=0), t["path"],
                    f"{t['status'] // 100}xx")]
        acc["requests"] += 1
        acc["errors"] += t["status"] >= 500
        acc["client_errors"] += 400 <= t["status"] < 500
        acc["bytes"] += t["bytes"]
        acc["latency_us"] += round(t["latency_ms"] * 1000)
        acc["latency_max"] = max(acc["latency_max"], t["latency_ms"])
        acc["hist"][bucket_index(t["latency_ms"])] += 1
        if t["user_id"] is not None:
            acc["users"].add(t["user_id"])
    return rows


def _rt_minutes(session, ks: str, services, days) -> dict[tuple, object]:
    out = {}
    for service in services:
        for day in days:
            for r in session.execute(
                    f"SELECT * FROM {ks}.rt_metrics_minute WHERE service = %s AND day = %s",  # noqa: S608 - test keyspace name
                    (service, day)):
                out[(r.service, r.minute.replace(tzinfo=UTC), r.path, r.status_class)] = r
    return out


def _assert_rows_equal(got: dict, want: dict) -> None:
    assert got.keys() == want.keys(), (sorted(set(got) ^ set(want))[:5])
    for key, exp in want.items():
        row = got[key]
        assert (row.requests, row.errors, row.client_errors, row.bytes) == (
            exp["requests"], exp["errors"], exp["client_errors"], exp["bytes"]), key
        assert row.latency_sum == pytest.approx(exp["latency_us"] / 1000, rel=1e-12), key
        assert row.latency_max == exp["latency_max"], key
        hist = [exp["hist"].get(i, 0) for i in range(len(row.latency_hist))]
        assert list(row.latency_hist) == hist, key
        assert estimate(row.users_hll) == pytest.approx(len(exp["users"]), rel=0.03, abs=1), key


def _assert_hour_rows_roll_up(session, ks: str, services, days, want: dict) -> None:
    """rt hour rows (rolled up from the minute rows by lae.stream.rollup) against the expected
    minute measures summed per hour: requests, errors, bytes, histogram, latency max."""
    hours: dict[tuple, dict] = defaultdict(lambda: {"requests": 0, "errors": 0, "bytes": 0,
                                                    "latency_max": 0.0,
                                                    "hist": defaultdict(int)})
    for (service, minute, path, status_class), exp in want.items():
        acc = hours[(service, minute.replace(minute=0), path, status_class)]
        for col in ("requests", "errors", "bytes"):
            acc[col] += exp[col]
        acc["latency_max"] = max(acc["latency_max"], exp["latency_max"])
        for bucket, n in exp["hist"].items():
            acc["hist"][bucket] += n
    got = {}
    for service in services:
        for day in days:
            for r in session.execute(f"SELECT * FROM {ks}.rt_metrics_hour "  # noqa: S608 - test keyspace name
                                     "WHERE service = %s AND day = %s", (service, day)):
                got[(r.service, r.hour.replace(tzinfo=UTC), r.path, r.status_class)] = r
    assert got.keys() == hours.keys(), sorted(set(got) ^ set(hours))[:5]
    for key, exp in hours.items():
        row = got[key]
        assert (row.requests, row.errors, row.bytes, row.latency_max) == (
            exp["requests"], exp["errors"], exp["bytes"], exp["latency_max"]), key
        assert list(row.latency_hist) == [exp["hist"].get(i, 0)
                                          for i in range(len(row.latency_hist))], key


def _topic_end(cfg) -> dict[str, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=cfg.kafka_bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(cfg.raw_topic, p)
                 for p in consumer.partitions_for_topic(cfg.raw_topic)]
        return {str(tp.partition): off for tp, off in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


def _wait_caught_up(cfg, session, what: str, timeout_s: float = WAIT_S) -> dict:
    """Until every query's heartbeat says it processed the topic up to its current end."""
    end = _topic_end(cfg)
    deadline = time.monotonic() + timeout_s
    hbs: dict = {}
    while time.monotonic() < deadline:
        try:
            hbs = store.read_heartbeats(session, cfg.keyspace)
        except OperationTimedOut:  # a loaded node; the deadline still bounds the wait
            continue
        done = [hbs.get(n, {}).get("offsets", {}).get(cfg.raw_topic) == end
                for n in NAMES.values()]
        if all(done):
            return hbs
        time.sleep(2)
    log = process.log_path(cfg, store.JOB)
    tail = log.read_text()[-3000:] if log.exists() else "(no log)"
    raise AssertionError(f"{what}: not caught up with {end} in {timeout_s}s: "
                         f"{json.dumps(hbs, default=str)[:1500]}\n{tail}")


def _wait_for(predicate, what: str, timeout_s: float = WAIT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except OperationTimedOut:
            continue
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def sent():
    """What each test sent (ground-truth rows by batch), for the tests that follow it."""
    return {}


@pytest.fixture(scope="module")
def alerts():
    return Alerts()


def test_rt_rows_equal_ground_truth_and_late_events_are_counted(stream_env, sent, alerts,
                                                                 tmp_path):
    cfg, session, env = stream_env
    on_time = Mix(late=0.0, duplicate=0.03, malformed=0.01)
    sent["A"] = _send(cfg, tmp_path, "a", 11, 2500, A_RANGE, on_time)
    result = supervisor.start(session, cfg, by="test", master="local[2]", alert=alerts,
                              extra_env=env)
    assert result["action"] == "started", result
    assert [a["kind"] for a in alerts] == ["stream_restart"]
    _wait_caught_up(cfg, session, "A")

    sent["B"] = _send(cfg, tmp_path, "b", 12, 1500, B_RANGE, on_time)
    _wait_caught_up(cfg, session, "B")
    # The late rule needs the views' watermark past D1 before the late events arrive.
    _wait_for(lambda: (store.read_heartbeats(session, cfg.keyspace)[NAMES["minute"]]
                       .get("watermark") or A_RANGE[0]) > A_RANGE[1] + timedelta(minutes=5),
              "the watermark to pass D1")
    late = _send(cfg, tmp_path, "c", 13, 400, A_RANGE, Mix(late=0.0, duplicate=0.0,
                                                           malformed=0.0))
    hbs = _wait_caught_up(cfg, session, "C")

    services = {t["service"] for t in sent["A"] + sent["B"] + late if t["service"]}
    want = _expected(sent["A"] + sent["B"])
    _assert_rows_equal(_rt_minutes(session, cfg.keyspace, services, (D1, D2)), want)
    # The hour view (its own aggregation of the same events) agrees on counts.
    hours = defaultdict(int)
    for (service, minute, _, _), exp in want.items():
        hours[(service, minute.replace(minute=0))] += exp["requests"]
    got_hours = defaultdict(int)
    for service in services:
        for day in (D1, D2):
            for r in session.execute(f"SELECT * FROM {cfg.keyspace}.rt_metrics_hour "  # noqa: S608 - test keyspace name
                                     "WHERE service = %s AND day = %s", (service, day)):
                got_hours[(r.service, r.hour.replace(tzinfo=UTC))] += r.requests
    assert dict(got_hours) == dict(hours)

    # Late events: every one counted, per (service, day), none mixed into the views (above).
    late_by_service = defaultdict(int)
    for t in late:
        late_by_service[t["service"]] += 1
    assert {s: store.late_events(session, cfg.keyspace, s, D1) for s in late_by_service} == dict(
        late_by_service)
    assert sum(store.late_events(session, cfg.keyspace, s, D2) for s in services) == 0
    # Rejected messages went to the DLQ (no replay happened, so exactly once).
    malformed = sum(t["kind"] == "malformed" for t in sent["A"] + sent["B"])
    assert topic_message_count(cfg, cfg.dlq_topic) == malformed
    minute = hbs[NAMES["minute"]]
    assert minute["lag"] == 0 and minute["trigger_ms"] == 1000
    assert minute["watermark"] > A_RANGE[1]


def _kill_when_progressing(cfg, session, after_batch: int) -> process.PidRecord:
    record = process.read_pid(cfg, store.JOB)
    assert process.is_alive(record)
    _wait_for(lambda: (store.read_heartbeats(session, cfg.keyspace).get(NAMES["minute"], {})
                       .get("batch_id", -1) > after_batch), "the job to make progress")
    process.kill(record)  # kill -9 the driver and its JVM, mid-stream
    _wait_for(lambda: not process.group_members(record), "the killed job to be gone", 30)
    return record


def test_kill_driver_twice_supervisor_restarts_and_nothing_is_lost_or_doubled(
        stream_env, sent, alerts, tmp_path):
    cfg, session, env = stream_env
    assert "A" in sent, "runs after test_rt_rows_equal_ground_truth..."
    mix = Mix(late=0.0, duplicate=0.03, malformed=0.0)
    parts = []
    for i in range(3):
        start = E_START + timedelta(minutes=i * 80 / 60)
        span = (start, start + timedelta(seconds=80))
        parts += _send(cfg, tmp_path, f"e{i}", 20 + i, 1500, span, mix)
        if i == 2:
            break
        batch = store.read_heartbeats(session, cfg.keyspace)[NAMES["minute"]]["batch_id"]
        killed = _kill_when_progressing(cfg, session, batch)
        # Two supervisor passes at once: exactly one starts the job, the other finds the lease.
        results: list[dict] = []

        def supervise_once(out=results):
            out.append(supervisor.supervise(session, cfg, "local[2]", alert=alerts,
                                            extra_env=env))

        passes = [threading.Thread(target=supervise_once) for _ in range(2)]
        for t in passes:
            t.start()
        for t in passes:
            t.join(timeout=120)
        actions = sorted(r["action"] for r in results)
        # The loser saw the lease taken (or, if it looked later, the new process running).
        assert len(actions) == 2 and actions.count("started") == 1, results
        assert set(actions) - {"started"} <= {"lease_held", "running", "running_elsewhere"}
        restarted = process.read_pid(cfg, store.JOB)
        assert restarted.pid != killed.pid and process.is_alive(restarted)
    sent["E"] = parts
    _wait_caught_up(cfg, session, "E")
    # A third pass finds it healthy and does nothing.
    assert supervisor.supervise(session, cfg, "local[2]", alert=alerts,
                                extra_env=env)["action"] == "running"

    services = {t["service"] for t in sent["A"] + sent["B"] + parts if t["service"]}
    want = _expected(sent["A"] + sent["B"] + parts)
    _assert_rows_equal(_rt_minutes(session, cfg.keyspace, services, (D1, D2)), want)
    # The hour rows too: every hour the killed drivers left un-rolled was caught up.
    _assert_hour_rows_roll_up(session, cfg.keyspace, services, (D1, D2), want)
    starts = store.restarts_since(session, cfg.keyspace, store.hour_ago())
    assert len(starts) == 3
    assert [a["kind"] for a in alerts].count("stream_restart") == 3
    assert all("died" in a["details"]["reason"] for a in alerts[1:])


def test_operator_stop_is_honoured_and_rt_equals_batch(stream_env, sent, alerts, spark):
    """Stop on purpose: the supervisor leaves it stopped. Then the same answers: D2 has no
    late data; its rt rows equal the batch layer's rows computed from the master dataset."""
    from lae.archive.run import RunOptions, run_archive
    from lae.batch import store as batch_store
    from lae.batch.job import recompute

    cfg, session, env = stream_env
    assert "E" in sent, "runs after the chaos test"
    stopped = supervisor.stop(session, cfg, by="test", reason="maintenance", timeout_s=90)
    assert stopped["gone"], stopped
    assert supervisor.supervise(session, cfg, "local[2]", alert=alerts)["action"] == "left_stopped"
    assert not process.is_alive(process.read_pid(cfg, store.JOB))
    assert supervisor.status(session, cfg).lease_holder is None  # released on a clean stop

    run_archive(cfg, RunOptions(run_id=f"stream-it-{uuid.uuid4().hex[:6]}"))
    result = recompute(spark, cfg, D2)
    assert result.published
    services = {t["service"] for t in sent["B"] + sent["E"] if t["service"]}
    rt = _rt_minutes(session, cfg.keyspace, services, (D2,))
    batch = {}
    for service in services:
        for r in batch_store.read_published_minutes(session, service, D2, keyspace=cfg.keyspace):
            batch[(r.service, r.minute.replace(tzinfo=UTC), r.path, r.status_class)] = r
    assert rt.keys() == batch.keys() and rt
    for key, row in rt.items():
        other = batch[key]
        for col in ("requests", "errors", "client_errors", "bytes", "latency_sum",
                    "latency_max", "latency_hist"):
            assert getattr(row, col) == getattr(other, col), (key, col)
        assert estimate(row.users_hll) == pytest.approx(estimate(other.users_hll), rel=0.02)
