"""``dag.test()`` of batch_recompute on the real stack: the sensor sees an archive manifest,
SparkSubmitOperator runs ``spark-submit spark_jobs/batch_views.py`` through ``spark_default``
(pyspark's own spark-submit, local mode), validation passes and the Asset event is emitted."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from lae.archive.layout import MANIFEST_PREFIX
from lae.batch import store
from lae.cassandra import connect
from lae.cassandra_schema import migrate
from lae.s3 import s3_client
from lae.stack.airflow import airflow_env, connections, run_airflow
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
dr = dag.test(logical_date=datetime.fromisoformat(sys.argv[2]))
states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
with create_session() as session:
    events = [e.extra for e in session.query(AssetEvent).filter(
        AssetEvent.source_run_id == dr.run_id)]
print("RESULT " + json.dumps({"state": str(dr.state), "tasks": states, "events": events}))
"""


def test_dag_test_recomputes_publishes_and_validates(settings, s3_service, cassandra_service):
    cfg = replace(settings, bucket="lae-batch-dag", keyspace="lae_batch_dag")
    client, session = s3_client(cfg), connect(cfg)
    try:
        session.execute(f"DROP KEYSPACE IF EXISTS {cfg.keyspace}", timeout=60)
        migrate(session, cfg)
        try:
            client.create_bucket(Bucket=cfg.bucket)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        rng = random.Random(7)  # noqa: S311 - reproducible test data
        events = _events(DAY, 200, rng)
        placed = [(rng.randrange(2), e) for e in events]
        placed += [(rng.randrange(2), e) for e in rng.sample(events, 20)]
        _archive(client, cfg.bucket, placed)
        # An archive run that finished long after the day (+ lateness): the sensor passes.
        client.put_object(Bucket=cfg.bucket, Key=f"{MANIFEST_PREFIX}/test-run.json", Body=b"{}")
        run_airflow(cfg, "db", "migrate", timeout=300)

        env = {**os.environ, **airflow_env(cfg), "LAE_BUCKET": cfg.bucket,
               "LAE_KEYSPACE": cfg.keyspace, "LAE_BATCH_WRITE_PARTITIONS": "1"}
        for conn_id, conn in connections(cfg).items():
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
        env["AIRFLOW_CONN_SPARK_DEFAULT"] = json.dumps(
            {"conn_type": "spark", "host": "local[2]", "extra": {"deploy-mode": "client"}})
        proc = subprocess.run(  # noqa: S603 - fixed argv
            [sys.executable, "-c", SCRIPT, str(settings.home / "dags" / "batch_recompute.py"),
             # A manual run's interval ends at its logical date: this one covers DAY.
             datetime(DAY.year, DAY.month, DAY.day + 1, 2, tzinfo=UTC).isoformat()],
            env=env, capture_output=True, text=True, timeout=900)
        lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        assert proc.returncode == 0 and lines, (proc.stdout[-3000:], proc.stderr[-5000:])
        result = json.loads(lines[-1][len("RESULT "):])
        assert result["state"] == "success", result
        assert set(result["tasks"].values()) == {"success"}, (result, proc.stdout[-4000:],
                                                             proc.stderr[-4000:])

        truth = _truth([e for _, e in placed])
        batch_id = store.published_batch(session, cfg.keyspace, DAY)
        assert result["events"] == [{"day": DAY.isoformat(), "batch_id": batch_id,
                                     "requests": sum(v[0] for v in truth.values())}]
        rows = []
        for service in {k[0] for k in truth}:
            rows += store.read_published_minutes(session, service, DAY, keyspace=cfg.keyspace)
        got = {(r.service, r.minute.replace(tzinfo=UTC), r.path, r.status_class):
               (r.requests, r.errors, r.bytes) for r in rows}
        assert got == truth
        assert store.read_watermark(session, cfg.keyspace) == datetime(2021, 5, 11, tzinfo=UTC)
    finally:
        session.cluster.shutdown()
