"""The views of DESIGN.md §4, defined once for the batch and the speed layer.

- ``metrics_minute(events)`` / ``metrics_hour(minute_rows)``: pure DataFrame → DataFrame
  functions of Spark built-ins (lae.views.metrics); the columns are those of V001's
  ``*_metrics_minute`` / ``*_metrics_hour`` tables (the batch job adds ``batch_id``).
- The latency histogram scheme and its percentile error bound (lae.views.histogram), and the
  read side of the HLL sketches (lae.views.hll), both pure Python.

How batch and stream share them: the batch job calls ``metrics_minute`` on a de-duplicated
day of the master dataset; the streaming job calls the very same function on its Kafka
DataFrame after ``withWatermark("ts", …)`` and de-duplication by ``event_id``, writing in
update mode; its hour rows are ``metrics_hour`` over its own minute rows, read back from
``rt_metrics_minute`` by a driver thread (lae.stream.rollup), since Spark cannot chain the
rollup inside one streaming query. Every aggregate is mergeable and order-independent
(integer sums, max, per-bucket counts, HLL registers), so for a closed window both give the
same rows (invariant 3). Only the users_hll blobs may differ byte for byte (a small sketch
lists its hashes in arrival order): compare sketches by their estimates.

pyspark is imported inside the functions, so importing this package needs no JVM.
"""

from lae.views.histogram import (
    EDGES_MS,
    N_BUCKETS,
    RELATIVE_ERROR,
    bucket_bounds,
    bucket_index,
    merge_hists,
    percentile_from_hist,
)
from lae.views.hll import LG_CONFIG_K, RELATIVE_STD_ERROR, estimate, union_estimate
from lae.views.metrics import (
    HOUR_COLUMNS,
    MINUTE_COLUMNS,
    latency_bucket,
    metrics_hour,
    metrics_hour_from_events,
    metrics_minute,
    status_class,
)

__all__ = [
    "EDGES_MS",
    "HOUR_COLUMNS",
    "LG_CONFIG_K",
    "MINUTE_COLUMNS",
    "N_BUCKETS",
    "RELATIVE_ERROR",
    "RELATIVE_STD_ERROR",
    "bucket_bounds",
    "bucket_index",
    "estimate",
    "latency_bucket",
    "merge_hists",
    "metrics_hour",
    "metrics_hour_from_events",
    "metrics_minute",
    "percentile_from_hist",
    "status_class",
    "union_estimate",
]
