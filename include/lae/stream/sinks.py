"""The ``foreachBatch`` functions of the two streaming queries (they run on the driver).

Each micro-batch's output is small — the aggregates that changed (bounded by services × paths
× status classes × open windows) and per (service, day) late counts — so it is collected to the
driver and upserted with a prepared statement over the driver's one Cassandra session, instead
of opening a session in every task of every micro-batch.

Idempotence: the views' rows are complete aggregates (update mode re-emits the whole value of a
changed key), and a late-count row is keyed by the micro-batch id; a micro-batch that Spark
replays after a crash (same offsets, state restored from the checkpoint) overwrites the rows its
first attempt wrote with the same values.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from lae.stream import store
from lae.stream.transforms import dlq_records, intake_columns, late_counts

log = logging.getLogger(__name__)


class SharedWatermark:
    """The views' current event-time watermark, as the monitor last read it from progress."""

    def __init__(self, value: datetime | None = None):
        self._lock = threading.Lock()
        self._value = value

    @property
    def value(self) -> datetime | None:
        with self._lock:
            return self._value

    def advance(self, value: datetime | None) -> None:
        with self._lock:  # a watermark never moves back
            if value is not None and (self._value is None or value > self._value):
                self._value = value


def rt_view_sink(session, keyspace: str, bucket: str,
                 written: Callable[[list], None] | None = None) -> Callable:
    """foreachBatch: upsert the changed ``rt_metrics_<bucket>`` rows, then pass them to
    ``written`` (the hour rollup's marks: after the upserts, so a rollup that sees the mark
    reads the rows)."""
    import pyspark.sql.functions as F

    insert = store.prepare_upsert(session, keyspace, bucket)

    def write(df, batch_id: int) -> None:
        rows = df.withColumn("bucket_ms", F.unix_millis(F.col(bucket))).drop(bucket).collect()
        store.execute_all(session, insert, [store.rt_values(r, bucket) for r in rows])
        if written is not None:
            written(rows)
        log.debug("%s batch %d: %d rows", bucket, batch_id, len(rows))

    return write


def intake_sink(session, keyspace: str, query_name: str, bootstrap: str, dlq_topic: str,
                watermark: SharedWatermark) -> Callable:
    """foreachBatch of the intake query: rejected records to the DLQ topic, late events counted.

    "Late" uses the watermark of the views' latest progress report: Spark filters a
    micro-batch's late rows with the watermark the previous micro-batch reported, so that is
    the one the views apply to data arriving now (tests/unit/test_stream_transforms.py checks
    the rule on a real stream). The queries advance independently, so an event within a
    micro-batch of the boundary may still be judged against a neighbouring watermark; events
    late by more than that margin — the case that matters — are classified the same by both.
    Replaying a micro-batch re-sends its DLQ records (the DLQ is at-least-once, and carries
    the source coordinates to de-duplicate on).
    """

    def write(df, batch_id: int) -> None:
        # Every row of the micro-batch is cached (in the narrow shape of intake_columns), not
        # only its rejected and late rows: a filter on this batch's watermark would put a new
        # literal into the code generated for the validation, which Spark would then compile
        # again (seconds) on every micro-batch.
        cut = watermark.value  # one watermark for the counts and the log line
        df = intake_columns(df).persist()
        try:
            (dlq_records(df).write.format("kafka")
             .option("kafka.bootstrap.servers", bootstrap)
             .option("topic", dlq_topic)
             .save())
            counts = [(r["service"], r["day"], int(r["events"]))
                      for r in late_counts(df, cut).collect()]
            store.write_late_events(session, keyspace, query_name, batch_id, counts)
            if counts:
                log.warning("batch %d: %d late events behind watermark %s", batch_id,
                            sum(n for *_, n in counts), cut)
        finally:
            df.unpersist()

    return write
