"""spark-submit entry point: recompute the batch views of one UTC day (lae.batch.job).

    spark-submit --conf ... spark_jobs/batch_views.py --date 2026-11-25 [--batch-id ID]

Prints the result as one JSON line (prefixed ``LAE_BATCH_RESULT``) for the DAG's logs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from datetime import date

from lae.batch.job import recompute, session_conf
from lae.config import get_settings


def _session(settings):
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        # Launched by spark-submit: master and conf come from its command line (the DAG passes
        # lae.spark.spark_conf); a builder .master() here would override --master.
        from pyspark.sql import SparkSession

        return SparkSession.builder.appName("lae-batch-views").getOrCreate()
    from lae.spark import build_session  # plain `python batch_views.py`: local[*]

    return build_session("lae-batch-views", settings=settings, conf=session_conf(settings))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", required=True, type=date.fromisoformat, help="UTC day")
    parser.add_argument("--batch-id", default=None,
                        help="default: a fresh time-ordered id (a re-run must use a new id)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = get_settings()
    spark = _session(settings)
    try:
        result = recompute(spark, settings, args.date, args.batch_id)
        print("LAE_BATCH_RESULT " + json.dumps(result.as_dict(), sort_keys=True), flush=True)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
