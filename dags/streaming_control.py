"""
### streaming_control

Start or stop the speed layer's streaming job **on purpose**, from the Airflow UI (*Trigger DAG*
with the `action` param) — the way to take the job down for maintenance without the
`streaming_supervisor` DAG starting it again five minutes later.

- `action=stop`: records the desired state 'stopped' in Cassandra (`stream_control`), then
  stops the driver (SIGTERM: queries stop cleanly, the lease is released; SIGKILL after 90 s).
  A job running on another host stops itself within seconds on reading the desired state.
  From then on the supervisor reports `left_stopped` and starts nothing.
- `action=start`: records 'running' (this also clears a crash-loop escalation) and starts the
  job at once if it is down, resuming from its checkpoints.

`reason` is stored with the desired state and shown by `lae stream status`.
The same from a shell: `lae stream stop|start|status`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, Param, task

from lae.dag_defaults import default_args
from lae.tags import Tag


@task(execution_timeout=timedelta(minutes=4))
def control(params=None) -> dict:
    from airflow.providers.apache.cassandra.hooks.cassandra import CassandraHook
    from airflow.sdk import BaseHook, get_current_context

    from lae.config import get_settings
    from lae.stream import supervisor

    ctx = get_current_context()
    who = f"airflow:{ctx['run_id']}"
    hook = CassandraHook(cassandra_conn_id="cassandra_default")
    try:
        session, settings = hook.get_conn(), get_settings()
        if params["action"] == "stop":
            result = supervisor.stop(session, settings, by=who, reason=params["reason"])
        else:
            spark = BaseHook.get_connection("spark_default")
            result = supervisor.start(
                session, settings, by=who,
                master=supervisor.master_from_connection(spark.host, spark.port),
                alert_context={"dag_id": ctx["dag"].dag_id, "task_id": ctx["ti"].task_id,
                               "run_id": ctx["run_id"]})
    finally:
        hook.shutdown_cluster()
    print(f"streaming_control {params['action']}: {result}")
    return result


with DAG(
    dag_id="streaming_control",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=[Tag.SPEED, Tag.OPS],
    params={
        "action": Param("stop", enum=["start", "stop"],
                        description="stop: keep the job down; start: run it (clears a crash loop)"),
        "reason": Param("maintenance", type="string", description="why (stored, shown in status)"),
    },
):
    control()
