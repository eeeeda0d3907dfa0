"""``dag.test()`` of kafka_to_s3_archive against the real stack archives a generated batch end
to end: every message in the master dataset or in quarantine, a manifest, an Asset event."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest

from lae.archive.layout import MANIFEST_PREFIX, manifest_key
from lae.generate import generate
from lae.generator.model import Mix
from lae.generator.truth import read_truth
from lae.kafka import TopicSpec, ensure_topics
from lae.s3 import s3_client
from tests.integration.helpers import airflow_task_env

pytestmark = pytest.mark.integration

# Runs in a fresh interpreter: Airflow reads its config (this stack's DB) once per process,
# and the connections come from AIRFLOW_CONN_* exactly as a deployment would provide them.
SCRIPT = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.models.asset import AssetEvent
from airflow.utils.session import create_session

bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
dag = bag.dags["kafka_to_s3_archive"]
dr = dag.test(run_conf={"topic": sys.argv[2], "max_rows": 700})
states = {ti.task_id: [] for ti in dr.get_task_instances()}
for ti in dr.get_task_instances():
    states[ti.task_id].append(str(ti.state))
with create_session() as session:
    events = [e.extra for e in session.query(AssetEvent).filter(
        AssetEvent.source_run_id == dr.run_id)]
print("RESULT " + json.dumps({"state": str(dr.state), "run_id": dr.run_id, "tasks": states,
                              "events": events}))
"""


def test_dag_test_archives_a_generated_batch(airflow_service, kafka_service, s3_service,
                                             cassandra_service, settings, tmp_path):
    topic = f"lae.test.archive.dag.{uuid.uuid4().hex[:10]}"
    ensure_topics(settings, specs=[TopicSpec(topic, 3, 1, {})])
    truth_path = tmp_path / "truth.parquet"
    generate(seed=5, count=2000, history=(datetime(2026, 11, 20, tzinfo=UTC),
                                          datetime(2026, 11, 21, tzinfo=UTC)),
             mix=Mix(late=0.05, duplicate=0.02, malformed=0.02), topic=topic,
             truth_path=truth_path, settings=settings, stream=None)
    truth = read_truth(truth_path)
    env = airflow_task_env(settings)
    env["PYTHONPATH"] = os.pathsep.join([str(settings.home / "include"),
                                         env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(settings.home / "dags"
                                                            / "kafka_to_s3_archive.py"), topic],
                          env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (proc.stdout[-3000:], proc.stderr[-5000:])
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["state"] == "success", result
    assert set(result["tasks"]["archive_partition"]) == {"success"}

    s3 = s3_client(settings)
    key = manifest_key(result["run_id"])
    assert key.startswith(MANIFEST_PREFIX)
    manifest = json.loads(s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read())
    kinds = Counter(truth["kind"].to_pylist())
    assert manifest["totals"]["valid"] == truth.num_rows - kinds["malformed"]
    assert manifest["totals"]["quarantined"] == kinds["malformed"]
    assert {p["partition"] for p in manifest["partitions"]} == set(
        truth["partition"].to_pylist())
    days = {r["ts"].strftime("%Y-%m-%d") for r in truth.to_pylist() if r["ts"] is not None}
    assert set(manifest["dates"]) == days
    # The Asset event tells the batch layer which days to recompute.
    (extra,) = result["events"]
    assert extra["dates"] == sorted(days) and extra["manifest"] == key
