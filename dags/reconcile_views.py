"""
### reconcile_views

The serving layer's housekeeping (DESIGN §4–5, invariants 3 and 4). Runs every 15 minutes
**and** whenever `batch_recompute` publishes a day (Asset `lae_batch_metrics`, whose events
name the day), so a newly published day is reconciled at once. Logic: `lae.serving.reconcile`.

One task, `reconcile`, in this order (order matters: drift needs the realtime rows that
expiry deletes):

1. **drift** per day and service, for the minutes both layers cover: batch vs realtime
   requests/errors into `view_drift`. Realtime's shortfall up to the day's late events
   (`stream_late_events`, written by the speed layer) is *explained*; the rest is
   *unexplained* and alerts (critical, naming service, day and size) above
   `drift_threshold` (default 0.005 = 0.5 % of the day's batch requests; `LAE_DRIFT_THRESHOLD`).
2. **materialize** `serving_metrics_minute/_hour` for today, yesterday and the days named by
   the triggering Asset events: batch for buckets before W, realtime from W.
3. **expire** realtime rows older than W minus `grace_minutes` (explicit range deletes; the
   `rt_` tables' TTL is only the safety net).
4. **report days missing a batch** (warning alert), for days with data in the last week whose
   nightly batch is overdue.

The run's report (drift rows, alerts, counts, expired partitions, missing days) is its XCom.
Params: `drift_threshold`, `grace_minutes`. Connection: `cassandra_default`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, task

from lae.config import get_settings
from lae.dag_defaults import default_args
from lae.tags import Tag

# Declared the same way in dags/batch_recompute.py, which emits its events.
BATCH_VIEWS = Asset(name="lae_batch_metrics", uri="x-cassandra://lae/batch_metrics")
SETTINGS = get_settings()


@task
def reconcile(params=None, dag_run=None, triggering_asset_events=None) -> dict:
    from datetime import date

    from airflow.providers.apache.cassandra.hooks.cassandra import CassandraHook

    from lae.alerts import send_alert
    from lae.serving.reconcile import ReconcileConfig
    from lae.serving.reconcile import reconcile as run_reconcile
    from lae.serving.store import ViewStore

    event_days = {date.fromisoformat(e.extra["day"])
                  for events in (triggering_asset_events or {}).values() for e in events
                  if (e.extra or {}).get("day")}
    cfg = ReconcileConfig(grace=timedelta(minutes=int(params["grace_minutes"])),
                          threshold=float(params["drift_threshold"]))
    hook = CassandraHook(cassandra_conn_id="cassandra_default")
    try:
        store = ViewStore(hook.get_conn(), get_settings().keyspace)
        # The run's own time (not the wall clock), so a re-run decides the same way.
        report = run_reconcile(store, now=dag_run.run_after.astimezone(UTC),
                               event_days=event_days, cfg=cfg,
                               alert=lambda *a, **kw: send_alert(
                                   *a, dag_id=dag_run.dag_id, task_id="reconcile",
                                   run_id=dag_run.run_id, **kw))
    finally:
        hook.shutdown_cluster()
    print(f"W={report.w} drift={len(report.drift)} alerts={len(report.alerts)} "
          f"materialized={report.materialized} expired={len(report.expired_partitions)} "
          f"missing={report.missing_batch_days}")
    return report.as_dict()


with DAG(
    dag_id="reconcile_views",
    doc_md=__doc__,
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/15 * * * *", timezone="UTC"), assets=[BATCH_VIEWS]),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    # Runs touch the same rows: one at a time.
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    default_args=default_args(),
    tags=[Tag.SERVING],
    params={
        "drift_threshold": Param(float(SETTINGS.drift_threshold), type="number", minimum=0,
                                 description="unexplained drift share that alerts (0.005 = 0.5 %)"),
        "grace_minutes": Param(SETTINGS.rt_grace_minutes, type="integer", minimum=0,
                               description="realtime rows stay this long below W"),
    },
):
    reconcile()
