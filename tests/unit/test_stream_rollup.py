"""lae.stream.rollup: which hours the minute sink marks, and the hour rows rolled up from minute
rows shaped as the rollup reads them back from Cassandra.

Expectations are the hour rows ``lae.views.metrics_hour_from_events`` computes straight from the
same events (an independent aggregation), and hand-written counts. The Cassandra side (reads,
catch-up after a crash) runs in tests/integration/test_stream_speed_layer.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from lae.stream.rollup import HourMarks, hour_rows, hour_start, minute_schema
from lae.views import MINUTE_COLUMNS, estimate

T0 = datetime(2026, 11, 20, 23, 58, 30, tzinfo=UTC)


def test_marks_are_the_hours_of_the_minute_rows_and_take_empties_them():
    marks = HourMarks()
    minute = int(datetime(2026, 11, 20, 23, 59, tzinfo=UTC).timestamp() * 1000)
    next_day = int(datetime(2026, 11, 21, 0, 1, tzinfo=UTC).timestamp() * 1000)
    marks.mark_minute_rows([
        {"service": "a", "day": date(2026, 11, 20), "bucket_ms": minute},
        {"service": "a", "day": date(2026, 11, 20), "bucket_ms": minute - 60_000},
        {"service": "a", "day": date(2026, 11, 21), "bucket_ms": next_day},
    ])
    assert marks.take() == {
        ("a", date(2026, 11, 20), datetime(2026, 11, 20, 23, tzinfo=UTC)),
        ("a", date(2026, 11, 21), datetime(2026, 11, 21, 0, tzinfo=UTC)),
    }
    assert len(marks) == 0 and marks.take() == set()
    assert hour_start(datetime(2026, 11, 21, 1, 59, 59, 999, tzinfo=UTC)) == datetime(
        2026, 11, 21, 1, tzinfo=UTC)


def _events(spark):
    from pyspark.sql import types as T

    schema = T.StructType([T.StructField("ts", T.TimestampType()),
                           T.StructField("service", T.StringType()),
                           T.StructField("path", T.StringType()),
                           T.StructField("status", T.IntegerType()),
                           T.StructField("latency_ms", T.DoubleType()),
                           T.StructField("bytes", T.LongType()),
                           T.StructField("user_id", T.StringType())])
    rows = []
    for i in range(240):  # 23:58:30 .. 00:02:29, one event a second, over two hours and days
        ts = datetime.fromtimestamp(T0.timestamp() + i, UTC)
        rows.append((ts, "svc", "/v1/x", 200 if i % 7 else 503, 0.5 + i % 40, 100 + i,
                     None if i % 5 == 0 else f"u{i % 30}"))
    return spark.createDataFrame(rows, schema)


@pytest.mark.spark
def test_hour_rows_from_read_back_minute_rows_equal_the_hour_view_of_the_events(spark):
    import pyspark.sql.functions as F

    from lae.views import metrics_hour_from_events, metrics_minute

    events = _events(spark)
    # The minute rows as read_minute_rows returns them: tuples in V001's column order, the
    # minute as an aware UTC datetime (collected timestamps would be in the local zone).
    minute = []
    for r in metrics_minute(events).withColumn("ms", F.unix_millis("minute")).collect():
        values = {c: r[c] for c in MINUTE_COLUMNS}
        values["minute"] = datetime.fromtimestamp(r["ms"] / 1000, UTC)
        minute.append(tuple(values.values()))
    assert len(minute_schema().fields) == len(MINUTE_COLUMNS)

    got = {(r["service"], r["day"], r["bucket_ms"], r["status_class"]): r
           for r in hour_rows(spark, minute)}
    want = {(r["service"], r["day"], r["ms"], r["status_class"]): r
            for r in metrics_hour_from_events(events).withColumn(
                "ms", F.unix_millis("hour")).collect()}
    assert got.keys() == want.keys()
    assert sum(r["requests"] for r in got.values()) == 240
    hour_ms = int(datetime(2026, 11, 20, 23, tzinfo=UTC).timestamp() * 1000)
    # 23:58:30-23:59:59 are i = 0..89, of which 13 (i % 7 == 0) are 503s.
    assert got[("svc", date(2026, 11, 20), hour_ms, "2xx")]["requests"] == 77
    for key, row in got.items():
        other = want[key]
        for col in ("requests", "errors", "client_errors", "bytes", "latency_sum",
                    "latency_max", "latency_hist"):
            assert row[col] == other[col], (key, col)
        assert estimate(bytes(row["users_hll"])) == pytest.approx(
            estimate(bytes(other["users_hll"])), rel=0.02)
    assert hour_rows(spark, []) == []
