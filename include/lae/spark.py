"""SparkSession settings for LAE: the Kafka source/sink and ``s3a://`` on top of plain pyspark.

pyspark ships Spark and the Hadoop client but neither ``format("kafka")`` nor the S3A
filesystem. ``scripts/fetch-jars.sh`` resolves exactly the missing jars (``jvm/spark/pom.xml``)
into ``$LAE_JARS_DIR/spark``; ``spark_conf`` puts them on the classpath (``classpath_conf``)
and points S3A at the configured endpoint (the local S3Proxy by default).

Use::

    from lae.spark import build_session
    spark = build_session("archive")                 # local[*] unless LAE_SPARK_MASTER is set
    df = spark.read.format("kafka").option("kafka.bootstrap.servers", settings.kafka_bootstrap)
    df.write.parquet(f"s3a://{settings.bucket}/master/...")

or, for spark-submit / Airflow's SparkSubmitOperator, pass ``spark_conf(settings)`` as ``conf``.

Classpath settings only take effect when the JVM starts: a SparkSession that already runs in
this process (``getOrCreate`` returns it) keeps its classpath.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from lae.config import Settings, get_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def spark_jars(settings: Settings) -> list[Path]:
    """The jars of ``$LAE_JARS_DIR/spark``; fails clearly when fetch-jars.sh has not run."""
    folder = settings.jars_dir / "spark"
    jars = sorted(folder.glob("*.jar"))
    if not (folder / ".complete").exists() or not jars:
        raise FileNotFoundError(f"Spark jars missing in {folder}; run scripts/fetch-jars.sh")
    return jars


def is_local(master: str | None) -> bool:
    return bool(master) and master.startswith("local")


def classpath_conf(jars: list[Path], master: str | None) -> dict[str, str]:
    """How the jars reach the JVMs that need them.

    On a cluster (or when the master is not known here), ``spark.jars``: Spark ships them to
    every executor. With a ``local[…]`` master driver and executors are one JVM, so the jars go
    on its classpath where they lie. ``spark.jars`` made every local application fetch each jar
    through Spark's own file server into a per-application ``userFiles`` copy: 670 MB a start
    for the AWS SDK bundle alone, and left in the temp dir by every driver that was killed.
    """
    if is_local(master):
        return {"spark.driver.extraClassPath": os.pathsep.join(str(j) for j in jars)}
    return {"spark.jars": ",".join(str(j) for j in jars)}


def local_conf(master: str | None) -> dict[str, str]:
    """Properties for a ``local[…]`` master only (none for a cluster or an unknown master).

    Shuffle blocks of a local application never cross a network: they are written to and read
    back from this machine's disk (page cache), so compressing them (lz4 by default) is CPU
    spent for nothing on a machine with few cores; the price is more temp-disk bytes. A cluster
    keeps Spark's default, where the network pays. Measured (2 cores, 2026-11-29) with
    ``bench/bench_batch_ab.py`` (the batch job's compute of a 10M-event day, alternating JVMs):
    the first compute of a JVM, what a nightly spark-submit pays, 111.0/114.0 s against
    125.4/124.4 s with lz4, and 4-5% less machine CPU in both pairs; warm computes 80-86 s
    against 76-92 s, no difference; but three more cold pairs (same day, same session) gave
    107.7/108.1/112.6 s against 108.3/106.7/104.8 s: no gain. Kept as harmless, not as proven
    faster. The streaming job at 5,000 events/s
    (``bench_freshness.py``, 300 s, alternating): p99 20.6/13.9 s against 35.7/18.4 s with lz4,
    CPU per event unchanged; the same bimodal runs as ever, so only "not worse" is shown there.
    """
    if not is_local(master):
        return {}
    return {"spark.shuffle.compress": "false"}


def spark_conf(settings: Settings | None = None, master: str | None = None) -> dict[str, str]:
    """Spark properties for Kafka and S3A access with these settings (all values strings);
    ``master`` is where the job will run (see ``classpath_conf``)."""
    s = settings or get_settings()
    hadoop = "spark.hadoop.fs.s3a."
    return {
        **classpath_conf(spark_jars(s), master),
        **local_conf(master),
        # Event times are UTC everywhere (date=/hour= partitions, minute buckets).
        "spark.sql.session.timeZone": "UTC",
        f"{hadoop}impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        f"{hadoop}endpoint": s.s3_endpoint,
        f"{hadoop}endpoint.region": s.s3_region,
        # A local/S3-compatible endpoint has no per-bucket DNS names.
        f"{hadoop}path.style.access": "true",
        f"{hadoop}connection.ssl.enabled": str(s.s3_endpoint.startswith("https://")).lower(),
        # Static keys from the settings (placeholders for the auth-less local S3Proxy); a
        # deployment on AWS overrides this provider (e.g. instance profile) through conf.
        f"{hadoop}aws.credentials.provider":
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        f"{hadoop}access.key": s.s3_access_key,
        f"{hadoop}secret.key": s.s3_secret_key,
        # Fail within seconds instead of retrying for minutes when the endpoint is down.
        f"{hadoop}attempts.maximum": "3",
        f"{hadoop}retry.limit": "3",
    }


def build_session(
    app_name: str,
    settings: Settings | None = None,
    master: str | None = None,
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """A SparkSession with ``spark_conf`` applied; ``conf`` overrides or adds properties.

    ``master`` defaults to ``$LAE_SPARK_MASTER`` or ``local[*]``. pyspark is imported here so
    that importing ``lae.spark`` stays cheap (DAG parsing, unit tests without a JVM).
    """
    from pyspark.sql import SparkSession

    s = settings or get_settings()
    master = master or os.environ.get("LAE_SPARK_MASTER") or "local[*]"
    # Python workers (foreachPartition, pandas UDFs) must run this interpreter, the one with
    # `lae` installed; pyspark's default is whatever `python3` is first on PATH. A cluster whose
    # executors keep Python elsewhere sets PYSPARK_PYTHON explicitly.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    props = spark_conf(s, master)
    if is_local(master):
        # Small local defaults: few cores, so few shuffle partitions; no UI port to collide on.
        props.setdefault("spark.sql.shuffle.partitions", "4")
        props.setdefault("spark.ui.enabled", "false")
        props.setdefault("spark.driver.bindAddress", s.host)
        props.setdefault("spark.driver.host", s.host)
    props.update(conf or {})
    builder = SparkSession.builder.appName(app_name).master(master)
    for key, value in props.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
