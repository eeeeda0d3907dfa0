"""The speed layer's DataFrame logic: pure functions, usable on a stream or on a static frame.

``parse`` validates Kafka records with the schema of ``lae.schema.spark``; ``on_time_events``
applies the watermark and the de-duplication; the minute view is ``lae.views.metrics_minute``,
the very function the batch job calls (the hour rows are rolled up from the minute rows with
``lae.views.metrics_hour``, see ``lae.stream.rollup``).
``intake_columns``, ``dlq_records`` and ``late_counts`` shape what the intake query writes for
rejected and late events. Unit tests run them on static frames
(tests/unit/test_stream_transforms.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from lae.kafka import (
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TIMESTAMP,
    DLQ_SOURCE_TOPIC,
    DLQ_STAGE,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

DLQ_STAGE_NAME = "speed"
KAFKA_COLUMNS = ("key", "topic", "partition", "offset", "timestamp")


def parse(records: DataFrame) -> DataFrame:
    """Kafka records → their coordinates, the raw value, ``reason`` (null when valid) and the
    event fields (null when rejected), via ``lae.schema.spark.spark_validate``."""
    from lae.schema.spark import spark_validate

    return spark_validate(records.select(*KAFKA_COLUMNS, "value"), "value")


def valid(parsed: DataFrame) -> DataFrame:
    import pyspark.sql.functions as F

    return parsed.where(F.col("reason").isNull())


def invalid(parsed: DataFrame) -> DataFrame:
    import pyspark.sql.functions as F

    return parsed.where(F.col("reason").isNotNull())


def on_time_events(parsed: DataFrame, watermark: str) -> DataFrame:
    """Valid events behind an event-time watermark, de-duplicated by ``event_id`` within it.

    Rows whose ``ts`` is at or before the watermark (the one the previous micro-batch
    reported) are dropped by the de-duplication (Spark counts them as
    ``numRowsDroppedByWatermark``); the intake query counts the same rows in
    ``stream_late_events`` so they are reported instead of vanishing.

    Why (event_id, ts) and not ``dropDuplicatesWithinWatermark("event_id")``: every copy of an
    event carries the event's own ``ts`` (an event_id names one event, DESIGN.md §3), so both
    drop the same copies; but the latter keeps an id until the watermark passes ``ts`` plus the
    delay, i.e. two watermark delays of events (~6M ids at 5,000/s and 10 minutes), while a key
    holding ``ts`` leaves the state as soon as the watermark passes ``ts``: one delay, half the
    state. Spark evicts by scanning the whole state on every micro-batch; at steady state that
    scan measured ~24% shorter, not half (bench/bench_stream_dedup.py: a (event_id, ts) key
    costs more per id scanned). Two records sharing an event_id but
    not a ts break the contract; the speed layer then counts both and the batch layer (which
    de-duplicates by event_id alone) corrects the day.
    """
    return valid(parsed).withWatermark("ts", watermark).dropDuplicates(["event_id", "ts"])


def minute_view(events: DataFrame) -> DataFrame:
    from lae.views import metrics_minute

    return metrics_minute(events)


def utc_day(ts: Column) -> Column:
    """The UTC date of a timestamp whatever the session time zone (as lae.views does)."""
    import pyspark.sql.functions as F

    return F.date_from_unix_date(F.floor(F.unix_seconds(ts) / 86400).cast("int"))


def late_counts(parsed: DataFrame, watermark: datetime | None) -> DataFrame:
    """(service, day, events): valid events at or before ``watermark`` (none when it is None).

    Same rule as Spark's: an event whose time is ``<=`` the watermark is late.
    """
    import pyspark.sql.functions as F

    events = valid(parsed)
    if watermark is None:
        events = events.where(F.lit(False))
    else:
        events = events.where(F.col("ts") <= F.lit(watermark))
    return events.groupBy("service", utc_day(F.col("ts")).alias("day")).agg(
        F.count(F.lit(1)).alias("events"))


def intake_columns(parsed: DataFrame) -> DataFrame:
    """The columns of ``parse``'s output that ``dlq_records`` and ``late_counts`` read, with the
    raw key and value kept for rejected records only (null for valid ones).

    The intake query caches each micro-batch to write both from one read of Kafka. Caching every
    parsed field and every raw message instead cost about a third more JVM CPU
    (``bench/bench_intake_cache.py``, 50k generated messages, 2026-11-29: 5.8 against 4.3
    cpu-s; parsing alone 3.5). In the running job (``bench_freshness.py`` at 5,000/s,
    alternating) CPU per event moved by less than the runs' spread and freshness not at all.
    """
    import pyspark.sql.functions as F

    rejected = F.col("reason").isNotNull()
    return parsed.select(
        F.when(rejected, F.col("key")).alias("key"),
        F.when(rejected, F.col("value")).alias("value"),
        "topic", "partition", "offset", "timestamp", "reason", "service", "ts",
    )


def dlq_records(parsed: DataFrame) -> DataFrame:
    """Rejected records in the Kafka sink's shape: raw value untouched, original key, and the
    headers of ``lae.kafka.dlq_headers`` (reason, source coordinates, stage)."""
    import pyspark.sql.functions as F

    def header(name: str, value: Column):
        return F.struct(F.lit(name).alias("key"), value.cast("string").cast("binary")
                        .alias("value"))

    return invalid(parsed).select(
        "key",
        # Kafka rejects a record whose key and value are both null; b"" keeps an empty input.
        F.coalesce(F.col("value").cast("binary"), F.lit(b"")).alias("value"),
        F.array(
            header(DLQ_REASON, F.col("reason")),
            header(DLQ_SOURCE_TOPIC, F.col("topic")),
            header(DLQ_SOURCE_PARTITION, F.col("partition")),
            header(DLQ_SOURCE_OFFSET, F.col("offset")),
            header(DLQ_SOURCE_TIMESTAMP, F.unix_millis(F.col("timestamp"))),
            header(DLQ_STAGE, F.lit(DLQ_STAGE_NAME)),
        ).alias("headers"),
    )
