"""One recompute of one day: S3 master dataset → Spark → Cassandra batch tables → publish.

``recompute(spark, settings, day)`` is the whole job; ``spark_jobs/batch_views.py`` only parses
arguments and builds the session. ``LAE_BATCH_CRASH_AT=<step>`` makes the process kill itself
(SIGKILL, no clean-up) at that step, for the crash tests.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime

from lae.batch import store
from lae.batch.compute import BATCH_SQL_CONF, day_views, read_day, sql_conf
from lae.cassandra import connect
from lae.config import Settings

log = logging.getLogger(__name__)

CRASH_POINTS = ("after_register", "after_write_before_publish", "after_publish")


@dataclass(frozen=True)
class Result:
    day: str
    batch_id: str
    published: bool
    minute_rows: int
    hour_rows: int
    requests: int
    watermark: str | None
    dropped: list[str]

    def as_dict(self) -> dict:
        return asdict(self)


def _crash_point(step: str) -> None:
    if os.environ.get("LAE_BATCH_CRASH_AT") == step:
        log.warning("LAE_BATCH_CRASH_AT=%s: killing the process", step)
        os.kill(os.getpid(), signal.SIGKILL)


def session_conf(settings: Settings) -> dict[str, str]:
    """Spark properties the job needs when its JVM starts (``spark_jobs/batch_views.py``; the
    DAG's spark-submit passes the same with a local master, where the driver runs the tasks)."""
    return {"spark.driver.memory": settings.batch_driver_memory}


def _totals(df) -> dict[str, tuple[int, int]]:
    """service → (rows, sum of requests) of a view DataFrame (a handful of rows)."""
    import pyspark.sql.functions as F

    rows = df.groupBy("service").agg(F.count(F.lit(1)).alias("n"),
                                     F.sum("requests").alias("requests")).collect()
    return {r["service"]: (int(r["n"]), int(r["requests"])) for r in rows}


def _write(df, settings: Settings, batch_id: str, bucket: str) -> None:
    import pyspark.sql.functions as F

    rows = df.withColumn("bucket_ms", F.unix_millis(F.col(bucket))).drop(bucket)
    # Bound the sessions: one per Spark partition, few partitions for one day's rows.
    rows = rows.repartition(max(1, int(os.environ.get("LAE_BATCH_WRITE_PARTITIONS", "2"))),
                            "service", "day")
    rows.foreachPartition(
        lambda part: store.write_partition(part, settings, batch_id, bucket))


def recompute(spark, settings: Settings, day: date, batch_id: str | None = None,
              timings: dict[str, float] | None = None) -> Result:
    """Recompute, verify, publish and clean up one UTC day; returns what was done.

    ``timings`` (if given) receives the seconds spent in ``compute`` (read + de-duplicate +
    aggregate, materialized in the cache), ``write`` (Cassandra inserts + verify) and
    ``publish`` (pointer, watermark, clean-up), for the benchmark.
    """
    with sql_conf(spark, BATCH_SQL_CONF):
        return _recompute(spark, settings, day, batch_id, timings)


def _recompute(spark, settings: Settings, day: date, batch_id: str | None,
               timings: dict[str, float] | None) -> Result:
    t = timings if timings is not None else {}
    started = time.perf_counter()
    batch_id = batch_id or store.new_batch_id()
    ks = settings.keyspace
    minute, hour = day_views(read_day(spark, settings.bucket, day), day)
    minute, hour = minute.cache(), hour.cache()
    expected = {"minute": _totals(minute), "hour": _totals(hour)}
    services = set(expected["minute"])
    t["compute"] = time.perf_counter() - started
    session = connect(settings)
    try:
        store.register(session, ks, day, batch_id, services)
        _crash_point("after_register")
        log.info("writing batch %s of %s (%d services)", batch_id, day, len(services))
        _write(minute, settings, batch_id, "minute")
        _crash_point("mid_write")  # the batch half written: minute rows, no hour rows
        _write(hour, settings, batch_id, "hour")
        store.verify(session, ks, day, batch_id, expected)
        t["write"] = time.perf_counter() - started - t["compute"]
        minute_rows = sum(n for n, _ in expected["minute"].values())
        hour_rows = sum(n for n, _ in expected["hour"].values())
        requests = sum(r for _, r in expected["minute"].values())
        store.set_state(session, ks, day, batch_id, "written", minute_rows=minute_rows,
                        hour_rows=hour_rows, requests=requests)
        _crash_point("after_write_before_publish")
        published = store.publish(session, ks, day, batch_id)
        if published:
            store.set_state(session, ks, day, batch_id, "published")
        else:
            # A newer batch of this day went live first; ours is already stale.
            log.warning("batch %s of %s superseded before publishing; dropping it", batch_id, day)
            store.drop_batch(session, ks, day, batch_id, services)
        _crash_point("after_publish")
        w = store.advance_watermark(session, ks)
        dropped = store.drop_superseded(session, ks, day)
        t["publish"] = time.perf_counter() - started - t["compute"] - t["write"]
    finally:
        session.cluster.shutdown()
        minute.unpersist()
        hour.unpersist()
    return Result(day=day.isoformat(), batch_id=batch_id, published=published,
                  minute_rows=minute_rows, hour_rows=hour_rows, requests=requests,
                  watermark=w.isoformat() if isinstance(w, datetime) else None,
                  dropped=dropped)
