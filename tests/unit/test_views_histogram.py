"""lae.views read side without Spark: bucket scheme, percentiles within the bound, merging.

Also the independent expectations that tests/unit/test_views.py checks Spark against. Nothing
here uses lae.views to compute an answer: the bucket rule is re-derived from its specification
(edge k = 0.1 ms * 2**(k/3), k = 0..58; bucket = number of edges ≤ latency) with math.log, so
a bug in the module's bucketing cannot hide behind the same code computing the answer.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import defaultdict

import numpy as np
import pytest

from lae.views import (
    EDGES_MS,
    N_BUCKETS,
    RELATIVE_ERROR,
    bucket_bounds,
    bucket_index,
    merge_hists,
    percentile_from_hist,
)

# --- independent expectations, shared with test_views.py ---

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


def _hist(latencies) -> list[int]:
    hist = [0] * SPEC_BUCKETS
    for x in latencies:
        hist[spec_bucket(float(x))] += 1
    return hist


def test_scheme_is_the_documented_one() -> None:
    assert N_BUCKETS == SPEC_BUCKETS
    assert EDGES_MS == tuple(spec_edge(k) for k in range(59))
    assert EDGES_MS[0] == 0.1 and EDGES_MS[-1] > 60_000 > EDGES_MS[-2]
    ratios = [b / a for a, b in zip(EDGES_MS, EDGES_MS[1:], strict=False)]
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-12)
    assert RELATIVE_ERROR == pytest.approx(2 ** (1 / 6) - 1)


def test_bucket_index_agrees_with_the_spec_at_and_around_every_edge() -> None:
    probes = [0.0, 0.05, 1e9, math.inf]
    for edge in EDGES_MS:
        probes += [edge, math.nextafter(edge, 0), math.nextafter(edge, math.inf)]
    for x in probes:
        assert bucket_index(x) == spec_bucket(x), x
        lower, upper = bucket_bounds(bucket_index(x))
        assert lower <= x < upper or (math.isinf(x) and math.isinf(upper))


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99, 0.999, 1.0])
def test_percentiles_within_the_stated_bound_on_lognormal_latencies(q) -> None:
    rng = np.random.default_rng(7)
    latencies = np.exp(rng.normal(math.log(40.0), 1.2, 20_000))  # median 40 ms, long tail
    exact = nearest_rank(sorted(latencies.tolist()), q)
    got = percentile_from_hist(_hist(latencies), q)
    assert abs(got - exact) <= RELATIVE_ERROR * exact, (got, exact)
    # Also against numpy's definition of the same nearest-rank percentile.
    assert exact == np.quantile(latencies, q, method="inverted_cdf")


def test_percentile_bound_is_tight_not_just_loose() -> None:
    """A value at a bucket's lower edge is the worst case: the error is the bound itself."""
    edge = spec_edge(20)
    got = percentile_from_hist(_hist([edge]), 0.5)
    assert abs(got - edge) / edge == pytest.approx(RELATIVE_ERROR)


def test_percentile_edge_cases() -> None:
    assert percentile_from_hist([0] * SPEC_BUCKETS, 0.5) is None
    assert percentile_from_hist(_hist([0.0, 0.01]), 0.99) == pytest.approx(0.05)
    overflow = _hist([70_000.0, 90_000.0])
    assert percentile_from_hist(overflow, 0.5) == EDGES_MS[-1]  # a lower bound only
    assert percentile_from_hist(overflow, 1.0, latency_max=90_000.0) == 90_000.0
    # The exact maximum caps the estimate (the bucket's middle lies above this value).
    low_in_bucket = spec_edge(20) * 1.01
    assert percentile_from_hist(_hist([low_in_bucket]), 1.0) > low_in_bucket
    assert percentile_from_hist(_hist([low_in_bucket]), 1.0, low_in_bucket) == low_in_bucket
    with pytest.raises(ValueError):
        percentile_from_hist(_hist([1.0]), 0.0)


def test_merged_hists_give_the_percentiles_of_the_union() -> None:
    rng = random.Random(3)  # noqa: S311 - reproducible test data, not security
    parts = [[rng.lognormvariate(3, 1) for _ in range(500)] for _ in range(5)]
    merged = merge_hists([_hist(p) for p in parts] + [None])
    assert merged == _hist([x for p in parts for x in p])
    with pytest.raises(ValueError):
        merge_hists([[1, 2, 3]])
