"""spark-submit entry point of the speed layer (lae.stream.job): runs until stopped.

    python spark_jobs/speed_views.py                # local[*], or $LAE_SPARK_MASTER
    spark-submit --conf ... spark_jobs/speed_views.py

Settings come from ``LAE_*`` (``LAE_STREAM_TRIGGER``, ``LAE_STREAM_WATERMARK``,
``LAE_STREAM_CHECKPOINT``, …; see lae.config). Normally started detached by the
``streaming_supervisor`` DAG or ``lae stream start``, which take the lease first and pass its
owner id in ``LAE_STREAM_OWNER``. Exit codes: 0 stopped on purpose, 1 a query failed,
75 another instance holds the lease.
"""

from __future__ import annotations

import logging
import os
import sys

from lae.config import get_settings
from lae.stream.job import run, session_conf


def _session(settings):
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        # Launched by spark-submit: master and conf come from its command line.
        from pyspark.sql import SparkSession

        return SparkSession.builder.appName("lae-speed-views").getOrCreate()
    from lae.spark import build_session

    # No console progress bar: the output goes to a log file read by people.
    return build_session("lae-speed-views", settings=settings,
                         conf={"spark.ui.showConsoleProgress": "false", **session_conf(settings)})


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # py4j logs every callback (each foreachBatch call) at INFO.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    settings = get_settings()
    return run(lambda: _session(settings), settings)


if __name__ == "__main__":
    sys.exit(main())
