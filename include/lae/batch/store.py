"""The batch tables in Cassandra: write a batch, verify it, publish it, drop superseded ones.

The life of a batch of one day (``view_name`` 'metrics'):

1. ``register`` — a ``batch_runs`` row (state 'writing') naming the services it will write,
   before any view row exists: whatever happens next, clean-up can find the slice.
2. ``write_partition`` (inside Spark's ``foreachPartition``) — prepared INSERTs, in unlogged
   single-partition batches with bounded concurrency, into ``batch_metrics_minute`` /
   ``_hour`` under the new ``batch_id``.
3. ``verify`` — rows and sum(requests) read back per service equal the DataFrame's.
4. ``publish`` — ONE conditional upsert of ``batch_published`` (view, day) → batch_id. Readers
   look the pointer up first, so until this write they see the old batch, after it the new
   one, and never a mix. Batch ids sort by creation time; the condition
   (``IF batch_id < new``) keeps a slower, older run from overwriting a newer publication.
5. ``advance_watermark`` — ``batch_watermark.complete_until`` = end of the newest published
   day (``watermark_end``: unpublished days below it are gaps the merge serves from realtime);
   only ever moves forward (a lightweight transaction compares against the stored value).
6. ``drop_superseded`` — one range delete per (service, day, old batch_id) slice, for every
   batch of that day older than the published one (a newer, still unpublished batch is left
   alone: it belongs to a run in flight).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta

from lae.config import Settings

log = logging.getLogger(__name__)

VIEW = "metrics"
TABLES = {"minute": "batch_metrics_minute", "hour": "batch_metrics_hour"}
MEASURES = ("requests", "errors", "client_errors", "bytes", "latency_sum", "latency_max",
            "latency_hist", "users_hll")
# Rows per unlogged batch. A batch only ever holds rows of one partition (service, day), so
# Cassandra applies it as ONE mutation: one request and one commit-log entry instead of
# BATCH_ROWS, and no batch log (Cassandra's batch-size warn/fail thresholds only concern
# batches spanning several partitions). Row-at-a-time INSERTs spent most of the write in the
# driver's per-request overhead.
BATCH_ROWS = 50
# In-flight batches per Spark partition: enough to hide the round trip, few enough not to
# overload one local node.
WRITE_CONCURRENCY = 8
# Rows read from Spark, grouped into batches and sent, per round (bounds the Python memory).
WRITE_CHUNK_ROWS = 5000
# Rows per page when reading a slice back to verify it.
VERIFY_PAGE_ROWS = 5000


class BatchError(RuntimeError):
    """The batch could not be written, verified or published."""


def new_batch_id(now: datetime | None = None) -> str:
    """A fresh id that sorts by creation time: ``20261126T020000123456Z-1a2b3c4d``."""
    now = now or datetime.now(UTC)
    return f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{os.urandom(4).hex()}"


def _columns(bucket: str) -> tuple[str, ...]:
    return ("service", "day", "batch_id", bucket, "path", "status_class", *MEASURES)


def insert_cql(keyspace: str, bucket: str) -> str:
    cols = _columns(bucket)
    return (f"INSERT INTO {keyspace}.{TABLES[bucket]} ({', '.join(cols)}) "  # noqa: S608
            f"VALUES ({', '.join('?' for _ in cols)})")


def _utc(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, UTC)


def row_values(row, batch_id: str, bucket: str) -> tuple:
    """One view row (with the bucket start as epoch millis in ``bucket_ms``) → INSERT values."""
    return (row["service"], row["day"], batch_id, _utc(row["bucket_ms"]), row["path"],
            row["status_class"], row["requests"], row["errors"], row["client_errors"],
            row["bytes"], row["latency_sum"], row["latency_max"], list(row["latency_hist"]),
            None if row["users_hll"] is None else bytes(row["users_hll"]))


def write_partition(rows: Iterator, settings: Settings, batch_id: str, bucket: str) -> None:
    """Write one Spark partition of view rows; runs on an executor (its own session)."""
    from itertools import islice

    from cassandra.concurrent import execute_concurrent
    from cassandra.query import BatchStatement, BatchType

    from lae.cassandra import connect, idempotent

    def batch_of(values: list[tuple]) -> BatchStatement:
        # Idempotent: full rows under their whole key and batch id; a timed-out batch is resent.
        batch = idempotent(BatchStatement(batch_type=BatchType.UNLOGGED))
        for v in values:
            batch.add(insert, v)
        return batch

    session = connect(settings)
    try:
        insert = session.prepare(insert_cql(settings.keyspace, bucket))
        rows = iter(rows)
        while chunk := [row_values(r, batch_id, bucket) for r in islice(rows, WRITE_CHUNK_ROWS)]:
            # raise_on_first_error: a failed write fails the Spark task (and the job); nothing
            # is published, and the retry writes a new batch.
            execute_concurrent(session, ((batch_of(g), None) for g in partition_groups(chunk)),
                               concurrency=WRITE_CONCURRENCY, raise_on_first_error=True)
    finally:
        session.cluster.shutdown()


def partition_groups(values: Iterable[tuple], size: int = BATCH_ROWS) -> Iterator[list[tuple]]:
    """``row_values`` tuples in groups of at most ``size`` rows of ONE partition key each.

    (service, day), the tables' partition key, are the first two values.
    """
    by_partition: dict[tuple, list[tuple]] = {}
    for v in values:
        by_partition.setdefault(v[:2], []).append(v)
    for rows in by_partition.values():
        for i in range(0, len(rows), size):
            yield rows[i:i + size]


def register(session, keyspace: str, day: date, batch_id: str, services: Iterable[str]) -> None:
    now = datetime.now(UTC)
    session.execute(
        f"INSERT INTO {keyspace}.batch_runs (view_name, day, batch_id, services, state, "  # noqa: S608
        "created_at, updated_at) VALUES (%s, %s, %s, %s, 'writing', %s, %s)",
        (VIEW, day, batch_id, set(services), now, now),
    )


def set_state(session, keyspace: str, day: date, batch_id: str, state: str, **counts) -> None:
    assigns = ", ".join(["state = %s", "updated_at = %s", *(f"{k} = %s" for k in counts)])
    session.execute(
        f"UPDATE {keyspace}.batch_runs SET {assigns} "  # noqa: S608
        "WHERE view_name = %s AND day = %s AND batch_id = %s",
        (state, datetime.now(UTC), *counts.values(), VIEW, day, batch_id),
    )


def slice_totals(session, keyspace: str, bucket: str, service: str, day: date,
                 batch_id: str) -> tuple[int, int]:
    """(rows, sum of requests) of one batch's slice of one service-day.

    Summed here over a paged read rather than with ``count(*)``/``sum()`` in CQL: a server-side
    aggregate over a big slice is one request, and on a loaded node it hit the coordinator's
    read timeout (seen in the batch benchmark); pages of ``VERIFY_PAGE_ROWS`` never do.
    """
    from cassandra.query import SimpleStatement

    query = SimpleStatement(
        f"SELECT requests FROM {keyspace}.{TABLES[bucket]} "  # noqa: S608
        "WHERE service = %s AND day = %s AND batch_id = %s", fetch_size=VERIFY_PAGE_ROWS)
    rows = requests = 0
    for row in session.execute(query, (service, day, batch_id), timeout=120):
        rows += 1
        requests += row.requests or 0
    return rows, requests


def verify(session, keyspace: str, day: date, batch_id: str,
           expected: dict[str, dict[str, tuple[int, int]]]) -> None:
    """``expected[bucket][service] = (rows, requests)``, as computed by the DataFrame."""
    wrong = []
    for bucket, per_service in expected.items():
        for service, want in sorted(per_service.items()):
            got = slice_totals(session, keyspace, bucket, service, day, batch_id)
            if got != tuple(want):
                wrong.append(f"{bucket} {service}: wrote {want}, read back {got}")
    if wrong:
        raise BatchError(f"batch {batch_id} of {day} failed verification: " + "; ".join(wrong))


def published_batch(session, keyspace: str, day: date) -> str | None:
    row = session.execute(
        f"SELECT batch_id FROM {keyspace}.batch_published "  # noqa: S608
        "WHERE view_name = %s AND day = %s", (VIEW, day),
    ).one()
    return row.batch_id if row else None


def publish(session, keyspace: str, day: date, batch_id: str) -> bool:
    """Make ``batch_id`` the day's live batch; False if a newer batch is already published."""
    now = datetime.now(UTC)
    first = session.execute(
        f"INSERT INTO {keyspace}.batch_published (view_name, day, batch_id, published_at) "  # noqa: S608
        "VALUES (%s, %s, %s, %s) IF NOT EXISTS", (VIEW, day, batch_id, now),
    ).one()
    if first.applied:
        return True
    if first.batch_id == batch_id:  # a retry of a publish that already happened
        return True
    newer = session.execute(
        f"UPDATE {keyspace}.batch_published SET batch_id = %s, published_at = %s "  # noqa: S608
        "WHERE view_name = %s AND day = %s IF batch_id < %s",
        (batch_id, now, VIEW, day, batch_id),
    ).one()
    return bool(newer.applied)


def as_date(value) -> date:
    """A CQL ``date`` as the driver returns it (cassandra.util.Date) → datetime.date."""
    return value if type(value) is date else value.date()


def watermark_end(days: Iterable[date]) -> date | None:
    """W's day: the day after the newest published day.

    Not "the end of the contiguous run from the earliest day": late events for a day before
    the first nightly run get that day published by ``batch_late_data``, and such an old island
    would then pin W before every later day forever. Days below W without a batch are gaps:
    the merge serves them from realtime (``batch_days``), reconcile reports them as missing and
    never expires their realtime rows.
    """
    ordered = sorted(set(days))
    return ordered[-1] + timedelta(days=1) if ordered else None


def advance_watermark(session, keyspace: str) -> datetime | None:
    """Move W to the end of the newest published day; never backwards. Returns W."""
    rows = list(session.execute(
        f"SELECT day, batch_id FROM {keyspace}.batch_published WHERE view_name = %s",  # noqa: S608
        (VIEW,),
    ))
    by_day = {as_date(r.day): r.batch_id for r in rows}
    end = watermark_end(by_day)
    if end is None:
        return None
    w = datetime(end.year, end.month, end.day, tzinfo=UTC)
    last_batch = by_day[end - timedelta(days=1)]
    now = datetime.now(UTC)
    res = session.execute(
        f"INSERT INTO {keyspace}.batch_watermark (view_name, complete_until, batch_id, "  # noqa: S608
        "published_at) VALUES (%s, %s, %s, %s) IF NOT EXISTS", (VIEW, w, last_batch, now),
    ).one()
    if res.applied:
        return w
    current = res.complete_until.replace(tzinfo=UTC)
    if w <= current:
        return current
    moved = session.execute(
        f"UPDATE {keyspace}.batch_watermark SET complete_until = %s, batch_id = %s, "  # noqa: S608
        "published_at = %s WHERE view_name = %s IF complete_until < %s",
        (w, last_batch, now, VIEW, w),
    ).one()
    if moved.applied:
        return w
    return moved.complete_until.replace(tzinfo=UTC)  # someone moved it further meanwhile


def read_watermark(session, keyspace: str) -> datetime | None:
    row = session.execute(
        f"SELECT complete_until FROM {keyspace}.batch_watermark WHERE view_name = %s",  # noqa: S608
        (VIEW,),
    ).one()
    return row.complete_until.replace(tzinfo=UTC) if row and row.complete_until else None


def batches_of_day(session, keyspace: str, day: date) -> dict[str, set[str]]:
    """batch_id → services, for every batch registered for the day."""
    rows = session.execute(
        f"SELECT batch_id, services FROM {keyspace}.batch_runs "  # noqa: S608
        "WHERE view_name = %s AND day = %s", (VIEW, day),
    )
    return {r.batch_id: set(r.services or ()) for r in rows}


def drop_batch(session, keyspace: str, day: date, batch_id: str, services: Iterable[str]) -> None:
    for table in TABLES.values():
        for service in sorted(services):
            # A clustering-prefix delete: one range tombstone per slice, not one per row.
            session.execute(
                f"DELETE FROM {keyspace}.{table} "  # noqa: S608
                "WHERE service = %s AND day = %s AND batch_id = %s",
                (service, day, batch_id),
            )
    session.execute(
        f"DELETE FROM {keyspace}.batch_runs "  # noqa: S608
        "WHERE view_name = %s AND day = %s AND batch_id = %s", (VIEW, day, batch_id),
    )


def drop_superseded(session, keyspace: str, day: date) -> list[str]:
    """Delete every batch of the day older than the published one; returns the ids dropped."""
    live = published_batch(session, keyspace, day)
    if live is None:
        return []
    dropped = []
    for batch_id, services in sorted(batches_of_day(session, keyspace, day).items()):
        if batch_id < live:
            drop_batch(session, keyspace, day, batch_id, services)
            dropped.append(batch_id)
    return dropped


def read_published_minutes(session, service: str, day: date,
                           keyspace: str | None = None) -> list:
    """The live minute rows of one service-day (empty when the day is not published).

    Pointer, slice, pointer again: a superseded slice is dropped only after the pointer has
    moved on (and the pointer only moves to newer batches), so an unchanged pointer proves the
    slice was read whole. A changed one (a publish raced the read) means: read again.
    """
    ks = keyspace or session.keyspace
    batch_id = published_batch(session, ks, day)
    for _ in range(5):
        if batch_id is None:
            return []
        rows = list(session.execute(
            f"SELECT * FROM {ks}.batch_metrics_minute "  # noqa: S608
            "WHERE service = %s AND day = %s AND batch_id = %s", (service, day, batch_id),
        ))
        again = published_batch(session, ks, day)
        if again == batch_id:
            return rows
        batch_id = again
    raise BatchError(f"{service} {day}: the published batch kept changing while reading")
