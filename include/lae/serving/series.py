"""Merged view rows → one point per bucket: what the query API returns and the dashboard draws.

Rows of one bucket (all paths and status classes, or one path) add up: counts sum, histograms
add element-wise (percentiles as lae.views.histogram defines them), user sketches union
(lae.views.hll). A bucket's rows all come from one layer (lae.serving.merge), so its ``source``
is that layer's.

This runs for every bucket of every API answer (1440 per 24 h minute series), so the per-bucket
work avoids per-element Python loops: histograms are summed column-wise with ``zip``, the
cumulative histogram is built once for the three percentiles, and a point serializes itself
to JSON without ``dataclasses.asdict``'s recursive copy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate

from lae.serving.merge import ViewRow
from lae.views import N_BUCKETS, union_estimate
from lae.views.histogram import value_at_quantile

QUANTILES = (0.50, 0.95, 0.99)
FIELDS = ("start", "source", "requests", "errors", "client_errors", "error_rate", "bytes",
          "latency_avg_ms", "p50_ms", "p95_ms", "p99_ms", "unique_users")


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
        out = {name: getattr(self, name) for name in FIELDS}
        out["start"] = iso(self.start)
        return out

    def json(self) -> str:
        """The point as a JSON object (what the API's ``points`` array holds)."""
        return json.dumps(self.as_json(), separators=(",", ":"))


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def sum_hists(hists: Iterable[Sequence[int] | None]) -> list[int]:
    """Element-wise sum (as lae.views.merge_hists: ``None`` is empty, lengths must match)."""
    present = [h for h in hists if h]
    for hist in present:
        if len(hist) != N_BUCKETS:
            raise ValueError(f"histogram has {len(hist)} buckets, the scheme has {N_BUCKETS}")
    if not present:
        return [0] * N_BUCKETS
    return [sum(column) for column in zip(*present, strict=True)]


def percentiles(hist: Sequence[int], latency_max: float | None,
                quantiles: Sequence[float] = QUANTILES) -> list[float | None]:
    """lae.views.percentile_from_hist for several q at once (one cumulative histogram);
    tests/unit/test_serving_series.py checks they agree exactly."""
    cumulative = list(accumulate(hist))
    if not cumulative or cumulative[-1] == 0:
        return [None] * len(quantiles)
    return [value_at_quantile(cumulative, q, latency_max) for q in quantiles]


def _point(start: datetime, rows: list[ViewRow]) -> Point:
    requests = sum(r.requests for r in rows)
    errors = sum(r.errors for r in rows)
    latency_max = max((r.latency_max for r in rows), default=None)
    p50, p95, p99 = percentiles(sum_hists(r.latency_hist for r in rows), latency_max)
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
        p50_ms=p50, p95_ms=p95, p99_ms=p99,
        unique_users=round(union_estimate(r.users_hll for r in rows), 1),
    )


def series(rows: Iterable[ViewRow], path: str | None = None) -> list[Point]:
    """One Point per bucket start, in time order (only buckets that have rows)."""
    by_start: dict[datetime, list[ViewRow]] = {}
    for row in rows:
        if path is None or row.path == path:
            by_start.setdefault(row.start, []).append(row)
    return [_point(start, by_start[start]) for start in sorted(by_start)]
