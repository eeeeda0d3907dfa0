"""The batch job on a Spark standalone cluster (issue 5's acceptance, issue 9 item 2): a master
and two workers (1 core, 1 GiB each) from pyspark's own jars (``lae.stack.spark_cluster``), on
loopback.

``batch_recompute`` runs under ``dag.test()`` with ``spark_default`` pointing at the master
(the DAG and the job unchanged: only the connection differs, as in a deployment); then the same
day is recomputed in local mode, and the two published versions must be the same rows —
every measure column equal, the users sketches equal in estimate (their bytes may differ with
the merge order). Both workers must have launched executors for the job.

In the default run: three more JVMs, but measured on 2026-11-26 at 8 min 56 s wall with the
2-core machine at load average ~21 (1 min 5 s of CPU in pytest and its children, the cluster's
executors besides), i.e. well under 5 min of a quiet machine's time — see docs/RELIABILITY.md.
Before the cluster's client conf (``SparkStandalone.client_conf_dir``) the job ran Spark's 200
shuffle partitions (~1,400 tasks, 147 s of executor CPU for 200 events) and took 10 min 55 s.

The cluster's ports: kafka_port + 50 (master RPC), + 51 (master UI), + 52.. (workers).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from datetime import UTC, date

import pytest

from lae.batch import store
from lae.batch.job import recompute
from lae.cassandra import connect
from lae.stack.spark_cluster import SparkStandalone
from lae.views import estimate
from tests.integration.faults import record_figures
from tests.integration.test_batch_dag import _run_dag

pytestmark = pytest.mark.integration

DAY = date(2021, 5, 12)
MEASURES = ("requests", "errors", "client_errors", "bytes", "latency_sum", "latency_max",
            "latency_hist")


@pytest.fixture(scope="module")
def standalone(settings):
    cluster = SparkStandalone(settings, base_port=settings.kafka_port + 50, workers=2, cores=1,
                              memory="1g")
    startup_s = cluster.start()
    yield cluster, startup_s
    if os.environ.get("LAE_KEEP_STACK") != "1":
        cluster.stop()


def _rows(session, cfg, services) -> dict:
    rows = []
    for service in services:
        rows += store.read_published_minutes(session, service, DAY, keyspace=cfg.keyspace)
    return {(r.service, r.minute.replace(tzinfo=UTC), r.path, r.status_class): r for r in rows}


@pytest.mark.timeout(2400)  # three extra JVMs and a DAG run; a loaded machine is slow
def test_batch_dag_on_the_cluster_gives_the_local_rows(settings, s3_service, cassandra_service,
                                                      spark, standalone, tmp_path):
    cluster, startup_s = standalone
    before = cluster.executors_launched()
    cfg = replace(settings, bucket="lae-batch-dag-sa", keyspace="lae_batch_dag_sa")
    t0 = time.monotonic()
    _run_dag(settings, cfg, DAY, cluster.spark_connection(), tmp_path,
             extra_env={"SPARK_LOCAL_IP": settings.host, "PYSPARK_PYTHON": sys.executable,
                        # spark-submit's defaults for this cluster (shuffle partitions sized to
                        # its 2 cores), as a deployment's Airflow workers would have them.
                        "SPARK_CONF_DIR": str(cluster.client_conf_dir())})
    cluster_s = time.monotonic() - t0
    after = cluster.executors_launched()
    assert all(after[w] > before[w] for w in after), (before, after)

    session = connect(cfg)
    try:
        services = set().union(*(store.batches_of_day(session, cfg.keyspace, DAY).values()))
        on_cluster = _rows(session, cfg, services)
        t1 = time.monotonic()
        local = recompute(spark, cfg, DAY)
        local_s = time.monotonic() - t1
        assert local.published
        in_local_mode = _rows(session, cfg, services)
    finally:
        session.cluster.shutdown()
    assert on_cluster.keys() == in_local_mode.keys() and on_cluster

    def differs(row, other) -> bool:
        return (any(getattr(row, c) != getattr(other, c) for c in MEASURES)
                or abs(estimate(row.users_hll) - estimate(other.users_hll))
                > 0.02 * max(1.0, estimate(other.users_hll)))

    differing = [k for k, row in on_cluster.items() if differs(row, in_local_mode[k])]
    assert not differing, differing[:5]

    record_figures(
        "spark_standalone_batch", fault="none (scale-out check)",
        load=f"one day, {sum(r.requests for r in on_cluster.values())} events, batch_recompute "
             "DAG on a standalone master + 2 workers vs local[2]",
        cluster_startup_s=round(startup_s, 1), cluster_dag_run_s=round(cluster_s, 1),
        local_recompute_s=round(local_s, 1), minute_rows=len(on_cluster),
        rows_differing=len(differing),
        executors_per_worker={w: after[w] - before[w] for w in after},
        events_in=sum(r.requests for r in on_cluster.values()))
