"""The read-time merge: one service's rows over [start, end), batch before W, realtime after.

Only the layer(s) the rule can take a day from are read (a day wholly before W and published:
batch only; a day from W on: realtime only), all slices in flight at once, and then
``lae.serving.merge`` applies the rule to whatever came back, so the API, the DAG and the
property tests share one definition.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from lae.serving.merge import BATCH, REALTIME, Merged, days_of, merge
from lae.serving.store import ViewStore, day_start, to_view_row


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
        lo = max(start, day_start(day))
        hi = min(end, day_start(day) + timedelta(days=1))
        batch_id = published.get(day)
        if batch_id is not None and w is not None and lo < w:
            pending.append((BATCH, store.rows_async(BATCH, granularity, service, day, lo, hi,
                                                    batch_id)))
        if batch_id is None or w is None or hi > w:
            pending.append((REALTIME, store.rows_async(REALTIME, granularity, service, day,
                                                       lo, hi)))
    batch_rows, rt_rows = [], []
    for layer, future in pending:
        rows = [to_view_row(r, granularity, layer) for r in future.result()]
        (batch_rows if layer == BATCH else rt_rows).extend(rows)
    return merge(batch_rows, rt_rows, w, granularity, batch_days=published.keys(),
                 window=(start, end))
