"""Reading ``users_hll`` blobs from Python (API, dashboard, reconcile) without Spark.

Spark's ``hll_sketch_agg`` writes an Apache DataSketches HLL sketch in its standard compact
serialization, which the ``datasketches`` package reads. Sketches of different minutes, paths
or layers merge by union (``hll_union_agg`` in Spark, ``union_estimate`` here), because each
sketch only records per-register maxima.

Error: relative standard error 1.04 / sqrt(2**LG_CONFIG_K) (``RELATIVE_STD_ERROR`` ≈ 1.6 %
at LG_CONFIG_K = 12); below a few hundred distinct users the sketch is exact or nearly so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

# Spark's default. Spark writes HLL_8 sketches: a saturated one is ~4.1 KB at 12, while a
# minute row with few users stays tiny (the sketch starts as a list of hashes); 14 would
# halve the error at 4x the size of every busy row (16 KB).
LG_CONFIG_K = 12
RELATIVE_STD_ERROR = 1.04 / math.sqrt(2**LG_CONFIG_K)


def _datasketches():
    try:
        import datasketches
    except ImportError as exc:  # an optional read-side dependency
        raise ImportError("reading users_hll needs the 'datasketches' package") from exc
    return datasketches


def estimate(blob: bytes | bytearray | None) -> float:
    """Distinct users in one sketch; an absent sketch counts as no users."""
    if not blob:
        return 0.0
    return _datasketches().hll_sketch.deserialize(bytes(blob)).get_estimate()


def union_estimate(blobs: Iterable[bytes | bytearray | None]) -> float:
    """Distinct users over several sketches (e.g. minutes of a range, batch and realtime)."""
    ds = _datasketches()
    union = ds.hll_union(LG_CONFIG_K)
    for blob in blobs:
        if blob:
            union.update(ds.hll_sketch.deserialize(bytes(blob)))
    return union.get_estimate()
