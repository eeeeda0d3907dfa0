"""lae.views read side without Spark: bucket scheme, percentiles within the bound, merging."""

from __future__ import annotations

import math
import random

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
from tests.unit.views_expect import SPEC_BUCKETS, nearest_rank, spec_bucket, spec_edge


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
    rng = random.Random(3)
    parts = [[rng.lognormvariate(3, 1) for _ in range(500)] for _ in range(5)]
    merged = merge_hists([_hist(p) for p in parts] + [None])
    assert merged == _hist([x for p in parts for x in p])
    with pytest.raises(ValueError):
        merge_hists([[1, 2, 3]])
