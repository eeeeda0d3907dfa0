"""Merged view rows → one point per bucket: what the query API returns and the dashboard draws.

Rows of one bucket (all paths and status classes, or one path) add up: counts sum, histograms
add element-wise (percentiles from lae.views.histogram), user sketches union (lae.views.hll).
A bucket's rows all come from one layer (lae.serving.merge), so its ``source`` is that layer's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime

from lae.serving.merge import ViewRow
from lae.views import merge_hists, percentile_from_hist, union_estimate


@dataclass(frozen=True)
class Point:
    start: datetime
    source: str
    requests: int
    errors: int
    client_errors: int
    error_rate: float
    bytes: int
    latency_avg_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    unique_users: float

    def as_json(self) -> dict:
        out = asdict(self)
        out["start"] = self.start.isoformat().replace("+00:00", "Z")
        return out


def _point(start: datetime, rows: list[ViewRow]) -> Point:
    requests = sum(r.requests for r in rows)
    errors = sum(r.errors for r in rows)
    hist = merge_hists(r.latency_hist or None for r in rows)
    latency_max = max((r.latency_max for r in rows), default=None)
    sources = {r.source for r in rows}
    return Point(
        start=start,
        source=sources.pop() if len(sources) == 1 else "mixed",
        requests=requests,
        errors=errors,
        client_errors=sum(r.client_errors for r in rows),
        error_rate=errors / requests if requests else 0.0,
        bytes=sum(r.bytes for r in rows),
        latency_avg_ms=sum(r.latency_sum for r in rows) / requests if requests else None,
        p50_ms=percentile_from_hist(hist, 0.50, latency_max),
        p95_ms=percentile_from_hist(hist, 0.95, latency_max),
        p99_ms=percentile_from_hist(hist, 0.99, latency_max),
        unique_users=round(union_estimate(r.users_hll for r in rows), 1),
    )


def series(rows: Iterable[ViewRow], path: str | None = None) -> list[Point]:
    """One Point per bucket start, in time order (only buckets that have rows)."""
    by_start: dict[datetime, list[ViewRow]] = {}
    for row in rows:
        if path is None or row.path == path:
            by_start.setdefault(row.start, []).append(row)
    return [_point(start, by_start[start]) for start in sorted(by_start)]
