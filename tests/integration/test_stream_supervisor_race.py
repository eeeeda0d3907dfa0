"""Two supervisor passes interleaved the worst way never leave two jobs, nor kill the new one.

The interleaving is forced, not hoped for: pass B reads the state (the job dead, its lease
held by the dead owner), then pass A runs from start to end (takes the lease over, starts the
job), then B goes on with what it read. B must then find the lease taken and start nothing, and
A's job must still run. A pass that re-read the pid file after its status would take A's new
job for the dead one: kill it, take its lease over and start a second one.

Real Cassandra (the lease is its lightweight transactions). The job itself is a stand-in: a
Python process that sleeps, started by the real ``process.start_detached`` — the race is in the
supervisor, and a Spark driver would only make the test slower.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime

import pytest

from lae.cassandra import connect
from lae.cassandra_schema import migrate
from lae.stream import process, store, supervisor
from lae.stream.lease import StreamLease

pytestmark = pytest.mark.integration

KEYSPACE = "lae_stream_race_it"
DEAD_OWNER = "dead-host:1:dead"


@pytest.fixture
def race_env(settings, cassandra_service, kafka_service, tmp_path, monkeypatch):
    cfg = replace(settings, keyspace=KEYSPACE, state_dir=tmp_path)
    session = connect(settings)
    session.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}", timeout=60)
    migrate(session, cfg)
    monkeypatch.setattr(process, "launch_command",
                        lambda _settings: [sys.executable, "-c", "import time; time.sleep(300)"])
    started: list[process.PidRecord] = []
    yield cfg, session, started
    for record in started:
        process.terminate(record, timeout_s=5)
    session.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}", timeout=60)
    session.cluster.shutdown()


def _leave_a_dead_job(cfg, session) -> process.PidRecord:
    """The pid file and the lease as a SIGKILLed driver leaves them."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])  # noqa: S603 - fixed argv
    dead.wait()
    record = process.PidRecord(pid=dead.pid, create_time=0.0, owner=DEAD_OWNER,
                               started_at=datetime.now(UTC).isoformat(), log="", master="local[1]")
    process.stream_dir(cfg).mkdir(parents=True, exist_ok=True)
    process.pid_path(cfg, store.JOB).write_text(json.dumps(asdict(record)))
    StreamLease(session, cfg.keyspace, store.JOB, cfg.stream_lease_ttl_s,
                owner=DEAD_OWNER).acquire()
    return record


def test_a_pass_that_saw_the_dead_job_neither_kills_nor_doubles_the_one_started_meanwhile(
        race_env, monkeypatch):
    cfg, session, started = race_env
    _leave_a_dead_job(cfg, session)
    alerts: list[tuple] = []
    results: dict[str, dict] = {}
    real_status = supervisor.status

    def status_then_the_other_pass(*args, **kwargs):
        seen = real_status(*args, **kwargs)
        monkeypatch.setattr(supervisor, "status", real_status)  # pass A runs undisturbed
        results["A"] = supervisor.supervise(session, cfg, "local[1]",
                                            alert=lambda *a, **k: alerts.append(a))
        if results["A"].get("action") == "started":
            started.append(process.read_pid(cfg, store.JOB))
        return seen

    monkeypatch.setattr(supervisor, "status", status_then_the_other_pass)
    results["B"] = supervisor.supervise(session, cfg, "local[1]",
                                        alert=lambda *a, **k: alerts.append(a))
    now = process.read_pid(cfg, store.JOB)
    if results["B"].get("action") == "started":
        started.append(now)

    time.sleep(2)  # a SIGKILL is delivered asynchronously: give one time to show
    assert results["A"]["action"] == "started", results
    assert results["B"]["action"] == "lease_held", results
    assert now.owner == results["A"]["owner"] and process.is_alive(now), \
        "pass B killed or replaced the job pass A had just started"
    lease = StreamLease(session, cfg.keyspace, store.JOB, cfg.stream_lease_ttl_s)
    assert lease.holder() == results["A"]["owner"]
    assert len(store.restarts_since(session, cfg.keyspace, store.hour_ago(datetime.now(UTC)))) == 1
    assert [a[0] for a in alerts] == ["stream_restart"]
