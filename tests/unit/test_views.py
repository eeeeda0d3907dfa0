"""lae.views on Spark: the metrics views against plain-Python expectations over the same events.

Expectations come from tests/unit/test_views_histogram.py, which re-derives the bucket rule from its
specification instead of calling lae.views. Rows are compared as dicts keyed by the table's
primary key, so the order Spark returns them in does not matter.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import re
from pathlib import Path

import pytest

from lae.schema import spark_schema
from lae.views import (
    HOUR_COLUMNS,
    LG_CONFIG_K,
    MINUTE_COLUMNS,
    RELATIVE_ERROR,
    RELATIVE_STD_ERROR,
    metrics_hour,
    metrics_hour_from_events,
    metrics_minute,
    percentile_from_hist,
)
from tests.unit.test_views_histogram import expected_metrics, nearest_rank, spec_edge

pytestmark = pytest.mark.spark

# Two hours that cross midnight UTC: minute, hour and day buckets all have boundaries inside.
START = dt.datetime(2026, 11, 26, 22, 58, 30, tzinfo=dt.UTC)
STATUSES = [101, 200, 201, 204, 301, 304, 400, 404, 429, 500, 503, 599]
CQL = Path(__file__).parents[2] / "include/lae/cql/V001__keyspace_and_views.cql"


def _make_events(n: int = 600, seed: int = 11) -> list[dict]:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not security
    edges = [spec_edge(k) for k in (0, 3, 9, 30, 58)]
    # Latencies on and just below bucket edges, and beyond both ends of the scheme.
    special = [0.0, 0.05, *edges, *(math.nextafter(e, 0) for e in edges), 250_000.0]
    on_boundaries = [dt.datetime(2026, 11, 27, tzinfo=dt.UTC), START + dt.timedelta(seconds=90)]
    events = []
    for i in range(n):
        if i < len(on_boundaries):
            ts = on_boundaries[i]
        else:
            ts = START + dt.timedelta(milliseconds=rng.randrange(2 * 3600 * 1000))
        latency = special[i] if i < len(special) else round(rng.lognormvariate(3, 1.5), 3)
        events.append(
            {
                "event_id": f"e{i}",
                "ts": ts,
                "service": rng.choice(["orders", "users"]),
                "host": "h1",
                "method": "GET",
                "path": rng.choice(["/v1/orders", "/v1/orders/{id}"]),
                "status": rng.choice(STATUSES),
                "latency_ms": latency,
                "bytes": 2**40 if i == 7 else rng.randrange(10**6),
                "user_id": None if rng.random() < 0.2 else f"u{rng.randrange(40)}",
                "ip": None,
                "user_agent": None,
                "schema": 1,
            }
        )
    return events


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return _make_events()


@pytest.fixture(scope="module")
def events_df(spark, events):
    return spark.createDataFrame(events, spark_schema())


def _keyed(df, time_column: str) -> dict[tuple, dict]:
    """Rows by (service, day, bucket start as epoch seconds, path, status_class)."""
    import pyspark.sql.functions as F

    rows = df.select(
        "*",
        F.unix_seconds(time_column).alias("start"),
        F.hll_sketch_estimate("users_hll").alias("users"),
    ).collect()
    by_key = {(r.service, r.day, r.start, r.path, r.status_class): r.asDict() for r in rows}
    assert len(by_key) == len(rows), "duplicate keys"
    return by_key


def _assert_matches(actual: dict[tuple, dict], expected: dict[tuple, dict]) -> None:
    assert sorted(actual) == sorted(expected)
    for key, want in expected.items():
        got = actual[key]
        for name in ("requests", "errors", "client_errors", "bytes", "latency_max"):
            assert got[name] == want[name], (key, name)
        assert got["latency_hist"] == want["latency_hist"], key
        # latency_sum is kept in whole microseconds: each latency moves by at most 0.5 µs.
        assert math.isclose(
            got["latency_sum"], want["latency_sum"], rel_tol=1e-12, abs_tol=5e-4 * want["requests"]
        ), key
        # A sketch of a few dozen users is still an exact list of hashes.
        assert abs(got["users"] - len(want["users"])) < 0.5, key


def _cql_columns(table: str) -> list[tuple[str, str]]:
    body = re.search(rf"\.{table} \((.*?)PRIMARY KEY", CQL.read_text(), re.S).group(1)
    return [tuple(line.strip().rstrip(",").split(" ", 1)) for line in body.strip().splitlines()]


@pytest.mark.parametrize(
    ("table", "view", "columns"),
    [
        ("rt_metrics_minute", metrics_minute, MINUTE_COLUMNS),
        ("rt_metrics_hour", lambda df: metrics_hour(metrics_minute(df)), HOUR_COLUMNS),
        ("rt_metrics_hour", metrics_hour_from_events, HOUR_COLUMNS),
    ],
)
def test_columns_are_the_cassandra_tables(events_df, table, view, columns) -> None:
    cql_to_spark = {
        "text": "string",
        "date": "date",
        "timestamp": "timestamp",
        "bigint": "bigint",
        "double": "double",
        "list<bigint>": "array<bigint>",
        "blob": "binary",
    }
    want = [(name, cql_to_spark[cql_type]) for name, cql_type in _cql_columns(table)]
    assert view(events_df).dtypes == want
    assert [name for name, _ in want] == list(columns)


def test_metrics_minute_equals_plain_python(events, events_df) -> None:
    _assert_matches(_keyed(metrics_minute(events_df), "minute"), expected_metrics(events, 60))


@pytest.mark.parametrize(
    "hourly",
    [lambda df: metrics_hour(metrics_minute(df)), metrics_hour_from_events],
    ids=["rollup", "from_events"],
)
def test_metrics_hour_equals_plain_python_hourly_metrics(events, events_df, hourly) -> None:
    _assert_matches(_keyed(hourly(events_df), "hour"), expected_metrics(events, 3600))


def test_buckets_are_utc_whatever_the_session_time_zone(spark, events, events_df) -> None:
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "Asia/Kolkata")  # +05:30: no whole hours
    try:
        hour = _keyed(metrics_hour(metrics_minute(events_df)), "hour")
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)
    assert sorted(hour) == sorted(expected_metrics(events, 3600))


@pytest.fixture(scope="module")
def hundred_k_users(spark):
    """100k events over one hour, each with its own user and a lognormal latency."""
    import pyspark.sql.functions as F

    n = 100_000
    hour_start = int(START.replace(minute=0, second=0).timestamp())
    events = (
        spark.range(n)
        .select(
            F.concat(F.lit("e"), F.col("id")).alias("event_id"),
            F.timestamp_seconds(F.lit(hour_start) + F.col("id") % 3600).alias("ts"),
            F.lit("svc").alias("service"),
            F.lit("/p").alias("path"),
            F.lit(200).alias("status"),
            F.round(F.exp(F.lit(math.log(40.0)) + 1.2 * F.randn(seed=5)), 3).alias("latency_ms"),
            F.lit(10).cast("bigint").alias("bytes"),
            F.concat(F.lit("user-"), F.col("id")).alias("user_id"),
        )
        .cache()  # randn: the views and the exact percentiles must see the same latencies
    )
    minute = metrics_minute(events)
    [hour] = metrics_hour(minute).collect()
    [raw] = events.agg(F.hll_sketch_agg("user_id", LG_CONFIG_K).alias("sketch")).collect()
    estimates = (
        spark.createDataFrame([(hour.users_hll, raw.sketch)], "hour binary, raw binary")
        .select(F.hll_sketch_estimate("hour"), F.hll_sketch_estimate("raw"))
        .first()
    )
    latencies = sorted(r.latency_ms for r in events.select("latency_ms").collect())
    events.unpersist()
    return {
        "n": n,
        "minutes": minute.count(),
        "hour": hour,
        "raw_sketch": raw.sketch,
        "hour_estimate": estimates[0],
        "raw_estimate": estimates[1],
        "latencies": latencies,
    }


def test_hll_estimates_within_three_sigma_on_100k_users(hundred_k_users) -> None:
    n, tolerance = hundred_k_users["n"], 3 * RELATIVE_STD_ERROR * hundred_k_users["n"]
    assert hundred_k_users["minutes"] == 60
    assert abs(hundred_k_users["raw_estimate"] - n) <= tolerance
    # The union of 60 minute sketches holds the same registers as one sketch of the hour; its
    # estimate may differ only by the estimator used (composite vs HIP), far inside the bound.
    assert abs(hundred_k_users["hour_estimate"] - n) <= tolerance
    assert hundred_k_users["hour_estimate"] == pytest.approx(
        hundred_k_users["raw_estimate"], rel=RELATIVE_STD_ERROR
    )


def test_hour_histogram_percentiles_within_the_stated_bound(hundred_k_users) -> None:
    hour, latencies = hundred_k_users["hour"], hundred_k_users["latencies"]
    assert sum(hour.latency_hist) == hour.requests == hundred_k_users["n"]
    assert hour.latency_max == latencies[-1]
    for q in (0.5, 0.95, 0.99, 0.999):
        exact = nearest_rank(latencies, q)
        got = percentile_from_hist(hour.latency_hist, q, hour.latency_max)
        assert abs(got - exact) <= RELATIVE_ERROR * exact, (q, got, exact)


def test_python_reads_spark_sketches(hundred_k_users) -> None:
    pytest.importorskip("datasketches")
    from lae.views import estimate, union_estimate

    hour = hundred_k_users["hour"]
    # Spark's hll_sketch_estimate rounds the same estimate to a whole number.
    assert round(estimate(hour.users_hll)) == hundred_k_users["hour_estimate"]
    assert round(estimate(hundred_k_users["raw_sketch"])) == hundred_k_users["raw_estimate"]
    both = union_estimate([hour.users_hll, hundred_k_users["raw_sketch"], None])
    assert both == pytest.approx(hundred_k_users["hour_estimate"], rel=RELATIVE_STD_ERROR)
    assert estimate(None) == 0.0


def test_streaming_gives_the_batch_rows(spark, tmp_path, events) -> None:
    """Invariant 3: the streaming job's use of metrics_minute gives the batch job's rows.

    The stream reads the events (with re-delivered duplicates) in three micro-batches, adds a
    watermark and de-duplication as the speed layer does, and writes in update mode; the last
    update of each key must equal the batch row.
    """
    redelivered = events[::10]
    source = tmp_path / "events"
    for chunk in (events[:200], events[200:] + redelivered[:20], redelivered[20:]):
        spark.createDataFrame(chunk, spark_schema()).coalesce(1).write.mode("append").parquet(
            str(source)
        )
    import pyspark.sql.functions as F

    from lae.stream.transforms import on_time_events

    parsed = (
        spark.readStream.schema(spark_schema())
        .option("maxFilesPerTrigger", 1)
        .parquet(str(source))
        .withColumn("reason", F.lit(None).cast("string"))  # all valid, as parse() marks them
    )
    # The speed layer's own watermark + de-duplication; wider than the data's two hours, so
    # no event is late and every window stays open.
    stream = on_time_events(parsed, "3 hours")
    latest: dict[tuple, dict] = {}
    batches: list[int] = []

    def keep_latest(batch_df, batch_id: int) -> None:
        batches.append(batch_id)
        latest.update(_keyed(batch_df, "minute"))  # update mode: a later row supersedes

    query = (
        metrics_minute(stream)
        .writeStream.outputMode("update")
        .foreachBatch(keep_latest)
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    assert query.awaitTermination(180), "stream did not finish"
    assert query.exception() is None
    assert len(batches) >= 3  # the aggregate was really built up across micro-batches

    batch = _keyed(metrics_minute(spark.createDataFrame(events, spark_schema())), "minute")
    assert sorted(latest) == sorted(batch)
    for key, row in batch.items():
        streamed = latest[key]
        for name in MINUTE_COLUMNS:
            if name != "users_hll":
                assert streamed[name] == row[name], (key, name)
        # Same users, same estimate; the blobs themselves may differ, because a small
        # sketch lists its hashes in arrival order.
        assert streamed["users"] == row["users"], key
