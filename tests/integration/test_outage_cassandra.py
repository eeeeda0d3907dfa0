"""Cassandra dies while ``batch_recompute`` writes a day (issue 9, item 3a).

The real DAG runs under ``dag.test()`` in a fresh interpreter (as in test_batch_dag): the
sensor, ``spark-submit spark_jobs/batch_views.py`` through ``spark_default`` (local mode), the
validation. The day already has a published batch (the "old" one). As soon as the new run
has registered its batch (``batch_runs`` state 'writing'), the test SIGKILLs Cassandra — a
clean SIGTERM would let the node drain for seconds and this small batch finish — and starts
it again at once. What must hold:

- the recompute task fails while Cassandra is away and Airflow retries it (``retries=2``,
  ``retry_delay`` 30 s with backoff, from lae.dag_defaults); the try that failed raised an
  alert through the DAG's notifier (``task_retry``, in ``.lae/alerts.jsonl``);
- no partial publish: the interrupted batch never becomes the published one, and until a retry
  publishes, readers get the old batch (its rows unchanged);
- after Cassandra returns, a retry succeeds, validation passes, the published rows equal the
  ground truth and the interrupted batch's rows are dropped.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from lae.alerts.notifier import alerts_file
from lae.archive.layout import MANIFEST_PREFIX
from lae.batch import store
from lae.batch.job import recompute
from lae.cassandra import connect
from tests.integration.faults import kill9, private_airflow_env, record_figures
from tests.integration.helpers import fresh_keyspace_and_bucket
from tests.integration.test_batch_recompute import _archive, _events, _truth

# In the default run (issue 9: the outages run in CI). It used to hang before the fault, not
# from load: the DAG's output went to pipes nobody read (see the Popen below). Measured on
# 2026-11-26 on the 2-core machine shared with other work: 8 min 42 s - 9 min 15 s wall at load
# average 12-17 (11 min 45 s at ~19); CPU ~130 s in pytest and its children + ~58 s in
# Cassandra, and a 30-60 s retry delay: a few minutes of a quiet machine's time.
pytestmark = pytest.mark.integration

DAY = date(2021, 9, 14)

SCRIPT = """
import json, sys
from datetime import datetime
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
dag = bag.dags["batch_recompute"]
dag.deadline = None  # dag.test() in 3.3.2 cannot run a DAG deadline: see test_batch_dag.SCRIPT
dr = dag.test(logical_date=datetime.fromisoformat(sys.argv[2]))
tis = {ti.task_id: {"state": str(ti.state), "try": ti.try_number} for ti in dr.get_task_instances()}
print("RESULT " + json.dumps({"state": str(dr.state), "tasks": tis}))
"""


def _rows(session, cfg, services) -> dict:
    rows = []
    for service in services:
        rows += store.read_published_minutes(session, service, DAY, keyspace=cfg.keyspace)
    return {(r.service, r.minute.replace(tzinfo=UTC), r.path, r.status_class):
            (r.requests, r.errors, r.bytes) for r in rows}


def _new_batch(cfg, known: set[str], deadline: float) -> str:
    """Poll batch_runs until a batch other than ``known`` is registered for the day."""
    session = connect(cfg)
    try:
        while True:
            found = set(store.batches_of_day(session, cfg.keyspace, DAY)) - known
            if found:
                return found.pop()
            assert time.monotonic() < deadline, "the DAG never registered a batch"
            time.sleep(0.1)
    finally:
        session.cluster.shutdown()


# Three spark-submits and a Cassandra restart: on a loaded 2-core machine more than the
# suite's default 900 s per test is possible; a hang is still caught.
@pytest.mark.timeout(1800)
def test_cassandra_killed_mid_batch_retries_alerts_never_publishes_partially(
        settings, s3_service, cassandra_service, spark, tmp_path):
    cfg = replace(settings, bucket="lae-outage-cass", keyspace="lae_outage_cass")
    client, session = fresh_keyspace_and_bucket(cfg)
    rng = random.Random(DAY.toordinal())  # noqa: S311 - reproducible test data
    events = _events(DAY, 3000, rng)
    _archive(client, cfg.bucket, [(rng.randrange(2), e) for e in events])
    client.put_object(Bucket=cfg.bucket, Key=f"{MANIFEST_PREFIX}/test-run.json", Body=b"{}")
    truth = _truth(events)
    services = {k[0] for k in truth}

    old = recompute(spark, cfg, DAY)  # the batch readers see before the outage
    old_rows = _rows(session, cfg, services)
    assert old_rows == truth
    session.cluster.shutdown()

    env = {**private_airflow_env(cfg, tmp_path), "LAE_BUCKET": cfg.bucket,
           "LAE_KEYSPACE": cfg.keyspace, "LAE_BATCH_WRITE_PARTITIONS": "1"}
    env["AIRFLOW_CONN_SPARK_DEFAULT"] = json.dumps(
        {"conn_type": "spark", "host": "local[2]", "extra": {"deploy-mode": "client"}})
    alerts = alerts_file(cfg)
    alerts_before = alerts.stat().st_size if alerts.exists() else 0

    # The run's output goes to files, not pipes: nobody reads a pipe while the test waits for
    # the batch and restarts Cassandra, and a full pipe (64 KiB of task and spark-submit log)
    # blocks the DAG's logging, then SparkSubmitHook's reading of spark-submit's output, then
    # the job's log4j writes: the job stalled before registering its batch (seen in every
    # earlier attempt, whatever the load).
    out_path, err_path = tmp_path / "dag-test.out", tmp_path / "dag-test.err"
    t0 = time.monotonic()
    with out_path.open("w") as out_file, err_path.open("w") as err_file:
        dag = subprocess.Popen(  # noqa: S603 - fixed argv
            [sys.executable, "-c", SCRIPT, str(settings.home / "dags" / "batch_recompute.py"),
             datetime(DAY.year, DAY.month, DAY.day + 1, 2, tzinfo=UTC).isoformat()],
            env=env, stdout=out_file, stderr=err_file,
            start_new_session=True)  # its own group: clean-up also stops spark-submit's JVM
    try:
        interrupted = _new_batch(cfg, {old.batch_id}, time.monotonic() + 1200)
        kill9(cassandra_service)
        killed_at = time.monotonic()
        cassandra_service.up()  # restart at once; the DAG's retries run meanwhile
        back_at = time.monotonic()

        check = connect(cfg)
        try:
            live = store.published_batch(check, cfg.keyspace, DAY)
            assert live != interrupted, "the interrupted batch was published"
            if live == old.batch_id:  # no retry has published yet: readers get the old rows
                assert _rows(check, cfg, services) == old_rows
            # The node syncs its commit log every 10 s (commitlog_sync: periodic), so a SIGKILL
            # can lose the registration just made (seen: it did) together with any rows
            # written after it; recorded, so the figures say which case the run exercised.
            survived = interrupted in store.batches_of_day(check, cfg.keyspace, DAY)
        finally:
            check.cluster.shutdown()
        dag.wait(timeout=1500)
    finally:
        if dag.poll() is None:
            os.killpg(dag.pid, signal.SIGKILL)  # the group we started, nothing else
            dag.wait(30)
    out, err = out_path.read_text(errors="replace"), err_path.read_text(errors="replace")
    lines = [x for x in out.splitlines() if x.startswith("RESULT ")]
    assert dag.returncode == 0 and lines, (out[-3000:], err[-5000:])
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["state"] == "success", (result, out[-4000:], err[-3000:])
    assert result["tasks"]["recompute"]["try"] >= 2, result
    assert result["tasks"]["validate"]["state"] == "success"

    new_alerts = alerts.read_bytes()[alerts_before:].decode().splitlines() if alerts.exists() \
        else []
    retry_alerts = [a for a in map(json.loads, new_alerts)
                    if a.get("kind") == "task_retry" and a.get("dag_id") == "batch_recompute"
                    and a.get("task_id") == "recompute"]
    assert retry_alerts, new_alerts[-5:]

    session = connect(cfg)
    try:
        final = store.published_batch(session, cfg.keyspace, DAY)
        assert final not in (old.batch_id, interrupted)
        final_rows = _rows(session, cfg, services)
        assert final_rows == truth
        assert set(store.batches_of_day(session, cfg.keyspace, DAY)) == {final}
    finally:
        session.cluster.shutdown()

    record_figures(
        "cassandra_killed_mid_batch",
        fault="SIGKILL of Cassandra after batch_recompute registered its batch; restarted "
              "at once", load=f"one day of {len(events)} events recomputed by the DAG",
        events_in=len(events), cassandra_restart_s=round(back_at - killed_at, 1),
        dag_run_s=round(time.monotonic() - t0, 1),
        recompute_tries=result["tasks"]["recompute"]["try"], retry_alerts=len(retry_alerts),
        interrupted_batch_published=False,
        interrupted_batch_after_restart="registered" if survived
        else "lost with the SIGKILL (periodic commit log sync)",
        events_served=sum(v[0] for v in final_rows.values()),
        lost=len(events) - sum(v[0] for v in final_rows.values()),
        duplicated=max(0, sum(v[0] for v in final_rows.values()) - len(events)),
        rows_differing_from_truth=len(set(final_rows.items()) ^ set(truth.items())))
