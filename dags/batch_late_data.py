"""
### batch_late_data

Recomputes past days that late events reached, without a person (DESIGN §5, invariant 5).
Runs whenever `kafka_to_s3_archive` updates the master-dataset Asset (`lae_master_logs_v1`);
the events' extra names the event dates each archive run touched.

Tasks:

- `plan`: the touched days whose published batch is older than the archive event (late data
  arrived after the batch), or that were never published although their nightly run is over
  (rule and reasons: `lae.batch.late`). Days still ahead of their nightly run are left to it.
- `recompute_day` (mapped, one per day): triggers `batch_recompute` with `{"day": …}`; those runs
  queue behind each other (`max_active_runs=1`), write a new batch and publish it atomically.

Connections: `cassandra_default` (to read `batch_published`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, Asset, task

from lae.archive.layout import MASTER_ASSET_NAME, master_asset_uri
from lae.config import get_settings
from lae.dag_defaults import default_args
from lae.tags import Tag

MASTER = Asset(name=MASTER_ASSET_NAME, uri=master_asset_uri(get_settings().bucket))


@task
def plan(triggering_asset_events=None, dag_run=None) -> list[dict]:
    from airflow.providers.apache.cassandra.hooks.cassandra import CassandraHook

    from lae.batch.late import days_to_recompute, published_at, touched_days

    events = [e for evs in (triggering_asset_events or {}).values() for e in evs]
    touched = touched_days(events)
    hook = CassandraHook(cassandra_conn_id="cassandra_default")
    try:
        published = published_at(hook.get_conn(), get_settings().keyspace, touched)
    finally:
        hook.shutdown_cluster()
    # The run's own time, not the wall clock: a re-run of this run decides the same way.
    today = dag_run.run_after.astimezone(UTC).date()
    due = days_to_recompute(touched, published, today)
    print(f"touched {sorted(d.isoformat() for d in touched)}; recomputing {due}")
    return [{"day": d.isoformat()} for d in due]


with DAG(
    dag_id="batch_late_data",
    doc_md=__doc__,
    schedule=[MASTER],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=[Tag.BATCH],
):
    TriggerDagRunOperator.partial(
        task_id="recompute_day",
        trigger_dag_id="batch_recompute",
        wait_for_completion=False,
    ).expand(conf=plan())
