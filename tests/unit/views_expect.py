"""Independent expectations for the lae.views tests: plain Python over the same events.

Nothing here imports lae.views: the bucket rule is re-derived from its specification
(edge k = 0.1 ms * 2**(k/3), k = 0..58; bucket = number of edges ≤ latency) with math.log,
so a bug in the module's bucketing cannot hide behind the same code computing the answer.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict

SPEC_BUCKETS = 60  # 58 log buckets + underflow + overflow


def spec_edge(k: int) -> float:
    return 0.1 * 2.0 ** (k / 3)


def spec_bucket(latency_ms: float) -> int:
    if latency_ms < spec_edge(0):
        return 0
    if latency_ms >= spec_edge(58):
        return SPEC_BUCKETS - 1
    k = math.floor(3 * math.log(latency_ms / 0.1) / math.log(2))  # edges ≤ latency, minus 1
    # The log is an ulp away at the edges: settle against the edges themselves.
    while k > 0 and latency_ms < spec_edge(k):
        k -= 1
    while k < 58 and latency_ms >= spec_edge(k + 1):
        k += 1
    return min(k + 1, SPEC_BUCKETS - 1)


def nearest_rank(sorted_values: list[float], q: float) -> float:
    return sorted_values[max(1, math.ceil(round(q * len(sorted_values), 9))) - 1]


def _empty() -> dict:
    return {
        "requests": 0,
        "errors": 0,
        "client_errors": 0,
        "bytes": 0,
        "latency_sum": 0.0,
        "latency_max": -math.inf,
        "latency_hist": [0] * SPEC_BUCKETS,
        "users": set(),
    }


def expected_metrics(events: list[dict], seconds: int) -> dict[tuple, dict]:
    """Measures per (service, day, bucket start epoch seconds, path, status_class)."""
    out: dict[tuple, dict] = defaultdict(_empty)
    for e in events:
        epoch = int(e["ts"].timestamp())
        start = epoch - epoch % seconds
        day = dt.datetime.fromtimestamp(start, dt.UTC).date()
        key = (e["service"], day, start, e["path"], f"{e['status'] // 100}xx")
        m = out[key]
        m["requests"] += 1
        m["errors"] += 500 <= e["status"] <= 599
        m["client_errors"] += 400 <= e["status"] <= 499
        m["bytes"] += e["bytes"]
        m["latency_sum"] += e["latency_ms"]
        m["latency_max"] = max(m["latency_max"], e["latency_ms"])
        m["latency_hist"][spec_bucket(e["latency_ms"])] += 1
        if e["user_id"] is not None:
            m["users"].add(e["user_id"])
    return dict(out)
