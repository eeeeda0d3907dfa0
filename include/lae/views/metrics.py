"""The metrics views as pure DataFrame → DataFrame functions (batch and streaming alike).

Every function here is one ``groupBy().agg()`` of Spark built-ins whose aggregates are all
mergeable (count, sum, max, per-bucket sums, HLL sketch), so the streaming job can call the
same function after ``withWatermark`` + de-duplication and Spark keeps its state per key.
Grouping is on ``F.window`` over the event time, which carries the watermark into the
aggregation (a ``date_trunc`` column would not, and the state would never be dropped).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lae.views.histogram import EDGES_MS, N_BUCKETS
from lae.views.hll import LG_CONFIG_K

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

KEY = ("service", "path", "status_class")
MEASURES = (
    "requests",
    "errors",
    "client_errors",
    "bytes",
    "latency_sum",
    "latency_max",
    "latency_hist",
    "users_hll",
)
MINUTE_COLUMNS = ("service", "day", "minute", "path", "status_class", *MEASURES)
HOUR_COLUMNS = ("service", "day", "hour", "path", "status_class", *MEASURES)

# latency_sum is summed as whole microseconds (bigint): exact and independent of the order
# rows arrive in, so batch, stream and re-runs agree to the bit (a double sum would not).
_MICROS_PER_MS = 1000


def status_class(status: Column) -> Column:
    """'1xx'..'5xx' from an HTTP status code."""
    import pyspark.sql.functions as F

    return F.concat(F.floor(status / 100).cast("string"), F.lit("xx"))


def latency_bucket(latency_ms: Column) -> Column:
    """The histogram bucket of a latency: ``bisect_right(EDGES_MS, latency_ms)``.

    A binary search over the edge literals, unrolled into nested CASE WHENs at plan time:
    exact at the edges (a log-based formula is not, by an ulp) and at most 6 comparisons a row.
    """
    import pyspark.sql.functions as F

    def search(lo: int, hi: int) -> Column:  # the bucket is in [lo, hi]
        if lo == hi:
            return F.lit(lo)
        mid = (lo + hi + 1) // 2  # bucket mid starts at EDGES_MS[mid - 1]
        return F.when(latency_ms < F.lit(EDGES_MS[mid - 1]), search(lo, mid - 1)).otherwise(
            search(mid, hi)
        )

    return search(0, N_BUCKETS - 1)


def _utc_day(ts: Column) -> Column:
    """The UTC date of a timestamp, whatever the session time zone (to_date would use it)."""
    import pyspark.sql.functions as F

    return F.date_from_unix_date(F.floor(F.unix_seconds(ts) / 86400).cast("int"))


def _rows(counts: DataFrame, bucket: str) -> DataFrame:
    """The table's columns, in V001's order, from a grouped ``window`` + measures frame."""
    import pyspark.sql.functions as F

    start = F.col("window.start")
    return counts.select(
        "service",
        _utc_day(start).alias("day"),
        start.alias(bucket),
        "path",
        "status_class",
        # sum() of ints is already bigint; the casts state the schema and guard against change.
        F.col("requests").cast("bigint").alias("requests"),
        F.col("errors").cast("bigint").alias("errors"),
        F.col("client_errors").cast("bigint").alias("client_errors"),
        F.col("bytes").cast("bigint").alias("bytes"),
        (F.col("latency_us") / _MICROS_PER_MS).alias("latency_sum"),
        F.col("latency_max").cast("double").alias("latency_max"),
        F.col("latency_hist").cast("array<bigint>").alias("latency_hist"),
        "users_hll",
    )


def metrics_minute(events: DataFrame) -> DataFrame:
    """Per (service, day, minute, path, status_class): the measures of V001's metrics tables.

    ``events`` has the event columns of lae.schema (ts, service, path, status, latency_ms,
    bytes, user_id); de-duplication is the caller's job. Null user_ids are not counted.
    """
    return _event_metrics(events, "1 minute", "minute")


def metrics_hour_from_events(events: DataFrame) -> DataFrame:
    """``metrics_hour`` computed straight from events: an independent check of the rollup.

    Same rows as ``metrics_hour(metrics_minute(events))``, except that ``users_hll`` is one
    sketch instead of a union of sketches (same registers; the estimate may differ slightly by
    the estimator used, far inside the sketch's error). The tests use it as the expectation for
    the speed layer's hour rows, which lae.stream.rollup rolls up from its minute rows (Spark
    cannot chain ``metrics_hour`` after ``metrics_minute`` in one streaming query).
    """
    return _event_metrics(events, "1 hour", "hour")


def _event_metrics(events: DataFrame, duration: str, bucket_name: str) -> DataFrame:
    import pyspark.sql.functions as F

    bucket = F.col("latency_bucket")
    per_event = events.select(
        "ts",
        "service",
        "path",
        status_class(F.col("status")).alias("status_class"),
        "latency_ms",
        latency_bucket(F.col("latency_ms")).alias("latency_bucket"),
        F.round(F.col("latency_ms") * _MICROS_PER_MS).cast("bigint").alias("latency_us"),
        "bytes",
        "user_id",
    )
    histogram = F.array(*(F.sum(F.when(bucket == i, 1).otherwise(0)) for i in range(N_BUCKETS)))
    counts = per_event.groupBy(F.window("ts", duration).alias("window"), *KEY).agg(
        F.count(F.lit(1)).alias("requests"),
        F.sum(F.when(F.col("status_class") == "5xx", 1).otherwise(0)).alias("errors"),
        F.sum(F.when(F.col("status_class") == "4xx", 1).otherwise(0)).alias("client_errors"),
        F.sum("bytes").alias("bytes"),
        F.sum("latency_us").alias("latency_us"),
        F.max("latency_ms").alias("latency_max"),
        histogram.alias("latency_hist"),
        F.hll_sketch_agg("user_id", LG_CONFIG_K).alias("users_hll"),
    )
    return _rows(counts, bucket_name)


def metrics_hour(minute: DataFrame) -> DataFrame:
    """The hourly rollup of ``metrics_minute`` rows: the same measures per (…, hour, …).

    Counts add, maxima take the max, histograms add element-wise and sketches union, so the
    result equals the metrics computed directly over the hour's events (users_hll up to the
    sketch's estimator, see ``metrics_hour_from_events``). A batch DataFrame only: the batch
    job applies it to its minute view, the speed layer's rollup thread to its rt minute rows.
    """
    import pyspark.sql.functions as F

    hist = F.col("latency_hist")
    latency_us = F.round(F.col("latency_sum") * _MICROS_PER_MS).cast("bigint")
    counts = minute.groupBy(F.window("minute", "1 hour").alias("window"), *KEY).agg(
        F.sum("requests").alias("requests"),
        F.sum("errors").alias("errors"),
        F.sum("client_errors").alias("client_errors"),
        F.sum("bytes").alias("bytes"),
        F.sum(latency_us).alias("latency_us"),
        F.max("latency_max").alias("latency_max"),
        F.array(*(F.sum(hist[i]) for i in range(N_BUCKETS))).alias("latency_hist"),
        F.hll_union_agg("users_hll").alias("users_hll"),
    )
    return _rows(counts, "hour")
