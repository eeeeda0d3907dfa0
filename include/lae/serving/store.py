"""Cassandra reads and writes of the serving layer, all through prepared statements.

``ViewStore(session, keyspace)`` prepares each statement once (per session) and reads:

- the published batch of each day (``batch_published``) and W (``batch_watermark``);
- one service-day of minute or hour rows of a layer, restricted to ``[start, end)`` on the
  clustering column (the batch slice under the day's published batch_id);
- services, stream heartbeats, drift rows, late-event counts (``stream_late_events``, V004).

and writes ``serving_*`` rows and ``view_drift`` rows, and deletes realtime rows below a bound.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cassandra import InvalidRequest
from cassandra.cluster import EXEC_PROFILE_DEFAULT, _ConfigMode
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import tuple_factory

from lae.batch.store import VIEW, as_date
from lae.cassandra import idempotent
from lae.serving.merge import BATCH, REALTIME, ViewRow

MEASURES = ("requests", "errors", "client_errors", "bytes", "latency_sum", "latency_max",
            "latency_hist", "users_hll")
TABLES = {
    (BATCH, "minute"): "batch_metrics_minute", (BATCH, "hour"): "batch_metrics_hour",
    (REALTIME, "minute"): "rt_metrics_minute", (REALTIME, "hour"): "rt_metrics_hour",
    ("serving", "minute"): "serving_metrics_minute", ("serving", "hour"): "serving_metrics_hour",
}
# Concurrent writes per call: hides the round trip without flooding one local node.
WRITE_CONCURRENCY = 32


def utc(ts: datetime | None) -> datetime | None:
    """The driver returns naive UTC datetimes; everything in lae.serving is tz-aware UTC."""
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def to_view_row(row: Any, bucket: str, source: str | None = None) -> ViewRow:
    """One named row (any view table, ``serving_*`` with its ``source`` too) → ViewRow."""
    return ViewRow(
        service=row.service, day=as_date(row.day), start=utc(getattr(row, bucket)),
        path=row.path, status_class=row.status_class, requests=row.requests or 0,
        errors=row.errors or 0, client_errors=row.client_errors or 0, bytes=row.bytes or 0,
        latency_sum=row.latency_sum or 0.0, latency_max=row.latency_max or 0.0,
        latency_hist=tuple(row.latency_hist or ()), users_hll=row.users_hll,
        source=getattr(row, "source", source) or source,
    )


def view_rows(rows: Iterable[tuple], source: str) -> list[ViewRow]:
    """Plain tuples in ``rows_async``'s column order → ViewRows of layer ``source``.

    The query API converts ~9k rows per 12 h of minutes on every request: positional unpacking
    instead of a namedtuple per row, and a read's few distinct days and bucket starts are
    converted once each instead of once per row.
    """
    days: dict[Any, date] = {}
    starts: dict[datetime, datetime] = {}
    out = []
    for (service, day, start, path, status_class, requests, errors, client_errors, nbytes,
         latency_sum, latency_max, hist, users_hll) in rows:
        d = days.get(day)
        if d is None:
            d = days[day] = as_date(day)
        ts = starts.get(start)
        if ts is None:
            ts = starts[start] = utc(start)
        out.append(ViewRow(service, d, ts, path, status_class, requests or 0, errors or 0,
                           client_errors or 0, nbytes or 0, latency_sum or 0.0,
                           latency_max or 0.0, tuple(hist) if hist else (), users_hll, source))
    return out


class ViewStore:
    """Prepared statements over one keyspace; cheap to keep for the life of a process."""

    def __init__(self, session, keyspace: str):
        self.session, self.ks = session, keyspace
        self._prepared: dict[str, Any] = {}
        # View-row reads come back as plain tuples (see view_rows): the session's default
        # profile (load balancing, consistency) with the driver's cheapest row factory. A
        # Cluster built with legacy parameters (Airflow's CassandraHook) takes no profile: its
        # named tuples are tuples too, in the same column order.
        self._tuples = EXEC_PROFILE_DEFAULT
        if session.cluster._config_mode != _ConfigMode.LEGACY:
            self._tuples = session.execution_profile_clone_update(EXEC_PROFILE_DEFAULT,
                                                                  row_factory=tuple_factory)

    def prepare(self, cql: str):
        stmt = self._prepared.get(cql)
        if stmt is None:
            stmt = self._prepared[cql] = self.session.prepare(cql)
            # The serving tables' writes (upserts of complete rows, deletes by full key) may be
            # resent after a timeout; reads are not writes; this store issues no LWTs.
            idempotent(stmt)
        return stmt

    def run(self, cql: str, params: tuple = (), timeout: float = 30.0):
        return self.session.execute(self.prepare(cql), params, timeout=timeout)

    # ------------------------------------------------------------------ boundary and pointers
    def watermark(self) -> datetime | None:
        row = self.run(f"SELECT complete_until FROM {self.ks}.batch_watermark "  # noqa: S608
                       "WHERE view_name = ?", (VIEW,)).one()
        return utc(row.complete_until) if row else None

    def published(self, first: date, last: date) -> dict[date, str]:
        """day → published batch_id, for first ≤ day ≤ last."""
        rows = self.run(f"SELECT day, batch_id FROM {self.ks}.batch_published "  # noqa: S608
                        "WHERE view_name = ? AND day >= ? AND day <= ?", (VIEW, first, last))
        return {as_date(r.day): r.batch_id for r in rows}

    def all_published(self) -> dict[date, str]:
        rows = self.run(f"SELECT day, batch_id FROM {self.ks}.batch_published "  # noqa: S608
                        "WHERE view_name = ?", (VIEW,))
        return {as_date(r.day): r.batch_id for r in rows}

    # ------------------------------------------------------------------ view rows
    def rows_async(self, layer: str, bucket: str, service: str, day: date, start: datetime,
                   end: datetime, batch_id: str | None = None):
        """Start reading one service-day of a layer in [start, end); returns a ResponseFuture
        whose rows are tuples in ``view_rows``' column order."""
        table = TABLES[(layer, bucket)]
        cols = ", ".join(("service", "day", bucket, "path", "status_class", *MEASURES))
        if layer == BATCH:
            cql = (f"SELECT {cols} FROM {self.ks}.{table} WHERE service = ? AND day = ? "  # noqa: S608
                   f"AND batch_id = ? AND {bucket} >= ? AND {bucket} < ?")
            params: tuple = (service, day, batch_id, start, end)
        else:
            cql = (f"SELECT {cols} FROM {self.ks}.{table} WHERE service = ? AND day = ? "  # noqa: S608
                   f"AND {bucket} >= ? AND {bucket} < ?")
            params = (service, day, start, end)
        # The driver's 5000-row pages: a day of minutes (1440 x paths x classes rows) is a few
        # pages, and each page stays well inside the server's read timeout on a busy node.
        return self.session.execute_async(self.prepare(cql), params, timeout=60.0,
                                          execution_profile=self._tuples)

    def rows(self, layer: str, bucket: str, service: str, day: date, start: datetime,
             end: datetime, batch_id: str | None = None) -> list[ViewRow]:
        return view_rows(self.rows_async(layer, bucket, service, day, start, end,
                                         batch_id).result(), layer)

    def partitions(self, layer: str, bucket: str = "hour") -> set[tuple[str, date]]:
        """(service, day) partitions of a layer's table. A partition-key scan: for the small
        ``*_hour`` tables and housekeeping, never per request."""
        rows = self.run(f"SELECT DISTINCT service, day FROM {self.ks}.{TABLES[(layer, bucket)]}",  # noqa: S608
                        timeout=60.0)
        return {(r.service, as_date(r.day)) for r in rows}

    def services(self) -> list[str]:
        found = {s for s, _ in self.partitions(REALTIME)}
        found |= {s for s, _ in self.partitions(BATCH)}
        return sorted(found)

    # ------------------------------------------------------------------ serving tables
    def write_serving(self, bucket: str, rows: Iterable[ViewRow]) -> int:
        cols = ("service", "day", bucket, "path", "status_class", *MEASURES, "source")
        insert = self.prepare(
            f"INSERT INTO {self.ks}.{TABLES[('serving', bucket)]} ({', '.join(cols)}) "  # noqa: S608
            f"VALUES ({', '.join('?' for _ in cols)})")
        params = [(r.service, r.day, r.start, r.path, r.status_class, r.requests, r.errors,
                   r.client_errors, r.bytes, r.latency_sum, r.latency_max,
                   list(r.latency_hist), r.users_hll, r.source) for r in rows]
        execute_concurrent_with_args(self.session, insert, params,
                                     concurrency=WRITE_CONCURRENCY, raise_on_first_error=True)
        return len(params)

    def serving_keys(self, bucket: str, service: str, day: date, start: datetime,
                     end: datetime) -> set[tuple]:
        rows = self.run(
            f"SELECT service, {bucket}, path, status_class FROM "  # noqa: S608
            f"{self.ks}.{TABLES[('serving', bucket)]} WHERE service = ? AND day = ? "
            f"AND {bucket} >= ? AND {bucket} < ?", (service, day, start, end))
        return {(r.service, utc(getattr(r, bucket)), r.path, r.status_class) for r in rows}

    def delete_serving(self, bucket: str, day: date, keys: Iterable[tuple]) -> int:
        delete = self.prepare(
            f"DELETE FROM {self.ks}.{TABLES[('serving', bucket)]} WHERE service = ? "  # noqa: S608
            f"AND day = ? AND {bucket} = ? AND path = ? AND status_class = ?")
        params = [(s, day, t, p, c) for s, t, p, c in keys]
        execute_concurrent_with_args(self.session, delete, params,
                                     concurrency=WRITE_CONCURRENCY, raise_on_first_error=True)
        return len(params)

    def expire_realtime(self, service: str, day: date, before: datetime) -> None:
        """Delete a service-day's realtime rows with bucket start < ``before`` (one range
        tombstone per table, not one per row)."""
        for bucket in ("minute", "hour"):
            self.run(f"DELETE FROM {self.ks}.{TABLES[(REALTIME, bucket)]} "  # noqa: S608
                     f"WHERE service = ? AND day = ? AND {bucket} < ?", (service, day, before))

    # ------------------------------------------------------------------ speed-layer state
    def heartbeats(self) -> list[Any]:
        return list(self.run(f"SELECT * FROM {self.ks}.stream_heartbeat"))  # noqa: S608

    def late_events(self, service: str, day: date) -> int | None:
        """Events the speed layer dropped as late for a service-day; None without the table."""
        try:
            rows = self.run(f"SELECT events FROM {self.ks}.stream_late_events "  # noqa: S608
                            "WHERE service = ? AND day = ?", (service, day))
        except InvalidRequest:  # V004 (the speed layer's migration) not applied here
            return None
        return sum(r.events or 0 for r in rows)

    # ------------------------------------------------------------------ drift
    def drift(self, day: date) -> list[Any]:
        return list(self.run(f"SELECT * FROM {self.ks}.view_drift WHERE day = ?", (day,)))  # noqa: S608

    def write_drift(self, values: dict[str, Any]) -> None:
        cols = list(values)
        self.run(f"INSERT INTO {self.ks}.view_drift ({', '.join(cols)}) "  # noqa: S608
                 f"VALUES ({', '.join('?' for _ in cols)})", tuple(values.values()))


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
