"""The streaming job: two queries over ``logs.raw``, the hour rollup, a monitor loop, the lease.

- ``<job>_minute``: parse → on-time events (watermark + de-duplication) → ``metrics_minute`` →
  update mode → upsert into ``rt_metrics_minute``.
- ``<job>_hour``: no query — a driver thread (``lae.stream.rollup``) rolls the changed hours of
  ``rt_metrics_minute`` up into ``rt_metrics_hour`` with ``lae.views.metrics_hour`` every rollup
  interval, and writes the ``<job>_hour`` heartbeat (the minute offsets the hour rows reflect).
  A query of its own would read, parse and de-duplicate the whole topic once more.
- ``<job>_intake``: parse → rejected records to ``logs.dlq``, late events to
  ``stream_late_events``.

The driver's main thread watches the queries: it writes each new progress report as the
query's ``stream_heartbeat`` row (and refreshes ``updated_at`` while idle, so a quiet topic does
not look like a dead job), exits non-zero when a query dies (the supervisor restarts the job,
which resumes from the checkpoints), and stops cleanly on SIGTERM, when the operator set the
desired state to stopped, or when the lease is lost. A thread renews the lease.

``LAE_STREAM_CRASH_AFTER_BATCHES=<n>`` makes the driver SIGKILL itself once the minute query
finished n micro-batches (crash tests).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from lae.config import Settings
from lae.stream import store
from lae.stream.lease import LeaseHeldError, LeaseLostError, StreamLease, default_owner
from lae.stream.progress import heartbeat_of
from lae.stream.rollup import HourMarks, HourRollup
from lae.stream.sinks import SharedWatermark, intake_sink, rt_view_sink

log = logging.getLogger(__name__)

EXIT_LEASE_HELD = 75  # EX_TEMPFAIL: another instance runs; not a crash
EXIT_QUERY_FAILED = 1
TOUCH_EVERY_S = 5.0
CONTROL_EVERY_S = 10.0


def query_names(job: str = store.JOB) -> dict[str, str]:
    """The names of the job's heartbeat rows: its two queries and the hour rollup."""
    return {part: f"{job}_{part}" for part in ("minute", "hour", "intake")}


# Lets HotSpot JIT-compile methods over 8,000 bytecodes (see session_conf).
HUGE_METHODS_JIT = "-XX:-DontCompileHugeMethods"

STATE_STORES = {
    "rocksdb": "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
    "hdfs": "org.apache.spark.sql.execution.streaming.state.HDFSBackedStateStoreProvider",
}


def session_conf(settings: Settings) -> dict[str, str]:
    """Spark properties of the job's session (``spark_jobs/speed_views.py``; a spark-submit
    of the job passes the same as ``--conf``)."""
    # Also measured and not kept: the "hdfs" state store (state on the heap, 4g driver) at
    # 5,000/s: p50 32 s / p99 53 s, micro-batches of 15-18 s (2026-11-27; not looked into
    # further, the RocksDB runs of that session are in the README's speed-layer section).
    # Tried and not kept: FAIR scheduler pools serving the minute view's tasks before the
    # intake query's and the rollup's. bench_freshness at 5,000/s, trigger 1 s: p99 4.90 s
    # against 5.05 s (FIFO) the run before. The tail is the minute view's own micro-batch:
    # de-duplication evicts by scanning its whole state (~3M event ids), ~0.65 s per batch.
    # Also tried: rocksdb.trackTotalNumberOfRows=false (no read before each state write):
    # de-dup updates 186 ms against 198 ms, p99 5.77 s; within the runs' noise, not kept.
    # And rocksdb.blockCacheSizeMB=256 (8 by default; the scan missed it on 46k blocks a
    # batch): no misses any more, yet eviction 564 ms against 600-661, p99 4.86 s, and RSS
    # 6.3 GB against 4.0-4.9. The scan costs its iteration, not its reads; not kept.
    try:
        provider = STATE_STORES[settings.stream_state_store]
    except KeyError:
        raise ValueError(f"LAE_STREAM_STATE_STORE must be one of {sorted(STATE_STORES)}, not "
                         f"{settings.stream_state_store!r}") from None
    conf = {"spark.sql.streaming.stateStore.providerClass": provider,
            "spark.driver.memory": settings.stream_driver_memory,
            # Whole-stage codegen fuses the validation's dozen projections (lae.schema.spark)
            # into one method of more than HotSpot's 8,000 bytecodes, which it then never
            # compiles: the hottest code of the job ran interpreted. `bench_spark_validate.py
            # --compare-huge-methods` (2026-11-27, 50k rows, local[1]): 49.8 -> 36.8 us/row
            # wall with the fast path (JVM CPU 60.0 -> 48.6), full path 125 -> 90.
            **{f"spark.{side}.extraJavaOptions": HUGE_METHODS_JIT
               for side in ("driver", "executor")}}
    if settings.stream_state_store == "rocksdb":
        # Each micro-batch checkpoints the changes only, not a snapshot of the whole store.
        conf["spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled"] = "true"
    return conf


def checkpoint_root(settings: Settings) -> str:
    return settings.stream_checkpoint or str(settings.state_dir / "stream" / "checkpoint")


def trigger_ms(interval: str) -> int:
    """'2 seconds' → 2000 (the heartbeat records the trigger next to the timings)."""
    number, unit = interval.split()
    scale = {"millisecond": 1, "second": 1000, "minute": 60_000}[unit.rstrip("s")]
    return int(float(number) * scale)


class LeaseKeeper(threading.Thread):
    """Renews the lease every ttl/3; flags ``lost`` when it was taken or could not be renewed
    for most of a TTL (someone else may legitimately hold it by then)."""

    def __init__(self, lease: StreamLease):
        super().__init__(name="lease-keeper", daemon=True)
        self.lease = lease
        self.lost = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        last_ok = time.monotonic()
        while not self.stopping.wait(self.lease.ttl_s / 3):
            try:
                self.lease.renew()
                last_ok = time.monotonic()
            except LeaseLostError:
                log.exception("lease lost")
                self.lost.set()
                return
            except Exception:
                log.exception("lease renewal failed; retrying")
                if time.monotonic() - last_ok > 0.8 * self.lease.ttl_s:
                    self.lost.set()
                    return


@dataclass
class Stop:
    reason: str | None = None

    def request(self, reason: str) -> None:
        self.reason = self.reason or reason


def _kafka_stream(spark, settings: Settings):
    return (spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", settings.kafka_bootstrap)
            .option("subscribe", settings.raw_topic)
            .option("startingOffsets", settings.stream_starting_offsets)
            .option("maxOffsetsPerTrigger", str(settings.stream_max_offsets_per_trigger))
            .load())


def start_queries(spark, settings: Settings, session, watermark: SharedWatermark,
                  job: str = store.JOB,
                  rollup_since: datetime | None = None) -> tuple[dict, HourRollup]:
    """Start the two queries and the hour rollup (not yet its thread); returns
    (part → StreamingQuery, the rollup). ``rollup_since``: see ``HourRollup``."""
    from lae.stream.transforms import minute_view, on_time_events, parse

    names = query_names(job)
    if settings.stream_shuffle_partitions > 0:
        # The state stores' partitioning is fixed by the checkpoint at the first start; this
        # only matters then (a restart keeps the checkpoint's value).
        spark.conf.set("spark.sql.shuffle.partitions", str(settings.stream_shuffle_partitions))
    root = checkpoint_root(settings).rstrip("/")
    ks = settings.keyspace
    parsed = parse(_kafka_stream(spark, settings))
    events = on_time_events(parsed, settings.stream_watermark)
    fast, slow = settings.stream_trigger, settings.stream_rollup_trigger
    marks = HourMarks()  # the minute sink marks, the rollup (started below) takes
    plans = {
        "minute": (minute_view(events), "update",
                   rt_view_sink(session, ks, "minute", written=marks.mark_minute_rows), fast),
        "intake": (parsed, "append",
                   intake_sink(session, ks, names["intake"], settings.kafka_bootstrap,
                               settings.dlq_topic, watermark), slow),
    }
    queries = {}
    for part, (frame, mode, sink, every) in plans.items():
        queries[part] = (frame.writeStream.queryName(names[part])
                         .outputMode(mode)
                         .foreachBatch(sink)
                         .option("checkpointLocation", f"{root}/{names[part]}")
                         .trigger(processingTime=every)
                         .start())
    rollup = HourRollup(spark, session, ks, queries["minute"], names["hour"],
                        interval_s=trigger_ms(slow) / 1000, trigger_ms=trigger_ms(slow),
                        marks=marks, catch_up_since=rollup_since)
    return queries, rollup


def _crash_after() -> int | None:
    raw = os.environ.get("LAE_STREAM_CRASH_AFTER_BATCHES")
    return int(raw) if raw else None


def _progress_log():
    """``LAE_STREAM_PROGRESS_LOG=<path>``: append every progress report the monitor reads to
    that file as JSON lines (bench/bench_freshness.py breaks micro-batch times down with it)."""
    path = os.environ.get("LAE_STREAM_PROGRESS_LOG")
    return open(path, "a", buffering=1) if path else None


def monitor(queries: dict, session, settings: Settings, watermark: SharedWatermark,
            stop: Stop, keeper: LeaseKeeper | None, job: str = store.JOB,
            poll_s: float = 0.5, rollup: threading.Thread | None = None) -> int:
    """Watch the queries (and the rollup thread) until one fails (returns 1) or a stop is
    requested (returns 0)."""
    progress_log = _progress_log()
    try:
        return _watch(queries, session, settings, watermark, stop, keeper, job, poll_s, rollup,
                      progress_log)
    finally:
        if progress_log is not None:
            progress_log.close()


def _watch(queries, session, settings, watermark, stop, keeper, job, poll_s, rollup,
           progress_log) -> int:
    ks = settings.keyspace
    trig = {part: trigger_ms(settings.stream_trigger if part == "minute"
                             else settings.stream_rollup_trigger) for part in queries}
    written: dict[str, int] = {}
    touched = checked = 0.0
    crash_after, batches_seen = _crash_after(), 0
    while True:
        if rollup is not None and not rollup.is_alive():
            log.error("the hour rollup thread died")
            return EXIT_QUERY_FAILED
        for part, query in queries.items():
            if not query.isActive:
                log.error("query %s stopped: %s", query.name, query.exception())
                return EXIT_QUERY_FAILED
            # lastProgress, not recentProgress: pyspark converts all ~100 retained reports on
            # every call. A micro-batch finishing within one poll of the next is not written
            # (its successor's row overwrites it anyway).
            progress = query.lastProgress
            if progress is None or progress.batchId <= written.get(part, -1):
                continue
            report = json.loads(progress.json)
            if progress_log is not None:
                progress_log.write(json.dumps(report) + "\n")
            hb = heartbeat_of(report)
            if not _tolerant(store.write_heartbeat, session, ks, hb, trig[part]):
                continue  # written on the next poll
            written[part] = hb.batch_id
            if part == "minute":
                watermark.advance(hb.watermark)
                batches_seen += 1
        now = time.monotonic()
        if now - touched >= TOUCH_EVERY_S:
            for query in queries.values():
                _tolerant(store.touch_heartbeat, session, ks, query.name, str(query.runId))
            touched = now
        if now - checked >= CONTROL_EVERY_S:
            desired = _tolerant(store.desired_state, session, ks, job)
            if desired and desired[0] != store.RUNNING:
                stop.request(f"desired state is {desired[0]}")
            checked = now
        if keeper is not None and keeper.lost.is_set():
            stop.request("lease lost")
        if crash_after is not None and batches_seen >= crash_after:
            log.warning("LAE_STREAM_CRASH_AFTER_BATCHES=%d reached: SIGKILL", crash_after)
            os.kill(os.getpid(), signal.SIGKILL)
        if stop.reason:
            log.info("stopping: %s", stop.reason)
            return 0
        time.sleep(poll_s)


def _tolerant(fn, *args):
    """Bookkeeping writes and reads must not kill the job when Cassandra is slow for a moment
    (the views' own writes fail the micro-batch instead, and Spark replays it); returns the
    result, or None after logging the error. A longer outage shows as a stale heartbeat."""
    try:
        return fn(*args) or True
    except Exception:
        log.exception("%s failed; continuing", getattr(fn, "__name__", fn))
        return None


def _initial_watermarks(session, settings: Settings, job: str) -> tuple[datetime | None, ...]:
    """(minute, hour) watermarks of the last run's heartbeats. The minute one resumes the
    late-event rule where the last run left it (the views' checkpoint restores Spark's watermark
    the same way); the hour one says from which hour on the rollup must catch up."""
    hbs = store.read_heartbeats(session, settings.keyspace)
    names = query_names(job)
    return tuple((hbs.get(names[part]) or {}).get("watermark") for part in ("minute", "hour"))


def run(spark_factory: Callable[[], object], settings: Settings, job: str = store.JOB,
        owner: str | None = None) -> int:
    """Run the job until stopped; returns the process exit code.

    The lease is taken (or confirmed: the launcher took it for this owner) and kept alive
    *before* the SparkSession starts: on a busy machine the JVM can take longer than the TTL.
    """
    from lae.cassandra import connect

    session = connect(settings)
    lease = StreamLease(session, settings.keyspace, job, settings.stream_lease_ttl_s,
                        owner=owner or os.environ.get("LAE_STREAM_OWNER") or default_owner())
    try:
        lease.acquire()  # no-op when the launcher already took it for this owner
    except LeaseHeldError as exc:
        log.error("%s", exc)
        session.cluster.shutdown()
        return EXIT_LEASE_HELD
    keeper = LeaseKeeper(lease)
    keeper.start()
    stop = Stop()
    signal.signal(signal.SIGTERM, lambda *_: stop.request("SIGTERM"))
    minute_wm, hour_wm = _initial_watermarks(session, settings, job)
    watermark = SharedWatermark(minute_wm)
    queries: dict = {}
    rollup = None
    spark = None
    code = EXIT_QUERY_FAILED
    try:
        spark = spark_factory()
        if stop.reason or keeper.lost.is_set():
            code = 0 if stop.reason else EXIT_QUERY_FAILED
            return code
        queries, rollup = start_queries(spark, settings, session, watermark, job,
                                        rollup_since=hour_wm)
        rollup.start()
        log.info("started %s and the hour rollup (owner %s)",
                 ", ".join(q.name for q in queries.values()), lease.owner)
        code = monitor(queries, session, settings, watermark, stop, keeper, job,
                       rollup=rollup)
    finally:
        if rollup is not None:
            rollup.stopping.set()
            rollup.join(timeout=120)
        for query in queries.values():
            try:
                query.stop()
            except Exception:
                log.exception("stopping %s", query.name)
        if rollup is not None and code == 0 and not rollup.is_alive():
            # A clean stop leaves the hour rows rolled up to where the minute query stopped.
            _tolerant(rollup.roll)
        if spark is not None:
            spark.stop()
        keeper.stopping.set()
        if code == 0:
            # A clean stop frees the lease at once; after a failure it expires by its TTL.
            lease.release()
        session.cluster.shutdown()
    return code
