"""lae.batch.compute on small DataFrames: de-duplication keeps the first archived copy."""

from __future__ import annotations

from datetime import UTC, date, datetime

from lae.batch.compute import day_views, dedupe
from lae.schema import archive_spark_schema

TS = datetime(2026, 11, 25, 10, 0, 30, tzinfo=UTC)


def _row(event_id, partition, offset, ts=TS, status=200, nbytes=10):
    return (event_id, ts, "svc", "h", "GET", "/p", status, 1.0, nbytes, "u1", None, None, 1,
            "logs.raw", partition, offset, ts)


def test_dedupe_keeps_the_copy_with_the_smallest_coordinates(spark):
    rows = [_row("e1", 2, 5, nbytes=1), _row("e1", 0, 9, nbytes=2), _row("e1", 0, 7, nbytes=3),
            _row("e2", 1, 1, nbytes=4)]
    df = spark.createDataFrame(rows, archive_spark_schema())
    got = {r["event_id"]: (r["partition"], r["offset"], r["bytes"]) for r in dedupe(df).collect()}
    assert got == {"e1": (0, 7, 3), "e2": (1, 1, 4)}


def test_day_views_drop_duplicates_and_events_outside_the_day(spark):
    other_day = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
    rows = [_row("e1", 0, 1), _row("e1", 1, 1), _row("e2", 0, 2, status=503, nbytes=5),
            _row("e3", 0, 3, ts=other_day)]
    minute, hour = day_views(spark.createDataFrame(rows, archive_spark_schema()),
                             date(2026, 11, 25))
    got = {(r["status_class"], r["requests"], r["errors"], r["bytes"]) for r in minute.collect()}
    assert got == {("2xx", 1, 0, 10), ("5xx", 1, 1, 5)}
    assert sum(r["requests"] for r in hour.collect()) == 2


def test_sql_conf_sets_for_the_block_and_restores(spark):
    from lae.batch.compute import BATCH_SQL_CONF, sql_conf

    key = "spark.sql.optimizer.windowGroupLimitThreshold"
    before = spark.conf.get(key)
    with sql_conf(spark, BATCH_SQL_CONF):
        assert spark.conf.get(key) == BATCH_SQL_CONF[key]
    assert spark.conf.get(key) == before
