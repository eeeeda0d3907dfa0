"""Airflow operators for Spark jobs (imported by DAG files, so only light imports at the top)."""

from __future__ import annotations

import os
import sys

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator


class LaeSparkSubmitOperator(SparkSubmitOperator):
    """``SparkSubmitOperator`` whose ``conf`` starts from ``lae.spark.spark_conf()``.

    The jars, S3A endpoint and time zone are resolved when the task runs, not when the DAG
    file is parsed (that would list the jars folder on every parse and fail the whole file
    where the jars are missing). ``conf`` given to the operator overrides single properties.
    """

    def execute(self, context):
        from airflow.sdk import BaseHook

        from lae.config import get_settings
        from lae.spark import spark_conf

        master = BaseHook.get_connection(self._conn_id).host or ""
        # The job's driver and Python workers run the interpreter that has `lae` installed (this
        # worker's venv; the same path in the Docker image) unless PYSPARK_PYTHON says otherwise.
        python = os.environ.get("PYSPARK_PYTHON", sys.executable)
        interpreters = {"spark.pyspark.python": python, "spark.pyspark.driver.python": python}
        self.conf = {**spark_conf(get_settings(), master), **interpreters,
                     **self._local_defaults(master), **(self.conf or {})}
        return super().execute(context)

    @staticmethod
    def _local_defaults(master: str) -> dict[str, str]:
        """With a ``local[…]`` master, the small defaults ``lae.spark.build_session`` gives local
        sessions. Without them, a recompute in local mode ran every shuffle stage as Spark's
        200 tasks: minutes for a day of a few thousand events. The driver stays on loopback,
        and gets the job's heap (``lae.batch.job.session_conf``)."""
        from lae.batch.job import session_conf
        from lae.config import get_settings
        from lae.spark import is_local

        if not is_local(master):
            return {}
        settings = get_settings()
        host = settings.host
        return {"spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false",
                "spark.driver.bindAddress": host, "spark.driver.host": host,
                **session_conf(settings)}
