"""
### batch_recompute

Nightly at 02:00 UTC, recomputes the exact views of the **previous UTC day** (the run's data
interval) from the S3 master dataset into Cassandra's `batch_metrics_minute` / `_hour`, and
publishes them atomically (DESIGN §4–5, invariants 2, 3, 5). Logic: `lae.batch`.

Tasks, in order:

- `wait_for_archive` (sensor, reschedule mode): an archive manifest was written at least
  `allowed_lateness_minutes` after the day's end, so the archive has covered the day's offsets
  plus the allowed lateness. With no manifest at all it keeps waiting (then times out and
  alerts) unless `require_archive` is false — for master data imported by other means.
- `recompute`: `spark_jobs/batch_views.py --date <day>` through `spark_default`: read
  `date=<day>/`, de-duplicate by `event_id`, compute the views, write them under a new
  `batch_id`, verify the write, publish (the `batch_published` pointer), advance the watermark W
  to the end of the newest published day, drop superseded batches of the day.
- `validate`: per service, the distinct `event_id`s of the day's Parquet files (read with
  pyarrow, independently of Spark) equal the published hour rows' `requests`; emits an Asset
  event on `lae_batch_metrics` (extra: day, batch_id, requests) for the reconcile DAG.

**Re-running a day** (Clear in the UI, or a backfill) writes a new batch beside the published one
and switches the pointer only when it is complete: readers never see a half-written day, and
the rows are the same as before (the users sketches may differ byte-wise, not in estimate).

**Backfill** historical days (from the CLI, or *Backfill* in the DAG's page of the UI):

    airflow backfill create --dag-id batch_recompute --from-date 2026-11-01 --to-date 2026-11-07

A run's logical date is 02:00 UTC of the recomputed day (the run itself starts 24 h later), and
the backfill takes runs whose logical date lies in [from-date 00:00, to-date 00:00]: the command
above recomputes 2026-11-01 … 2026-11-06 (pass the day after the last one as `--to-date`).
Scheduled and manual runs are sequential (`max_active_runs=1`); a backfill has its own limit
(`--max-active-runs`, default 10), and days recomputed at once are safe: each publish and the
watermark move are conditional updates (lae.batch.store).

Triggering by hand: set `day` in the run's config (`{"day": "2026-11-20"}`); without it a
manual run recomputes the day before its logical date (Airflow infers a manual run's data
interval as the one ending at its logical date).

**Deadline**: a run that has not succeeded by 06:00 UTC of the day it runs (logical date
+ 28 h) sends a critical `deadline_missed` alert through the LAE notifier path (log, alerts
file, webhook/email); backfilled days whose deadline was already past are recorded at info.

Params: `day`, `allowed_lateness_minutes` (default 30), `require_archive` (default true).
Connections: `spark_default`, `aws_default`, `cassandra_default`; the Spark job itself reads
the `LAE_*` settings of the worker's environment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Asset, AsyncCallback, DeadlineAlert, DeadlineReference, Param, task
from airflow.timetables.interval import CronDataIntervalTimetable

from lae.alerts.deadline import RUN_DAY_0600_AFTER_LOGICAL_DATE
from lae.batch.operators import LaeSparkSubmitOperator
from lae.dag_defaults import default_args
from lae.tags import Tag

BATCH_VIEWS = Asset(name="lae_batch_metrics", uri="x-cassandra://lae/batch_metrics")
APPLICATION = Path(__file__).resolve().parents[1] / "spark_jobs" / "batch_views.py"
# A scheduled or backfilled run recomputes its data interval's day; `day` in the run's config
# names it explicitly (a manual run's inferred interval is the one *ending* at its logical date).
DAY = "{{ params.day or (data_interval_start | ds) }}"


def _s3():
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id="aws_default").get_conn()


@task.sensor(mode="reschedule", poke_interval=300, timeout=6 * 3600)
def wait_for_archive(day: str, params=None):
    from datetime import date

    from airflow.sdk import PokeReturnValue

    from lae.batch.checks import NoManifests, archive_covers
    from lae.config import get_settings

    lateness = timedelta(minutes=int(params["allowed_lateness_minutes"]))
    try:
        done = archive_covers(_s3(), get_settings().bucket, date.fromisoformat(day), lateness)
    except NoManifests as exc:
        if params["require_archive"]:
            print(f"{exc}; waiting (set require_archive=false for imported master data)")
            return PokeReturnValue(is_done=False)
        print(f"{exc}; require_archive is false: recomputing what the master dataset holds")
        done = True
    return PokeReturnValue(is_done=done)


@task(outlets=[BATCH_VIEWS])
def validate(day: str, outlet_events=None) -> dict:
    from datetime import date

    from airflow.providers.apache.cassandra.hooks.cassandra import CassandraHook

    from lae.batch.checks import compare_counts, master_counts, published_counts
    from lae.config import get_settings

    settings, d = get_settings(), date.fromisoformat(day)
    master = master_counts(_s3(), settings.bucket, d)
    hook = CassandraHook(cassandra_conn_id="cassandra_default")
    try:
        batch_id, published = published_counts(hook.get_conn(), settings.keyspace, d)
    finally:
        hook.shutdown_cluster()
    if master and batch_id is None:
        raise RuntimeError(f"{day}: nothing published, the master dataset has {master}")
    wrong = compare_counts(master, published)
    if wrong:
        raise RuntimeError(f"{day}, batch {batch_id}: " + "; ".join(wrong))
    extra = {"day": day, "batch_id": batch_id, "requests": sum(published.values())}
    outlet_events[BATCH_VIEWS].extra = extra
    return extra


with DAG(
    dag_id="batch_recompute",
    doc_md=__doc__,
    # A data-interval timetable, not the cron-trigger default: the run at 02:00 on D+1 has the
    # interval [D 02:00, D+1 02:00) and the logical date D 02:00, so `data_interval_start | ds`
    # is the day to recompute and a backfill's --from-date/--to-date name the days themselves.
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    # How far back a backfill can reach (tasks are not created for runs before start_date).
    start_date=datetime(2020, 1, 1, tzinfo=UTC),
    catchup=False,
    # Sequential days for scheduled runs (a backfill has its own --max-active-runs).
    max_active_runs=1,
    # Alert when the run has not finished by 06:00 UTC of the day it runs (logical date + 28 h,
    # see lae.alerts.deadline); the callback runs in the triggerer and goes through lae.alerts.
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=RUN_DAY_0600_AFTER_LOGICAL_DATE,
        callback=AsyncCallback("lae.alerts.deadline.deadline_missed"),
        name="batch_recompute_by_0600_utc",
    ),
    default_args=default_args(),
    tags=[Tag.BATCH],
    params={
        "day": Param(None, type=["null", "string"], pattern=r"^\d{4}-\d{2}-\d{2}$",
                     description="UTC day to recompute (default: the data interval's day)"),
        "allowed_lateness_minutes": Param(30, type="integer", minimum=0,
                                          description="after the day's end, before recomputing"),
        "require_archive": Param(True, type="boolean",
                                 description="wait for an archive manifest (false: imported data)"),
    },
):
    recompute = LaeSparkSubmitOperator(
        task_id="recompute",
        conn_id="spark_default",
        application=str(APPLICATION),
        application_args=["--date", DAY],
        name="lae-batch-views-" + DAY,
        # The lae package is installed where the driver and executors run (the same virtualenv
        # locally, the image on a cluster), so no py_files are shipped.
    )
    wait_for_archive(DAY) >> recompute >> validate(DAY)
