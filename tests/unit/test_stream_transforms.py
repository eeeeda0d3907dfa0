"""lae.stream.transforms on static DataFrames: parse, de-duplication, late counts, DLQ shape.

Inputs are Kafka-shaped rows built here; expectations are written out by hand.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from lae.kafka import DLQ_REASON, DLQ_SOURCE_OFFSET, DLQ_SOURCE_PARTITION, DLQ_STAGE
from lae.stream.transforms import (
    dlq_records,
    intake_columns,
    late_counts,
    on_time_events,
    parse,
)

pytestmark = pytest.mark.spark


def _event(eid: int, ts: str, service: str = "checkout", status: int = 200) -> bytes:
    return json.dumps({
        "event_id": f"00000000-0000-4000-8000-{eid:012d}", "ts": ts, "service": service,
        "host": "h1", "method": "GET", "path": "/v1/x", "status": status, "latency_ms": 1.5,
        "bytes": 10, "user_id": "u1"}).encode()


def _schema():
    """The Kafka source's columns (pyspark.sql.types needs no JVM)."""
    from pyspark.sql import types as T

    return T.StructType([T.StructField("key", T.BinaryType()),
                         T.StructField("value", T.BinaryType()),
                         T.StructField("topic", T.StringType()),
                         T.StructField("partition", T.IntegerType()),
                         T.StructField("offset", T.LongType()),
                         T.StructField("timestamp", T.TimestampType())])


@pytest.fixture(scope="module")
def records(spark):
    values = [
        _event(1, "2026-11-20T23:59:59Z"),
        _event(1, "2026-11-20T23:59:59Z"),  # a duplicate (producer retry)
        _event(2, "2026-11-21T00:00:30+01:00", service="search"),  # 2026-11-20 23:00:30 UTC
        _event(3, "2026-11-21T00:20:00Z"),
        b'{"event_id": "nope"',  # truncated JSON
        _event(4, "2026-11-21T00:21:00Z", status=99),  # out of range
    ]
    now = datetime(2026, 11, 21, 0, 30, tzinfo=UTC)
    rows = [(b"k", v, "logs.raw", 1, i, now) for i, v in enumerate(values)]
    return parse(spark.createDataFrame(rows, _schema()))


def test_dlq_records_carry_the_raw_bytes_reason_and_coordinates(records):
    rows = dlq_records(records).collect()
    assert len(rows) == 2
    headers = [{h["key"]: bytes(h["value"]).decode() for h in r["headers"]} for r in rows]
    by_offset = {int(h[DLQ_SOURCE_OFFSET]): (h, bytes(r["value"]))
                 for h, r in zip(headers, rows, strict=True)}
    assert by_offset[4][0][DLQ_REASON] == "invalid_json"
    assert by_offset[4][1] == b'{"event_id": "nope"'
    assert by_offset[5][0][DLQ_REASON] == "out_of_range:status"
    assert all(h[DLQ_SOURCE_PARTITION] == "1" and h[DLQ_STAGE] == "speed" for h in headers)


def _run_on_time_events(spark, tmp_path, batches: list[list[bytes]], now: datetime,
                        seen: list[str]):
    """Run ``on_time_events`` (10-minute watermark) as a real file stream, one micro-batch per
    list of values; the last digit of every event_id it emits goes to ``seen``. Returns the
    finished query (its progress reports)."""
    from lae.stream.transforms import KAFKA_COLUMNS

    offset = 0
    for i, values in enumerate(batches):
        rows = []
        for v in values:
            rows.append((b"k", v, "logs.raw", 0, offset, now))
            offset += 1
        spark.createDataFrame(rows, _schema()).coalesce(1).write.parquet(
            str(tmp_path / "staging" / f"b{i}"))
        # One file per micro-batch (maxFilesPerTrigger=1), read in name order.
        (part,) = (tmp_path / "staging" / f"b{i}").glob("*.parquet")
        (tmp_path / "in").mkdir(exist_ok=True)
        part.rename(tmp_path / "in" / f"{i}.parquet")
    stream = spark.readStream.schema(_schema()).option("maxFilesPerTrigger", 1).parquet(
        str(tmp_path / "in"))
    query = (on_time_events(parse(stream.select(*KAFKA_COLUMNS, "value")), "10 minutes")
             .writeStream.foreachBatch(
                 lambda df, _: seen.extend(r["event_id"][-1] for r in df.collect()))
             .option("checkpointLocation", str(tmp_path / "ckpt"))
             .trigger(availableNow=True).start())
    query.awaitTermination(600)
    return query


def test_on_time_events_drop_late_and_duplicates_as_late_counts_predicts(spark, tmp_path):
    """A real (file) stream, three micro-batches: Spark's watermark drop and ``late_counts``
    with the watermark of the latest progress report (what the job's intake query uses) pick
    the same events. Spark filters a micro-batch's late rows with the watermark the previous
    micro-batch reported, so the late event comes two batches after the one that moved it."""
    from lae.stream.progress import parse_time

    now = datetime(2026, 11, 21, 0, 30, tzinfo=UTC)
    batches = [
        [_event(1, "2026-11-20T23:59:59Z"), _event(1, "2026-11-20T23:59:59Z"),
         _event(3, "2026-11-21T00:20:00Z")],  # max event time 00:20 → watermark 00:10
        [_event(7, "2026-11-21T00:15:00Z")],  # reports watermark 00:10 in its progress
        [_event(5, "2026-11-21T00:09:59Z"), _event(6, "2026-11-21T00:10:01Z"),
         _event(3, "2026-11-21T00:20:00Z")],  # 5 is late, 6 on time, 3 a duplicate
    ]
    seen: list[str] = []
    query = _run_on_time_events(spark, tmp_path, batches, now, seen)
    assert sorted(seen) == ["1", "3", "6", "7"]
    reports = {p.batchId: p for p in query.recentProgress}
    watermark = parse_time(reports[1].eventTime["watermark"])
    assert watermark == datetime(2026, 11, 21, 0, 10, tzinfo=UTC)
    # Spark's own count of the rows it dropped as late: the job's heartbeat cross-check.
    assert sum(op.numRowsDroppedByWatermark for op in reports[2].stateOperators) == 1
    third = parse(spark.createDataFrame(
        [(b"k", v, "logs.raw", 0, i, now) for i, v in enumerate(batches[2])], _schema()))
    assert [(r["service"], r["events"]) for r in late_counts(third, watermark).collect()] == [
        ("checkout", 1)]


def test_de_duplication_state_holds_one_watermark_delay_of_ids(spark, tmp_path):
    """An event_id leaves the de-duplication state once the watermark passes its ``ts``, not
    ``ts`` + the delay: the state (which Spark scans whole on every micro-batch to evict) holds
    one watermark delay of ids, not two. Copies still meet their first copy in the state."""
    now = datetime(2026, 11, 21, 0, 30, tzinfo=UTC)
    batches = [
        [_event(1, "2026-11-21T00:05:00Z"), _event(2, "2026-11-21T00:20:00Z")],  # → W 00:10
        [_event(3, "2026-11-21T00:21:00Z"), _event(2, "2026-11-21T00:20:00Z")],  # 2: a copy
        [_event(4, "2026-11-21T00:22:00Z")],
    ]
    seen: list[str] = []
    query = _run_on_time_events(spark, tmp_path, batches, now, seen)
    assert sorted(seen) == ["1", "2", "3", "4"]
    reports = {p.batchId: p for p in query.recentProgress}
    (dedup,) = [op for op in reports[1].stateOperators if op.operatorName.startswith("dedupe")]
    # Evicted with W = 00:10: id 1 (ts 00:05). Kept: 2 and 3. Keeping ids until ts + 10 min
    # (dropDuplicatesWithinWatermark) would still hold id 1 here: 3 rows.
    assert dedup.numRowsTotal == 2
    assert dedup.customMetrics["numDroppedDuplicateRows"] == 1


def test_late_counts_by_service_and_utc_day(records):
    cut = datetime(2026, 11, 21, 0, 10, tzinfo=UTC)
    got = {(r["service"], r["day"]): r["events"] for r in late_counts(records, cut).collect()}
    # Every valid copy at or before the watermark counts (both copies of the duplicate).
    assert got == {("checkout", date(2026, 11, 20)): 2, ("search", date(2026, 11, 20)): 1}
    assert late_counts(records, None).count() == 0


def test_intake_columns_keep_the_dlq_and_late_counts_and_drop_raw_bytes_of_valid_rows(records):
    narrow = intake_columns(records)
    cut = datetime(2026, 11, 21, 0, 10, tzinfo=UTC)

    def dlq(frame):
        return sorted((bytes(r["key"]), bytes(r["value"]),
                       [(h["key"], bytes(h["value"])) for h in r["headers"]])
                      for r in dlq_records(frame).collect())

    def late(frame):
        return sorted(tuple(r) for r in late_counts(frame, cut).collect())

    assert len(dlq(narrow)) == 2
    assert dlq(narrow) == dlq(records)
    assert late(narrow) == late(records) != []
    kept = {r["offset"]: (r["key"], r["value"]) for r in narrow.collect()}
    assert [o for o, (k, v) in sorted(kept.items()) if k is not None or v is not None] == [4, 5]
