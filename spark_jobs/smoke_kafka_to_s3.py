"""spark-submit entry point: copy a Kafka topic to Parquet on S3A (stack smoke test).

    spark-submit spark_jobs/smoke_kafka_to_s3.py --topic logs.raw --out s3a://lae-lake/smoke/run1
"""

from __future__ import annotations

import argparse

from lae.config import get_settings
from lae.smoke import kafka_to_parquet
from lae.spark import build_session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", default=None, help="default: the raw topic from settings")
    parser.add_argument("--out", required=True, help="s3a://bucket/prefix for the Parquet files")
    args = parser.parse_args()
    settings = get_settings()
    spark = build_session("lae-smoke-kafka-to-s3", settings=settings)
    try:
        rows = kafka_to_parquet(spark, settings, args.topic or settings.raw_topic, args.out)
        print(f"copied {rows} records to {args.out}")
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
