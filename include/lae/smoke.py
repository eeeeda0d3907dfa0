"""An end-to-end probe of the stack: Kafka -> Spark (format "kafka") -> Parquet on S3A.

It proves that the jars, the connections and the services fit together before the real
pipeline exists, and it stays useful afterwards as the cheapest "is the stack sane" check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from lae.config import Settings


def kafka_records(raw: DataFrame) -> DataFrame:
    """Kafka source rows -> (key, value as text, coordinates): a pure transform."""
    import pyspark.sql.functions as F

    return raw.select(
        F.col("key").cast("string").alias("key"),
        F.col("value").cast("string").alias("value"),
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
        F.col("timestamp").alias("kafka_ts"),
    )


def kafka_to_parquet(spark: SparkSession, settings: Settings, topic: str, out_uri: str) -> int:
    """Read every record now in ``topic`` and write it as Parquet to ``out_uri``; returns rows."""
    raw = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
    )
    records = kafka_records(raw).cache()
    rows = records.count()
    records.write.mode("overwrite").parquet(out_uri)
    records.unpersist()
    return rows
