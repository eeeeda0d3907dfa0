"""
### kafka_to_s3_archive

Every 15 minutes, copies what arrived on `logs.raw` since the last run into the immutable S3
master dataset, **exactly once** (DESIGN §4–5, invariants 1, 5, 6). The logic lives in
`lae.archive`; this file wires it.

Tasks, in order:

- `plan`: per partition, the range `[committed offset, end offset now)`, stored in the
  consumer group `lae-archiver`'s commit metadata so a retry re-reads exactly the same range.
  **Fails** if unarchived data was deleted by retention or is about to be, naming the
  partition and the offset range.
- `archive_partition` (one mapped task per partition): take the partition's lease (Cassandra
  LWT with a TTL), read the range, validate, write Parquet by event date/hour to
  `master/logs/v1/…` and rejects to `quarantine/…`, then commit the offsets.
- `write_manifest`: `manifests/archive/<run id>.json` with ranges, files, row and byte counts,
  quarantine reasons and events per event date (it also lists the ranges of an earlier run
  that crashed between its commit and its manifest).
- `publish_master`: an Asset event on `lae_master_logs_v1` (`x-s3://<bucket>/master/logs/v1`)
  whose extra lists the event dates touched, for the batch layer to recompute.

Files are named `<topic>+<partition>+<first>-<last>.parquet` (offsets inclusive, 20 digits);
re-running any task overwrites the same keys with the same bytes. Duplicates of an `event_id`
(producer retries) are kept as they arrived; the batch layer de-duplicates.

Params: `topic` (default: the configured raw topic), `max_rows` per file.
Connections: `kafka_default` (extra `bootstrap.servers`), `aws_default`, `cassandra_default`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, Asset, Param, task

from lae.archive.layout import MASTER_ASSET_NAME, master_asset_uri
from lae.config import get_settings
from lae.dag_defaults import default_args
from lae.tags import Tag

# Reading LAE_* env vars is cheap; every client, hook and connection is touched inside tasks.
MASTER = Asset(name=MASTER_ASSET_NAME, uri=master_asset_uri(get_settings().bucket))


def _options(params: dict, run_id: str):
    from lae.archive.run import RunOptions

    return RunOptions(run_id=run_id, topic=params.get("topic") or get_settings().raw_topic,
                      max_rows=int(params["max_rows"]))


def _bootstrap() -> str:
    from airflow.sdk import BaseHook

    return BaseHook.get_connection("kafka_default").extra_dejson["bootstrap.servers"]


def _s3():
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id="aws_default").get_conn()


@task
def plan(params=None, run_id=None) -> list[dict]:
    """Fix this run's ranges; only partitions with something to archive are returned."""
    from lae.archive.run import plan_run

    opts = _options(params, run_id)
    return [p for p in plan_run(_bootstrap(), opts.topic, opts, get_settings())
            if p["end"] > p["start"]]


@task(map_index_template="{{ task.op_kwargs['partition_plan']['partition'] }}")
def archive_partition(partition_plan: dict, params=None, run_id=None) -> dict:
    from airflow.providers.apache.cassandra.hooks.cassandra import CassandraHook

    from lae.archive.run import archive_one

    opts = _options(params, run_id)
    hook = CassandraHook(cassandra_conn_id="cassandra_default")
    try:
        return archive_one(_bootstrap(), _s3(), get_settings().bucket, hook.get_conn(),
                           get_settings().keyspace, partition_plan["topic"],
                           partition_plan["partition"], opts)
    finally:
        hook.shutdown_cluster()


# none_failed: with nothing planned the mapped task has no instances (skipped), and the
# manifest must still pick up ranges a crashed earlier run committed without one.
@task(trigger_rule="none_failed")
def write_manifest(results: list[dict] | None = None, params=None, run_id=None) -> dict:
    from lae.archive.run import finish_run

    opts = _options(params, run_id)
    manifest = finish_run(_bootstrap(), _s3(), get_settings().bucket, opts.topic,
                          list(results or []), opts)
    return {"key": manifest["key"], "dates": manifest["dates"], "totals": manifest["totals"],
            "run_id": run_id}


@task(outlets=[MASTER])
def publish_master(summary: dict, outlet_events=None) -> dict:
    """The Asset event's extra tells the batch layer which event dates need recomputing."""
    from airflow.exceptions import AirflowSkipException

    if not summary["dates"]:
        raise AirflowSkipException("nothing archived: no dates to announce")
    extra = {"dates": sorted(summary["dates"]), "events_per_date": summary["dates"],
             "manifest": summary["key"], "run_id": summary["run_id"]}
    outlet_events[MASTER].extra = extra
    return extra


with DAG(
    dag_id="kafka_to_s3_archive",
    doc_md=__doc__,
    schedule=timedelta(minutes=15),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    # One run at a time; the per-partition lease covers manual runs and retries that overlap.
    max_active_runs=1,
    default_args=default_args(),
    tags=[Tag.INGESTION],
    params={
        "topic": Param(None, type=["null", "string"], description="default: LAE_RAW_TOPIC"),
        "max_rows": Param(250_000, type="integer", minimum=1,
                          description="rows per Parquet file (part of the stored plan)"),
    },
):
    ranges = plan()
    results = archive_partition.expand(partition_plan=ranges)
    publish_master(write_manifest(results))
