"""
### streaming_supervisor

Every 5 minutes, keeps the speed layer's streaming job (`spark_jobs/speed_views.py`,
logic in `lae.stream`) alive — and alone. One pass of `lae.stream.supervisor.supervise`:

- leaves the job alone when an operator stopped it (`streaming_control`, action=stop) or the
  supervisor gave up on a crash loop;
- checks liveness: the driver's pid (pid file and log under `$LAE_STATE_DIR/stream/`) and the
  age of its `stream_heartbeat` rows; a live driver that stopped reporting is killed;
- if the job is down, takes the Cassandra lease and starts the job **detached** (this task
  returns at once; the job runs for weeks), resuming from its checkpoints; alerts on every
  (re)start (`stream_restart`);
- alerts when the consumer lag is above `LAE_STREAM_LAG_ALERT` (`stream_lag`);
- after `LAE_STREAM_MAX_RESTARTS_PER_HOUR` starts within an hour it stops restarting and
  escalates (`stream_crash_loop`, critical): fix the cause, then trigger `streaming_control`
  with action=start.

Two runs at once never start two jobs: the lease (an LWT with a TTL, so a dead job cannot hold
it) decides. `max_active_runs=1` and no catch-up: only the current state matters.

The Spark master comes from the `spark_default` connection; the driver runs in client mode on
this worker (Spark standalone cannot run Python apps in cluster deploy mode).
Connections: `cassandra_default`, `spark_default`; the job reads the worker's `LAE_*` settings.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, task

from lae.dag_defaults import default_args
from lae.tags import Tag


@task(execution_timeout=timedelta(minutes=4))
def supervise() -> dict:
    from airflow.providers.apache.cassandra.hooks.cassandra import CassandraHook
    from airflow.sdk import BaseHook, get_current_context

    from lae.config import get_settings
    from lae.stream.supervisor import master_from_connection
    from lae.stream.supervisor import supervise as supervise_once

    ctx = get_current_context()
    spark = BaseHook.get_connection("spark_default")
    hook = CassandraHook(cassandra_conn_id="cassandra_default")
    try:
        result = supervise_once(
            hook.get_conn(), get_settings(), master_from_connection(spark.host, spark.port),
            alert_context={"dag_id": ctx["dag"].dag_id, "task_id": ctx["ti"].task_id,
                           "run_id": ctx["run_id"]})
    finally:
        hook.shutdown_cluster()
    print(f"supervisor: {result['action']} {result}")
    return result


with DAG(
    dag_id="streaming_supervisor",
    doc_md=__doc__,
    schedule="*/5 * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=[Tag.SPEED, Tag.OPS],
):
    supervise()
