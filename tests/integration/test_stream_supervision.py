"""The supervisor's lag alert and hung-job path on the real Kafka and Cassandra, without Spark.

The "driver" here is a real process (``sleep``, in its own session like a detached job): the
supervisor only sees a pid record, heartbeat rows and the topic's offsets, so these tests set
those up exactly as a job that is behind, or hung, leaves them, and run one real supervision
pass each. The full job under chaos is tests/integration/test_stream_speed_layer.py.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta

import psutil
import pytest

from lae.kafka import LogProducer, TopicSpec, ensure_topics, topic_end_offsets
from lae.scratch import fresh_keyspace_and_bucket
from lae.stream import process, store, supervisor
from lae.stream.job import query_names
from lae.stream.progress import Heartbeat

pytestmark = pytest.mark.integration


class Alerts(list):
    def __call__(self, kind, title, details=None, *, severity="critical", **context):
        self.append({"kind": kind, "details": details, "severity": severity})


@pytest.fixture(scope="module")
def env(settings, kafka_service, cassandra_service, s3_service, tmp_path_factory):
    suffix = uuid.uuid4().hex[:8]
    cfg = replace(settings, keyspace="lae_supervision_it", bucket="lae-supervision-it",
                  raw_topic=f"lae.supervision.it.{suffix}",
                  state_dir=tmp_path_factory.mktemp("supervision-state"))
    _, session = fresh_keyspace_and_bucket(cfg)
    ensure_topics(cfg, specs=[TopicSpec(cfg.raw_topic, 3, 1, {})])
    with LogProducer(cfg, topic=cfg.raw_topic) as producer:
        for i in range(900):
            producer.send(b"{}", key=f"k{i % 7}".encode())
    yield cfg, session
    session.cluster.shutdown()


@pytest.fixture
def stand_in(env):
    """A live process recorded as the job's driver, started long enough ago to be past the
    start-up grace."""
    cfg, _ = env
    proc = subprocess.Popen(["sleep", "600"], start_new_session=True)  # noqa: S607 - coreutils
    record = process.PidRecord(
        pid=proc.pid, create_time=psutil.Process(proc.pid).create_time(), owner="stand-in",
        started_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat(), log="-",
        master="local[2]")
    path = process.pid_path(cfg, store.JOB)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(record)))
    yield record, proc
    proc.kill()
    proc.wait()


def _heartbeats(cfg, session, offsets: dict[int, int], age_s: float) -> None:
    """Every query reports lag 0 at ``offsets``: what a job minutes behind shows between two
    slow micro-batches (lag is measured against the offsets its last batch was planned at)."""
    now = datetime.now(UTC)
    for name in query_names(store.JOB).values():
        hb = Heartbeat(query_name=name, run_id="r", batch_id=7, last_progress_at=now,
                       offsets=json.dumps({cfg.raw_topic: {str(p): o for p, o in
                                                            offsets.items()}}),
                       lag=0, lag_by_partition="{}", input_rows=10, processing_ms=5,
                       watermark=None, dropped_by_watermark=0)
        store.write_heartbeat(session, cfg.keyspace, hb, 2000,
                              now=now - timedelta(seconds=age_s))


def test_lag_alert_counts_from_the_topic_end_not_the_heartbeat(env, stand_in):
    cfg, session = env
    store.set_desired_state(session, cfg.keyspace, store.RUNNING, "test", "test")
    end = topic_end_offsets(cfg, cfg.raw_topic)
    assert sum(end.values()) == 900
    done = {p: o // 3 for p, o in end.items()}
    _heartbeats(cfg, session, done, age_s=0)
    alerts = Alerts()
    result = supervisor.supervise(session, replace(cfg, stream_lag_alert=100), alert=alerts)
    assert result["action"] == "running"
    expected = sum(end.values()) - sum(done.values())
    assert result["status"]["lag"] == expected
    assert [(a["kind"], a["details"]["lag"], a["severity"]) for a in alerts] == [
        ("stream_lag", expected, "warning")]


def test_a_hung_job_is_killed_and_the_restart_guard_holds(env, stand_in):
    cfg, session = env
    record, proc = stand_in
    store.set_desired_state(session, cfg.keyspace, store.RUNNING, "test", "test")
    _heartbeats(cfg, session, topic_end_offsets(cfg, cfg.raw_topic), age_s=900)
    alerts = Alerts()
    # No restart allowed this hour: the pass must kill the hung process and stop there
    # (a restart would start Spark; test_stream_speed_layer covers restarts).
    guarded = replace(cfg, stream_stale_after_s=120, stream_startup_grace_s=60,
                      stream_max_restarts_per_hour=0)
    result = supervisor.supervise(session, guarded, alert=alerts)
    assert result["action"] == "crash_loop", result
    deadline = time.monotonic() + 30
    while proc.poll() is None:
        assert time.monotonic() < deadline, "the hung process was not killed"
        time.sleep(0.2)
    assert proc.returncode == -9
    assert not process.is_alive(record)
    assert store.desired_state(session, cfg.keyspace)[0] == store.CRASH_LOOP
    assert [a["kind"] for a in alerts] == ["stream_crash_loop"]
    assert alerts[0]["severity"] == "critical"
