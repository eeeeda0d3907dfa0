"""The latency histogram: fixed log-spaced buckets, defined once here as data.

Bucket edges are ``EDGES_MS[k] = 0.1 ms * 2**(k/3)`` for k = 0..58, i.e. three buckets per
doubling (ratio r = 2**(1/3) ≈ 1.26) from 0.1 ms to ≈ 66 s. With an underflow and an
overflow bucket that makes 60 buckets:

    bucket 0        [0, 0.1 ms)
    bucket i        [EDGES_MS[i-1], EDGES_MS[i])      i = 1..58
    bucket 59       [EDGES_MS[58] ≈ 66 s, ∞)

Buckets are half-open, so a latency equal to an edge belongs to the bucket above it. A
histogram is a list of 60 counts; histograms merge by element-wise addition (any minutes,
paths, layers), which is what makes them storable as complete, idempotent aggregates.

Error bound of ``percentile_from_hist``: it returns the geometric middle of the bucket holding
the nearest-rank percentile, so for a true percentile v in [0.1 ms, 66 s) the answer is within
a relative error of sqrt(r) - 1 = 2**(1/6) - 1 ≈ 12.25 % of v (``RELATIVE_ERROR``). Below 0.1 ms
the answer is 0.05 ms (absolute error ≤ 0.05 ms); at or above 66 s it is the overflow bucket's
lower edge, or ``latency_max`` when given (a lower bound, not an estimate).

Pure Python: the read side (API, dashboard, reconcile) uses it without Spark.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from itertools import accumulate

LOWEST_EDGE_MS = 0.1
BUCKETS_PER_DOUBLING = 3
RATIO = 2.0 ** (1 / BUCKETS_PER_DOUBLING)
# 58 log buckets reach 0.1 * 2**(58/3) ≈ 66 050 ms, the first edge above 60 s.
EDGES_MS: tuple[float, ...] = tuple(
    LOWEST_EDGE_MS * 2.0 ** (k / BUCKETS_PER_DOUBLING) for k in range(59)
)
N_BUCKETS = len(EDGES_MS) + 1
RELATIVE_ERROR = math.sqrt(RATIO) - 1  # ≈ 0.1225, see the module docstring


def bucket_index(latency_ms: float) -> int:
    """The bucket of one latency (the same rule as the Spark expression in lae.views)."""
    return bisect_right(EDGES_MS, latency_ms)


def bucket_bounds(index: int) -> tuple[float, float]:
    """[lower, upper) of bucket ``index`` in ms; the overflow bucket's upper is infinity."""
    lower = 0.0 if index == 0 else EDGES_MS[index - 1]
    upper = EDGES_MS[index] if index < len(EDGES_MS) else math.inf
    return lower, upper


def merge_hists(hists: Iterable[Sequence[int] | None]) -> list[int]:
    """Element-wise sum; ``None`` (no row) counts as empty. Lengths must match the scheme."""
    total = [0] * N_BUCKETS
    for hist in hists:
        if hist is None:
            continue
        if len(hist) != N_BUCKETS:
            raise ValueError(f"histogram has {len(hist)} buckets, the scheme has {N_BUCKETS}")
        for i, count in enumerate(hist):
            total[i] += count or 0
    return total


def percentile_from_hist(
    hist: Sequence[int], q: float, latency_max: float | None = None
) -> float | None:
    """The q-quantile (0 < q ≤ 1, nearest rank) in ms, within ``RELATIVE_ERROR``; None if empty.

    ``latency_max`` (the row's exact maximum), when given, caps the answer: it can only make
    the estimate closer, and it is the best answer for the overflow bucket.
    """
    if not 0 < q <= 1:
        raise ValueError(f"q must be in (0, 1], got {q}")
    n = sum(hist)
    if n == 0:
        return None
    return value_at_quantile(list(accumulate(hist)), q, latency_max)


def value_at_quantile(cumulative: Sequence[int], q: float,
                      latency_max: float | None = None) -> float:
    """``percentile_from_hist`` on a non-empty histogram's running totals (callers asking for
    several q compute them once)."""
    # Nearest rank: the smallest value with at least q*n values at or below it. Rounding
    # first keeps 0.95 * 20000 = 19000.000000000004 from skipping to the next rank.
    rank = max(1, math.ceil(round(q * cumulative[-1], 9)))
    index = bisect_left(cumulative, rank)  # first bucket reaching the rank
    lower, upper = bucket_bounds(index)
    if index == 0:
        value = upper / 2
    elif math.isinf(upper):
        value = lower if latency_max is None else max(lower, latency_max)
    else:
        value = math.sqrt(lower * upper)
    return value if latency_max is None else min(value, latency_max)
