"""``dag.test()`` of streaming_control and streaming_supervisor on the real stack (no Spark job
is started: these runs exercise the stop and crash-loop paths, which must start nothing).

- streaming_control action=stop → desired state 'stopped'; the supervisor DAG then leaves the
  job alone (no start, no restart row).
- crash loop: with ``LAE_STREAM_MAX_RESTARTS_PER_HOUR`` starts recorded in the last hour and the
  job down, the supervisor DAG escalates (critical ``stream_crash_loop`` alert in the alerts
  file), records 'crash_loop' and starts nothing; streaming_control action=start clears it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from lae.alerts import read_records
from lae.cassandra import connect
from lae.cassandra_schema import migrate
from lae.stack.airflow import airflow_env, connections
from lae.stream import process, store

pytestmark = pytest.mark.integration

KEYSPACE = "lae_stream_dag_it"
SCRIPT = """
import json, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
dr = bag.dags[sys.argv[2]].test(run_conf=json.loads(sys.argv[3]))
tasks = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
print("RESULT " + json.dumps({"state": str(dr.state), "tasks": tasks}))
"""


@pytest.fixture(scope="module")
def dag_env(settings, airflow_service, cassandra_service, tmp_path_factory):
    state = tmp_path_factory.mktemp("stream-dag-state")
    env = {**os.environ, **airflow_env(settings), "LAE_KEYSPACE": KEYSPACE,
           "LAE_STATE_DIR": str(state), "LAE_STREAM_MAX_RESTARTS_PER_HOUR": "2"}
    for conn_id, conn in connections(settings).items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
    env["PYTHONPATH"] = os.pathsep.join([str(settings.home / "include"),
                                         env.get("PYTHONPATH", "")])
    # The settings the DAG's tasks see: this stack's, with the module's keyspace and state dir.
    cfg = replace(settings, keyspace=KEYSPACE, state_dir=state, stream_max_restarts_per_hour=2)
    session = connect(settings)
    session.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}", timeout=60)
    migrate(session, cfg)
    yield cfg, session, env
    session.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}", timeout=60)
    session.cluster.shutdown()


def _dag_test(settings, env, dag_id: str, conf: dict) -> dict:
    proc = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-c", SCRIPT, str(settings.home / "dags" / f"{dag_id}.py"), dag_id,
         json.dumps(conf)], env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (proc.stdout[-3000:], proc.stderr[-5000:])
    return json.loads(lines[-1][len("RESULT "):])


def test_operator_stop_then_supervisor_leaves_it_stopped(settings, dag_env):
    cfg, session, env = dag_env
    result = _dag_test(settings, env, "streaming_control", {"action": "stop", "reason": "it"})
    assert result["state"] == "success", result
    assert store.desired_state(session, KEYSPACE) == (store.STOPPED, "it")
    result = _dag_test(settings, env, "streaming_supervisor", {})
    assert result == {"state": "success", "tasks": {"supervise": "success"}}
    assert store.restarts_since(session, KEYSPACE, store.hour_ago()) == []
    assert process.read_pid(cfg, store.JOB) is None


def test_crash_loop_escalates_and_stops_restarting(settings, dag_env):
    cfg, session, env = dag_env
    store.set_desired_state(session, KEYSPACE, store.RUNNING, "test", "test")
    for i in range(2):
        store.record_restart(session, KEYSPACE, f"dead-{i}", 4_000_000 + i, "process died")
    result = _dag_test(settings, env, "streaming_supervisor", {})
    assert result["state"] == "success", result
    desired, reason = store.desired_state(session, KEYSPACE)
    assert desired == store.CRASH_LOOP and "2 starts" in reason
    assert process.read_pid(cfg, store.JOB) is None  # nothing started
    alerts = [a for a in read_records(cfg.state_dir / "alerts.jsonl")
              if a.get("kind") == "stream_crash_loop"]
    assert len(alerts) == 1 and alerts[0]["severity"] == "critical", alerts
    assert alerts[0]["dag_id"] == "streaming_supervisor"
    # The next pass leaves it alone (no second escalation, no start).
    _dag_test(settings, env, "streaming_supervisor", {})
    assert len(store.restarts_since(session, KEYSPACE, store.hour_ago())) == 2
