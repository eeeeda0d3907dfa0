"""The speed layer's hour view, rolled up from its own minute rows (no streaming query of its own).

Why: a streaming query for the hour view read and parsed the whole topic a second time and kept
a second de-duplication state (~3M event ids at 5,000 events/s on a 10-minute watermark), on
the cores the minute view — the freshness path — needs. The hour rows are the minute rows
rolled up, so they are computed from those instead, with ``lae.views.metrics_hour``: the very
rollup the batch layer applies to its minute rows.

How: the minute query's sink ``mark``s the (service, day, hour) of every minute row it upserts;
every rollup interval a driver thread reads the *complete* minute rows of the marked hours back
from ``rt_metrics_minute``, rolls them up and upserts the hour rows. Complete values, so a
repeated rollup (or one after a replayed micro-batch) writes the same rows again.

What the ``<job>_hour`` heartbeat says: a pass first reads the minute query's last progress
(micro-batch j), then takes the marks. A ``foreachBatch`` returns before its progress is
reported, so the marks of every micro-batch ≤ j are in; after the upserts the hour rows reflect
the topic up to j's end offsets, which the heartbeat row reports as its offsets (the
supervisor's and the tests' "caught up" checks read them), with j's watermark W.

Crash: the marks live in memory. Every micro-batch after j drops events at or before a
watermark ≥ W, so it can only change hours ≥ the hour of W; a new run starts by marking all the
hours from there on (``catch_up_since``: W of the last heartbeat; every hour when none is known).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from lae.stream import store
from lae.stream.progress import heartbeat_of

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
HourKey = tuple[str, date, datetime]  # (service, day, hour start in UTC)


def hour_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _cassandra_utc(ts: datetime) -> datetime:
    """The driver returns naive UTC datetimes."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _as_date(value) -> date:
    """cassandra.util.Date (the driver's CQL date) or datetime.date → datetime.date."""
    return value if isinstance(value, date) else value.date()


class HourMarks:
    """The (service, day, hour) partitions whose minute rows changed since the last rollup."""

    def __init__(self):
        self._lock = threading.Lock()
        self._marks: set[HourKey] = set()

    def mark(self, keys: Iterable[HourKey]) -> None:
        with self._lock:
            self._marks.update(keys)

    def mark_minute_rows(self, rows) -> None:
        """Rows of the minute sink (``service``, ``day``, the minute start in ``bucket_ms``)."""
        self.mark((r["service"], r["day"],
                   datetime.fromtimestamp(r["bucket_ms"] // 3_600_000 * 3600, UTC))
                  for r in rows)

    def take(self) -> set[HourKey]:
        with self._lock:
            taken, self._marks = self._marks, set()
        return taken

    def __len__(self) -> int:
        with self._lock:
            return len(self._marks)


def minute_schema():
    """The StructType of ``lae.views.metrics_minute``'s rows (V001's columns)."""
    from pyspark.sql import types as T

    types = {"service": T.StringType(), "day": T.DateType(), "minute": T.TimestampType(),
             "path": T.StringType(), "status_class": T.StringType(),
             "latency_sum": T.DoubleType(), "latency_max": T.DoubleType(),
             "latency_hist": T.ArrayType(T.LongType()), "users_hll": T.BinaryType()}
    from lae.views import MINUTE_COLUMNS

    return T.StructType([T.StructField(c, types.get(c, T.LongType())) for c in MINUTE_COLUMNS])


def _minute_select(keyspace: str) -> str:
    from lae.views import MINUTE_COLUMNS

    return (f"SELECT {', '.join(MINUTE_COLUMNS)} FROM {keyspace}.rt_metrics_minute "  # noqa: S608 - keyspace name from settings
            "WHERE service = ? AND day = ? AND minute >= ? AND minute < ?")


def read_minute_rows(session, statement, hours: Iterable[HourKey]) -> list[tuple]:
    """The rt minute rows of these hours, as tuples in ``minute_schema`` order."""
    from cassandra.concurrent import execute_concurrent_with_args

    params = [(s, d, h, h + HOUR) for s, d, h in hours]
    if not params:
        return []
    results = execute_concurrent_with_args(session, statement, params,
                                           concurrency=store.WRITE_CONCURRENCY,
                                           raise_on_first_error=True, results_generator=True)
    rows = []
    for result in results:
        for r in result.result_or_exc:
            rows.append((r.service, _as_date(r.day), _cassandra_utc(r.minute), r.path,
                         r.status_class, r.requests, r.errors, r.client_errors, r.bytes,
                         r.latency_sum, r.latency_max,
                         None if r.latency_hist is None else list(r.latency_hist),
                         None if r.users_hll is None else bytes(r.users_hll)))
    return rows


def hour_rows(spark, minute_rows: list[tuple]) -> list:
    """``lae.views.metrics_hour`` over these minute rows (static frame), collected with the
    hour start as epoch millis in ``bucket_ms`` (``store.rt_values``' shape)."""
    import pyspark.sql.functions as F

    from lae.views import metrics_hour

    if not minute_rows:
        return []
    frame = spark.createDataFrame(minute_rows, minute_schema())
    return (metrics_hour(frame).withColumn("bucket_ms", F.unix_millis(F.col("hour")))
            .drop("hour").collect())


def prepare_statements(session, keyspace: str) -> tuple:
    """(select of an hour's minute rows, idempotent upsert of an hour row)."""
    return (session.prepare(_minute_select(keyspace)),
            store.prepare_upsert(session, keyspace, "hour"))


def roll_hours(spark, session, keyspace: str, hours: Iterable[HourKey],
               statements: tuple | None = None) -> tuple[int, int]:
    """Read the complete minute rows of these hours, roll them up, upsert the hour rows;
    returns (minute rows read, hour rows written). ``statements``: ``prepare_statements``."""
    select, insert = statements or prepare_statements(session, keyspace)
    minute_rows = read_minute_rows(session, select, hours)
    rows = hour_rows(spark, minute_rows)
    store.execute_all(session, insert, [store.rt_values(r, "hour") for r in rows])
    return len(minute_rows), len(rows)


def catch_up_hours(session, keyspace: str, since: datetime | None) -> set[HourKey]:
    """Every (service, day, hour) with rt minute rows at or after the hour of ``since``
    (all of them when ``since`` is None): what a crashed run may have left un-rolled."""
    start = None if since is None else hour_start(since)
    partitions = session.execute(
        f"SELECT DISTINCT service, day FROM {keyspace}.rt_metrics_minute")  # noqa: S608 - keyspace name from settings
    minutes = session.prepare(
        f"SELECT minute FROM {keyspace}.rt_metrics_minute "  # noqa: S608 - keyspace name from settings
        "WHERE service = ? AND day = ? AND minute >= ?")
    floor = start or datetime(1970, 1, 1, tzinfo=UTC)
    hours: set[HourKey] = set()
    for p in partitions:
        day = _as_date(p.day)
        if start is not None and day < start.date():
            continue
        for r in session.execute(minutes, (p.service, day, floor)):
            hours.add((p.service, day, hour_start(_cassandra_utc(r.minute))))
    return hours


class HourRollup(threading.Thread):
    """The driver thread that keeps ``rt_metrics_hour`` rolled up from ``rt_metrics_minute``."""

    def __init__(self, spark, session, keyspace: str, minute_query, hour_name: str,
                 interval_s: float, trigger_ms: int, marks: HourMarks | None = None,
                 catch_up_since: datetime | None = None, catch_up: bool = True):
        super().__init__(name="hour-rollup", daemon=True)
        self.spark, self.session, self.keyspace = spark, session, keyspace
        self.minute_query, self.hour_name = minute_query, hour_name
        self.interval_s, self.trigger_ms = interval_s, trigger_ms
        self.marks = marks if marks is not None else HourMarks()
        self.stopping = threading.Event()
        self._catch_up = catch_up
        self._since = catch_up_since
        self._statements = prepare_statements(session, keyspace)

    def run(self) -> None:
        if self._catch_up:
            self._tolerant(self._mark_catch_up)
        while not self.stopping.wait(self.interval_s):
            self._tolerant(self.roll)

    def _mark_catch_up(self) -> None:
        hours = catch_up_hours(self.session, self.keyspace, self._since)
        self.marks.mark(hours)
        self._catch_up = False
        log.info("hour rollup: %d hours to re-roll since %s", len(hours), self._since)

    def _tolerant(self, fn) -> None:
        # A failed pass keeps its marks (roll puts them back) and is retried next interval; a
        # longer outage shows as a stale <job>_hour heartbeat, which the supervisor acts on.
        try:
            fn()
        except Exception:
            log.exception("hour rollup: %s failed; retrying", fn.__name__)

    def roll(self) -> None:
        """One pass: roll up the marked hours, then report the offsets they now reflect."""
        if self._catch_up:
            self._mark_catch_up()
        progress = self.minute_query.lastProgress  # before take(): see the module docstring
        if progress is None:
            store.touch_heartbeat(self.session, self.keyspace, self.hour_name,
                                  str(self.minute_query.runId))
            return
        covered = heartbeat_of(json.loads(progress.json))
        started = time.monotonic()
        hours = self.marks.take()
        try:
            read, written = roll_hours(self.spark, self.session, self.keyspace, hours,
                                       self._statements)
        except BaseException:
            self.marks.mark(hours)
            raise
        elapsed_ms = round((time.monotonic() - started) * 1000)
        hb = replace(covered, query_name=self.hour_name, input_rows=read,
                     processing_ms=elapsed_ms, dropped_by_watermark=0,
                     last_progress_at=datetime.now(UTC))
        store.write_heartbeat(self.session, self.keyspace, hb, self.trigger_ms)
        if hours:
            log.debug("hour rollup: %d hours, %d minute rows → %d hour rows in %d ms",
                      len(hours), read, written, elapsed_ms)
