"""The merge rule of DESIGN invariant 4, as one pure function (no I/O, no Spark).

``merge(batch_rows, rt_rows, w)``: every view row is a (service, day, bucket start, path,
status_class) key with its measures. A bucket whose start is before W comes from the batch
layer, a bucket at or after W from the realtime layer; buckets are half-open ``[start,
start + width)`` and only their *start* is compared with W, so every bucket has exactly one
source and none is counted twice or lost.

Two edge cases are handled and reported rather than hidden:

- **Straddling buckets**: a bucket with ``start < W < start + width`` (an hour bucket when W
  is not on the hour, a minute bucket when W is not on the minute). The rule still takes it
  from batch; the result lists it, because batch only vouches for the part before W. The
  batch layer publishes whole days, so W is midnight and nothing straddles in practice.
- **Missing batch days**: a day before W without a published batch (``batch_days`` does not
  contain it, e.g. days before the first batch ever published). Its buckets fall back to the
  realtime rows the speed layer still holds (TTL), tagged ``rt``, and the day is reported.

The DAG (materializing ``serving_*``) and the query API (read-time merge) both call this.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

BATCH, REALTIME = "batch", "rt"
WIDTHS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1)}


@dataclass(frozen=True)
class ViewRow:
    """One row of a ``*_metrics_minute`` / ``*_metrics_hour`` table (bucket start in ``start``)."""

    service: str
    day: date
    start: datetime
    path: str
    status_class: str
    requests: int
    errors: int = 0
    client_errors: int = 0
    bytes: int = 0
    latency_sum: float = 0.0
    latency_max: float = 0.0
    latency_hist: tuple[int, ...] = ()
    users_hll: bytes | None = None
    source: str | None = None

    @property
    def key(self) -> tuple[str, datetime, str, str]:
        return (self.service, self.start, self.path, self.status_class)


@dataclass
class Merged:
    """The merged rows, each tagged with its source, and what the merge had to work around."""

    rows: list[ViewRow]
    w: datetime | None
    granularity: str
    straddling: list[datetime] = field(default_factory=list)
    missing_batch_days: list[date] = field(default_factory=list)


def _index(rows: Iterable[ViewRow], layer: str) -> dict[tuple, ViewRow]:
    out: dict[tuple, ViewRow] = {}
    for row in rows:
        if row.key in out:  # a table's primary key makes this impossible; a caller's bug
            raise ValueError(f"{layer} rows contain the key {row.key} twice")
        out[row.key] = row
    return out


def days_of(start: datetime, end: datetime) -> list[date]:
    """The UTC days that [start, end) touches."""
    last = (end - timedelta(microseconds=1)).date()
    return [start.date() + timedelta(days=i) for i in range((last - start.date()).days + 1)]


def takes_batch(start: datetime, w: datetime | None, day: date,
                batch_days: set[date] | None) -> bool:
    """The rule for one bucket: True → batch, False → realtime."""
    if w is None or start >= w:
        return False
    return batch_days is None or day in batch_days


def merge(batch_rows: Iterable[ViewRow], rt_rows: Iterable[ViewRow], w: datetime | None,
          granularity: str = "minute", batch_days: Iterable[date] | None = None,
          window: tuple[datetime, datetime] | None = None) -> Merged:
    """Batch for buckets starting before ``w``, realtime from ``w`` on; see the module doc.

    ``w`` None means nothing is published yet (everything realtime). ``batch_days`` lists the
    days with a published batch; None trusts ``w`` alone (every day before it is published).
    ``window`` [from, to), when given with ``batch_days``, lets days with no row at all be
    reported as missing a batch too.
    """
    if granularity not in WIDTHS:
        raise ValueError(f"granularity must be one of {sorted(WIDTHS)}, got {granularity!r}")
    width = WIDTHS[granularity]
    days = None if batch_days is None else set(batch_days)
    batch, rt = _index(batch_rows, BATCH), _index(rt_rows, REALTIME)
    out: list[ViewRow] = []
    missing: set[date] = set()
    straddling: set[datetime] = set()
    for row in batch.values():
        if takes_batch(row.start, w, row.day, days):
            out.append(row if row.source == BATCH else replace(row, source=BATCH))
            if w is not None and row.start + width > w:
                straddling.add(row.start)
    for row in rt.values():
        if not takes_batch(row.start, w, row.day, days):
            out.append(row if row.source == REALTIME else replace(row, source=REALTIME))
            if w is not None and row.start < w:
                missing.add(row.day)
    if window is not None and w is not None and days is not None:
        # Days before W without a batch are reported even when no rt row is left for them.
        missing |= {d for d in days_of(*window) if d not in days
                    and datetime(d.year, d.month, d.day, tzinfo=w.tzinfo) < w}
    out.sort(key=lambda r: (r.start, r.service, r.path, r.status_class))
    return Merged(rows=out, w=w, granularity=granularity, straddling=sorted(straddling),
                  missing_batch_days=sorted(missing))
