"""The read-time merge: one service's rows over [start, end), batch before W, realtime after.

Only the layer(s) the rule can take a day from are read (a day wholly before W and published:
batch only; a day from W on: realtime only), all slices in flight at once, and then
``lae.serving.merge`` applies the rule to whatever came back, so the API, the DAG and the
property tests share one definition.

``read_points`` is the query API's path: the same merge, one UTC day at a time (buckets never
cross midnight and the rule decides per bucket, so merging day by day and concatenating is the
same merge), then the points of each day. A day that is published and wholly before W is
served from its published batch alone, and a batch_id's rows never change (a recompute
publishes a new batch_id), so that day's points are cached under (service, day, batch_id,
granularity, path): between publishes only the realtime side is read and summed per request.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from lae.serving.cache import DayCache
from lae.serving.merge import BATCH, REALTIME, Merged, days_of, merge
from lae.serving.series import series
from lae.serving.store import ViewStore, day_start, view_rows

DAY = timedelta(days=1)


def _start_reads(store: ViewStore, service: str, day: date, lo: datetime, hi: datetime,
                 granularity: str, w: datetime | None, batch_id: str | None) -> list:
    """The reads the rule needs for [lo, hi) of one day: (layer, ResponseFuture) pairs."""
    pending = []
    if batch_id is not None and w is not None and lo < w:
        pending.append((BATCH, store.rows_async(BATCH, granularity, service, day, lo, hi,
                                                batch_id)))
    if batch_id is None or w is None or hi > w:
        pending.append((REALTIME, store.rows_async(REALTIME, granularity, service, day, lo,
                                                   hi)))
    return pending


def _collect(pending: list) -> tuple[list, list]:
    batch_rows, rt_rows = [], []
    for layer, future in pending:
        (batch_rows if layer == BATCH else rt_rows).extend(view_rows(future.result(), layer))
    return batch_rows, rt_rows


def _day_window(day: date, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    return max(start, day_start(day)), min(end, day_start(day) + DAY)


def read_merged(store: ViewStore, service: str, start: datetime, end: datetime,
                granularity: str = "minute", w: datetime | None = None,
                published: dict | None = None) -> Merged:
    """``w`` and ``published`` (day → batch_id) may be passed in when already known."""
    days = days_of(start, end)
    if w is None:
        w = store.watermark()
    if published is None:
        published = store.published(days[0], days[-1])
    pending = []
    for day in days:
        lo, hi = _day_window(day, start, end)
        pending += _start_reads(store, service, day, lo, hi, granularity, w, published.get(day))
    batch_rows, rt_rows = _collect(pending)
    return merge(batch_rows, rt_rows, w, granularity, batch_days=published.keys(),
                 window=(start, end))


@dataclass
class DayPoints:
    """One day's points (or a slice of it): bucket starts and each point's JSON."""

    starts: list[datetime] = field(default_factory=list)
    json: list[str] = field(default_factory=list)

    def between(self, lo: datetime, hi: datetime) -> DayPoints:
        i, j = bisect_left(self.starts, lo), bisect_left(self.starts, hi)
        return DayPoints(self.starts[i:j], self.json[i:j])


@dataclass
class Answer:
    points: DayPoints
    missing_batch_days: list[date]
    straddling: list[datetime]


def _day_points(merged: Merged, path: str | None) -> DayPoints:
    points = series(merged.rows, path)
    return DayPoints([p.start for p in points], [p.json() for p in points])


def read_points(store: ViewStore, service: str, start: datetime, end: datetime,
                granularity: str, path: str | None, w: datetime | None,
                published: Mapping[date, str], cache: DayCache | None = None) -> Answer:
    """The API's answer over [start, end): the merge of ``read_merged``, day by day, with
    published days wholly before W taken from ``cache`` (see the module doc)."""
    batch_days = published.keys()
    plan = []  # per day, in order: a cache key, or the reads in flight for its window
    for day in days_of(start, end):
        lo, hi = _day_window(day, start, end)
        batch_id = published.get(day)
        if (cache is not None and batch_id is not None and w is not None
                and day_start(day) + DAY <= w):
            plan.append((day, lo, hi, (service, day, batch_id, granularity, path), None))
        else:
            plan.append((day, lo, hi, None, _start_reads(store, service, day, lo, hi,
                                                         granularity, w, batch_id)))
    out, missing, straddling = DayPoints(), set(), set()
    for day, lo, hi, key, pending in plan:
        if key is not None:
            def whole_day(day=day, batch_id=key[2]):
                d0, d1 = day_start(day), day_start(day) + DAY
                rows, _ = _collect(_start_reads(store, service, day, d0, d1, granularity, w,
                                                batch_id))
                return _day_points(merge(rows, [], w, granularity, batch_days=batch_days,
                                         window=(d0, d1)), path)

            part = cache.get(key, whole_day).between(lo, hi)
        else:
            batch_rows, rt_rows = _collect(pending)
            merged = merge(batch_rows, rt_rows, w, granularity, batch_days=batch_days,
                           window=(lo, hi))
            missing.update(merged.missing_batch_days)
            straddling.update(merged.straddling)
            part = _day_points(merged, path)
        out.starts += part.starts
        out.json += part.json
    return Answer(out, sorted(missing), sorted(straddling))
