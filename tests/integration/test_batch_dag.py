"""``dag.test()`` of batch_recompute on the real stack: the sensor sees an archive manifest,
SparkSubmitOperator runs ``spark-submit spark_jobs/batch_views.py`` through ``spark_default``
(pyspark's own spark-submit, local mode), validation passes and the Asset event is emitted."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from lae.archive.layout import MANIFEST_PREFIX
from lae.batch import store
from tests.integration.faults import private_airflow_db
from tests.integration.helpers import airflow_task_env, fresh_keyspace_and_bucket
from tests.integration.test_batch_recompute import _archive, _events, _truth

pytestmark = pytest.mark.integration

DAY = date(2021, 5, 10)

# A fresh interpreter: Airflow reads its config (this stack's DB) once per process, and the
# connections come from AIRFLOW_CONN_* exactly as a deployment would provide them.
SCRIPT = """
import json, sys
from datetime import datetime, UTC
from airflow.dag_processing.dagbag import DagBag
from airflow.models.asset import AssetEvent
from airflow.utils.session import create_session

bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
dag = bag.dags["batch_recompute"]
# Airflow 3.3.2's dag.test() cannot look up the deadline_alert row of a DAG that no
# dag-processor serialized into this DB (SQL on deadline_alert.id with no parameters):
# run it without the deadline. The deadline itself is proven through the real scheduler
# and triggerer by tests/integration/test_alerts.py.
dag.deadline = None
dr = dag.test(logical_date=datetime.fromisoformat(sys.argv[2]))
states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
with create_session() as session:
    events = [e.extra for e in session.query(AssetEvent).filter(
        AssetEvent.source_run_id == dr.run_id)]
print("RESULT " + json.dumps({"state": str(dr.state), "tasks": states, "events": events}))
"""


def _run_dag(settings, cfg, day: date, spark_conn: dict, tmp_path,
             extra_env: dict | None = None):
    """Archive-layout data for ``day`` → ``dag.test()`` → assert published == ground truth."""
    client, session = fresh_keyspace_and_bucket(cfg)
    try:
        rng = random.Random(day.toordinal())  # noqa: S311 - reproducible test data
        events = _events(day, 200, rng)
        placed = [(rng.randrange(2), e) for e in events]
        placed += [(rng.randrange(2), e) for e in rng.sample(events, 20)]
        _archive(client, cfg.bucket, placed)
        # An archive run that finished long after the day (+ lateness): the sensor passes.
        client.put_object(Bucket=cfg.bucket, Key=f"{MANIFEST_PREFIX}/test-run.json", Body=b"{}")
        # A metadata DB of the test's own: in the stack's DB the live scheduler also runs the
        # test run's tasks with the stack's bucket (the cluster test's one CI failure:
        # wait_for_archive in a clean clone, whose lae-lake has no manifests). See
        # tests/integration/faults.private_airflow_db.
        private_db = private_airflow_db(cfg, tmp_path)

        env = {**airflow_task_env(cfg), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": private_db,
               "LAE_BUCKET": cfg.bucket,
               "LAE_KEYSPACE": cfg.keyspace, "LAE_BATCH_WRITE_PARTITIONS": "1",
               **(extra_env or {})}
        env["AIRFLOW_CONN_SPARK_DEFAULT"] = json.dumps(spark_conn)
        proc = subprocess.run(  # noqa: S603 - fixed argv
            [sys.executable, "-c", SCRIPT, str(settings.home / "dags" / "batch_recompute.py"),
             # A manual run's interval ends at its logical date: this one covers `day`.
             datetime(day.year, day.month, day.day + 1, 2, tzinfo=UTC).isoformat()],
            env=env, capture_output=True, text=True, timeout=900)
        lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        assert proc.returncode == 0 and lines, (proc.stdout[-3000:], proc.stderr[-5000:])
        result = json.loads(lines[-1][len("RESULT "):])
        assert result["state"] == "success", (result, proc.stdout[-6000:], proc.stderr[-3000:])
        assert set(result["tasks"].values()) == {"success"}, (result, proc.stdout[-4000:],
                                                             proc.stderr[-4000:])

        truth = _truth([e for _, e in placed])
        batch_id = store.published_batch(session, cfg.keyspace, day)
        assert result["events"] == [{"day": day.isoformat(), "batch_id": batch_id,
                                     "requests": sum(v[0] for v in truth.values())}]
        rows = []
        for service in {k[0] for k in truth}:
            rows += store.read_published_minutes(session, service, day, keyspace=cfg.keyspace)
        got = {(r.service, r.minute.replace(tzinfo=UTC), r.path, r.status_class):
               (r.requests, r.errors, r.bytes) for r in rows}
        assert got == truth
        end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        assert store.read_watermark(session, cfg.keyspace) == end
        return proc
    finally:
        session.cluster.shutdown()


def test_dag_test_recomputes_publishes_and_validates(settings, s3_service, cassandra_service,
                                                     tmp_path):
    cfg = replace(settings, bucket="lae-batch-dag", keyspace="lae_batch_dag")
    _run_dag(settings, cfg, DAY,
             {"conn_type": "spark", "host": "local[2]", "extra": {"deploy-mode": "client"}},
             tmp_path)


# The same DAG on a Spark standalone master + workers: tests/integration/test_spark_cluster.py
# (marked `cluster`, outside the default run).
