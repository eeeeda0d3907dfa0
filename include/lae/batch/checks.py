"""The checks the ``batch_recompute`` DAG runs around the Spark job, without Spark.

- ``archive_covers(client, bucket, day, lateness, now)``: has the archive caught up with the
  day? True when an archive manifest (``manifests/archive/*.json``) was written at least
  ``lateness`` after the day's end: that run planned its offset ranges after everything that
  arrived up to roughly then, so the day's on-time events plus the allowed lateness are in the
  master dataset. Events later than that are late data, handled by ``batch_late_data`` (it
  recomputes the days the archive's asset events name).
- ``master_counts`` / ``published_counts`` / ``compare_counts``: the validation step —
  distinct ``event_id`` per service of the day's Parquet files, read with pyarrow straight
  from S3 (an implementation independent of the Spark job), against the sum of ``requests``
  of the published hour rows per service.
"""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta

from lae.archive.layout import MANIFEST_PREFIX, MASTER_PREFIX, PENDING_PREFIX
from lae.batch.compute import day_bounds
from lae.batch.store import VIEW, published_batch


class NoManifests(LookupError):
    """The archive has never written a manifest to this bucket."""


def latest_manifest_time(client, bucket: str) -> datetime | None:
    newest = None
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=MANIFEST_PREFIX + "/"):
        for obj in page.get("Contents", []):
            if obj["Key"].startswith(PENDING_PREFIX + "/") or not obj["Key"].endswith(".json"):
                continue
            if newest is None or obj["LastModified"] > newest:
                newest = obj["LastModified"]
    return newest


def archive_covers(client, bucket: str, day: date, lateness: timedelta) -> bool:
    """Whether an archive run finished at least ``lateness`` after the day's end.

    Raises NoManifests when there is no manifest at all, so the caller decides (the DAG fails
    by default rather than publishing an empty day over a broken archiver).
    """
    newest = latest_manifest_time(client, bucket)
    if newest is None:
        raise NoManifests(f"no archive manifests under s3://{bucket}/{MANIFEST_PREFIX}/")
    return newest >= day_bounds(day)[1] + lateness


def day_keys(client, bucket: str, day: date) -> list[str]:
    prefix = f"{MASTER_PREFIX}/date={day.isoformat()}/"
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".parquet")]
    return sorted(keys)


def master_counts(client, bucket: str, day: date) -> dict[str, int]:
    """service → distinct event_ids of the day's master-dataset files (events in the day)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    start, end = day_bounds(day)
    seen: dict[str, str] = {}
    for key in day_keys(client, bucket, day):
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        table = pq.read_table(io.BytesIO(body), columns=["event_id", "service", "ts"])
        mask = pc.and_(pc.greater_equal(table["ts"], start), pc.less(table["ts"], end))
        table = table.filter(mask)
        for event_id, service in zip(table["event_id"].to_pylist(),
                                     table["service"].to_pylist(), strict=True):
            seen.setdefault(event_id, service)
    counts: dict[str, int] = {}
    for service in seen.values():
        counts[service] = counts.get(service, 0) + 1
    return counts


def published_counts(session, keyspace: str, day: date) -> tuple[str | None, dict[str, int]]:
    """(published batch_id, service → sum of requests of its hour rows) for the day."""
    batch_id = published_batch(session, keyspace, day)
    if batch_id is None:
        return None, {}
    services = session.execute(
        f"SELECT services FROM {keyspace}.batch_runs "  # noqa: S608
        "WHERE view_name = %s AND day = %s AND batch_id = %s", (VIEW, day, batch_id),
    ).one()
    counts = {}
    for service in sorted((services.services if services else None) or ()):
        row = session.execute(
            f"SELECT sum(requests) AS requests FROM {keyspace}.batch_metrics_hour "  # noqa: S608
            "WHERE service = %s AND day = %s AND batch_id = %s", (service, day, batch_id),
        ).one()
        counts[service] = int(row.requests or 0)
    return batch_id, {s: n for s, n in counts.items() if n}


def compare_counts(master: dict[str, int], published: dict[str, int]) -> list[str]:
    """Human-readable differences; empty when they agree."""
    return [f"{s}: master dataset {master.get(s, 0)}, published {published.get(s, 0)}"
            for s in sorted(set(master) | set(published))
            if master.get(s, 0) != published.get(s, 0)]
