"""The batch job's transforms: one day of the master dataset → exact minute and hour views.

Pure DataFrame → DataFrame functions (the views themselves are lae.views); I/O is in
lae.batch.store and lae.batch.job.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from lae.archive.layout import MASTER_PREFIX

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# The Kafka coordinates that order copies of one event: the first one archived wins. Any total
# order would do (copies are the same event); this one makes the choice reproducible.
FIRST_COPY_ORDER = ("topic", "partition", "offset")

# Spark SQL settings of the batch job (lae.batch.job sets them around its own work only).
BATCH_SQL_CONF: dict[str, str] = {
    # ``row_number() = 1`` makes the optimizer put a per-partition top-1 (WindowGroupLimit)
    # before the de-dup shuffle, and that needs a sort of every input row by event_id; with
    # duplicates rare it drops almost nothing, so that sort was pure cost.
    "spark.sql.optimizer.windowGroupLimitThreshold": "-1",
    # Not set, measured (bench data, 1M and 10M events, 2 cores, 1 GiB heap): raising
    # spark.sql.objectHashAggregate.sortBased.fallbackThreshold (hll_sketch_agg makes the minute
    # view an ObjectHashAggregate, which falls back to sorting past 128 keys a task) to 64k or
    # 1M saved no CPU and added ~8 s of GC a run; nor did aggregating the sketch apart and
    # joining it back. About half of the CPU is the de-duplication (shuffle + sort by event_id).
    # Also measured and not kept: sending only repeated ids through the window (count per id,
    # broadcast the repeated ones, anti/semi joins) saved 1-8% of JVM CPU at 1M and 10M events
    # (three scans of the input cost about what the sort did), and would broadcast every id of
    # a day archived twice.
}


@contextmanager
def sql_conf(spark: SparkSession, conf: Mapping[str, str]) -> Iterator[None]:
    """Set SQL properties for a block, then restore the previous values (a shared session)."""
    before = {key: spark.conf.get(key, None) for key in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day as aware datetimes."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def day_uri(bucket: str, day: date) -> str:
    return f"s3a://{bucket}/{MASTER_PREFIX}/date={day.isoformat()}/"


def read_day(spark: SparkSession, bucket: str, day: date) -> DataFrame:
    """The day's partition of the master dataset, with the archive's own schema.

    Reading the ``date=`` folder directly (not the dataset root with a filter) keeps Spark from
    listing every other day; ``hour=`` is then a discovered partition column, dropped here
    because ``ts`` already carries it. An absent folder (no events that day) is an empty day.
    """
    from lae.schema import archive_spark_schema

    schema = archive_spark_schema()
    uri = day_uri(bucket, day)
    jvm_path = spark._jvm.org.apache.hadoop.fs.Path(uri)  # noqa: SLF001 - no public exists()
    fs = jvm_path.getFileSystem(spark._jsc.hadoopConfiguration())  # noqa: SLF001
    if not fs.exists(jvm_path):
        return spark.createDataFrame([], schema)
    df = spark.read.schema(schema).option("basePath", uri).parquet(uri)
    return df.select(*schema.fieldNames())


def dedupe(events: DataFrame) -> DataFrame:
    """One row per ``event_id``: the copy with the smallest (topic, partition, offset)."""
    import pyspark.sql.functions as F
    from pyspark.sql import Window

    first = Window.partitionBy("event_id").orderBy(*FIRST_COPY_ORDER)
    return (
        events.withColumn("_copy", F.row_number().over(first))
        .where(F.col("_copy") == 1)
        .drop("_copy")
    )


def in_day(events: DataFrame, day: date) -> DataFrame:
    """Events whose event time is in the UTC day (a guard: the partition holds only those)."""
    import pyspark.sql.functions as F

    start, end = day_bounds(day)
    return events.where((F.col("ts") >= F.lit(start)) & (F.col("ts") < F.lit(end)))


def day_views(events: DataFrame, day: date) -> tuple[DataFrame, DataFrame]:
    """(minute rows, hour rows) of one day's raw archived events, de-duplicated."""
    from lae.views import metrics_hour, metrics_minute

    minute = metrics_minute(in_day(dedupe(events), day))
    return minute, metrics_hour(minute)
