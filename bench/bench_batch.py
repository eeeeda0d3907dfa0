"""Batch recompute of one day (Spark, ``lae.batch.job.recompute``) next to DuckDB computing the
same minute aggregates from the same Parquet files, in the same run.

    .venv/bin/python bench/bench_batch.py                       # 1M and 10M events
    .venv/bin/python bench/bench_batch.py --events 1000000

For each size: events of one UTC day from the traffic generator (1% re-sent duplicates) are
written as the master dataset (the archive's layout, schema and Parquet writer) to a bench
bucket; Spark recomputes the day into a bench keyspace, timed as ``compute`` (read + de-dup +
minute and hour views, materialized) and ``write`` (Cassandra inserts + read-back verify)
separately; DuckDB reads the very same objects (downloaded first, not timed: it has no S3
access here) and computes requests, errors, bytes, latency sum and max per (service, minute,
path, status_class) after the same de-duplication. Both must give the same totals.
Issue #5's goals: Spark's read+aggregate within 3x of DuckDB at 10M; 10M at most 10x the time
of 1M. Note the job computes more (histograms, HLL sketches, hour rollup) than DuckDB here, so
an extra row, clearly labelled, times Spark running DuckDB's very query (same de-duplication,
same five aggregates, read from S3, run after the job so with a warm JVM): like for like.
A second DuckDB row computes the *full* minute view (DUCKDB_FULL_SQL: also client_errors, the
60-bucket latency histogram and approx_count_distinct(user_id) for the HLL sketch), checked
against the job's rows (every exact total, the histogram bucket by bucket); the ratio to it is
printed beside the ratio to the light query. The headline is the job's own read+aggregate.
Needs S3 and Cassandra running (``lae stack up``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from lae.config import get_settings

TOPIC = "bench.batch"
DAY = date(2021, 9, 1)
PARTITIONS = 3


def _hour_table(model, day: date, hour: int, n: int, first_offset: int):
    """``n`` events of one hour in the archive schema, ordered like an archived partition."""
    import pyarrow as pa

    from lae.schema import archive_arrow_schema

    start_ms = int(datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp() * 1000)
    ts_ms = start_ms + np.sort(np.random.default_rng(hour).integers(0, 3_600_000, n))
    chunk = model.draw(ts_ms, start_ms)
    cols = chunk.fields
    schema = archive_arrow_schema()
    data = {name: cols[name] for name in ("event_id", "service", "host", "method", "path",
                                          "status", "latency_ms", "bytes", "user_id", "ip",
                                          "user_agent")}
    data["ts"] = pa.array(chunk.ts_ms, type=pa.int64()).cast(pa.timestamp("ms", tz="UTC")).cast(
        pa.timestamp("us", tz="UTC"))
    data["schema"] = [1] * n
    data["topic"] = [TOPIC] * n
    data["partition"] = (np.arange(n) % PARTITIONS).astype(np.int32)
    data["offset"] = first_offset + np.arange(n, dtype=np.int64)
    data["kafka_ts"] = pa.array(ts_ms, type=pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    return pa.Table.from_pydict({f.name: data[f.name] for f in schema}, schema=schema)


def write_master(settings, client, n: int, local: Path) -> int:
    """Write ``n`` events of DAY (master layout) to S3 and to ``local``; returns the bytes."""
    from lae.archive.layout import master_key
    from lae.archive.writer import encode, master_parquet_options
    from lae.generator.model import Mix, TrafficModel

    model = TrafficModel(11, mix=Mix(late=0.0, duplicate=0.01, malformed=0.0))
    per_hour = [n // 24 + (1 if h < n % 24 else 0) for h in range(24)]
    total, offset = 0, 0
    for hour, count in enumerate(per_hour):
        table = _hour_table(model, DAY, hour, count, offset)
        for i in range(0, count, 250_000):  # the archive's default max_rows per file
            part = table.slice(i, 250_000)
            first, last = int(part["offset"][0].as_py()), int(part["offset"][-1].as_py())
            key = master_key(TOPIC, 0, first, last, DAY.isoformat(), f"{hour:02d}")
            body = encode(part, master_parquet_options())  # the archive's master files
            client.put_object(Bucket=settings.bucket, Key=key, Body=body)
            path = local / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            total += len(body)
        offset += count
    return total


DUCKDB_SQL = """
WITH firsts AS (
  SELECT * FROM read_parquet('{glob}')
  QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY topic, "partition", "offset") = 1
)
SELECT service, date_trunc('minute', ts) AS minute, path,
       CAST(status // 100 AS VARCHAR) || 'xx' AS status_class,
       count(*) AS requests, count(*) FILTER (WHERE status >= 500) AS errors,
       sum(bytes) AS bytes, sum(latency_ms) AS latency_sum, max(latency_ms) AS latency_max
FROM firsts
WHERE ts >= TIMESTAMPTZ '{start}' AND ts < TIMESTAMPTZ '{end}'
GROUP BY ALL
"""


# The full minute view in DuckDB: every measure of lae.views.metrics_minute, from the same
# Parquet, after the same de-duplication. The histogram uses lae.views.histogram's edges and
# rule (bisect_right, half-open buckets) as the same binary search of CASE WHENs as the Spark
# expression; approx_count_distinct (DuckDB's HyperLogLog) stands in for the HLL sketch.
DUCKDB_FULL_SQL = """
WITH firsts AS (
  SELECT * FROM read_parquet('{glob}')
  QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY topic, "partition", "offset") = 1
), events AS (
  SELECT service, date_trunc('minute', ts) AS minute, path,
         CAST(status // 100 AS VARCHAR) || 'xx' AS status_class, bytes, latency_ms,
         CAST(round(latency_ms * 1000) AS BIGINT) AS latency_us, {bucket} AS bucket, user_id
  FROM firsts
  WHERE ts >= TIMESTAMPTZ '{start}' AND ts < TIMESTAMPTZ '{end}'
)
SELECT service, minute, path, status_class,
       count(*) AS requests, count(*) FILTER (WHERE status_class = '5xx') AS errors,
       count(*) FILTER (WHERE status_class = '4xx') AS client_errors,
       sum(bytes) AS bytes, sum(latency_us) AS latency_us, max(latency_ms) AS latency_max,
       [{hist}] AS latency_hist, approx_count_distinct(user_id) AS users
FROM events
GROUP BY service, minute, path, status_class
"""


def duckdb_bucket_sql(column: str) -> str:
    """``bisect_right(EDGES_MS, column)`` in SQL, the search of lae.views.metrics.latency_bucket.

    Edges are string literals cast to DOUBLE so DuckDB parses them to the very same doubles
    (a bare 0.126... would be a DECIMAL, whose conversion to DOUBLE need not round-trip).
    """
    from lae.views.histogram import EDGES_MS, N_BUCKETS

    def search(lo: int, hi: int) -> str:
        if lo == hi:
            return str(lo)
        mid = (lo + hi + 1) // 2
        return (f"CASE WHEN {column} < '{EDGES_MS[mid - 1]!r}'::DOUBLE "
                f"THEN {search(lo, mid - 1)} ELSE {search(mid, hi)} END")

    return search(0, N_BUCKETS - 1)


def duckdb_full_minutes(local: Path) -> tuple[float, dict]:
    """DuckDB computing the whole minute view (DUCKDB_FULL_SQL); its totals for the check."""
    import duckdb

    from lae.batch.compute import day_bounds
    from lae.views.histogram import N_BUCKETS

    start, end = day_bounds(DAY)
    hist = ", ".join(f"count(*) FILTER (WHERE bucket = {i})" for i in range(N_BUCKETS))
    sql = DUCKDB_FULL_SQL.format(glob=local / "master" / "**" / "*.parquet", start=start,
                                 end=end, bucket=duckdb_bucket_sql("latency_ms"), hist=hist)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    t0 = time.perf_counter()
    con.execute(f"CREATE TABLE minutes AS {sql}")
    seconds = time.perf_counter() - t0
    bucket_sums = ", ".join(f"sum(latency_hist[{i + 1}])" for i in range(N_BUCKETS))
    row = con.execute("SELECT count(*), sum(requests), sum(errors), sum(client_errors), "  # noqa: S608 - generated column list, no input
                      "sum(bytes), sum(latency_us) / 1000, max(latency_max), "
                      f"sum(users), {bucket_sums} FROM minutes").fetchone()
    con.close()
    totals = dict(zip(FULL_TOTALS, row[:len(FULL_TOTALS)], strict=True))
    totals["latency_hist"] = [int(x) for x in row[len(FULL_TOTALS):]]
    return seconds, totals


FULL_TOTALS = ("rows", "requests", "errors", "client_errors", "bytes", "latency_sum",
               "latency_max", "users")


def duckdb_minutes(local: Path) -> tuple[float, dict]:
    import duckdb

    from lae.batch.compute import day_bounds

    start, end = day_bounds(DAY)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    glob = str(local / "master" / "**" / "*.parquet")
    t0 = time.perf_counter()
    con.execute(f"CREATE TABLE minutes AS {DUCKDB_SQL.format(glob=glob, start=start, end=end)}")
    seconds = time.perf_counter() - t0
    row = con.execute("SELECT count(*), sum(requests), sum(errors), sum(bytes), "
                      "sum(latency_sum), max(latency_max) FROM minutes").fetchone()
    con.close()
    return seconds, dict(zip(("rows", "requests", "errors", "bytes", "latency_sum",
                              "latency_max"), row, strict=True))


def spark_same_sql(spark, bucket: str) -> tuple[float, dict]:
    """Spark computing DuckDB's aggregates (DUCKDB_SQL) from the day's objects on S3."""
    import pyspark.sql.functions as F

    from lae.batch.compute import BATCH_SQL_CONF, dedupe, in_day, read_day, sql_conf

    with sql_conf(spark, BATCH_SQL_CONF):  # the job's own SQL settings
        t0 = time.perf_counter()
        events = in_day(dedupe(read_day(spark, bucket, DAY)), DAY)
        minutes = events.groupBy(
            "service", F.date_trunc("minute", "ts").alias("minute"), "path",
            F.concat(F.floor(F.col("status") / 100).cast("string"), F.lit("xx")).alias("sc"),
        ).agg(F.count(F.lit(1)).alias("requests"),
              F.count_if(F.col("status") >= 500).alias("errors"),
              F.sum("bytes").alias("bytes"), F.sum("latency_ms").alias("latency_sum"),
              F.max("latency_ms").alias("latency_max")).cache()
        rows = minutes.count()  # materializes the aggregate, like DuckDB's CREATE TABLE
        seconds = time.perf_counter() - t0
    total = minutes.agg(F.sum("requests"), F.sum("errors"), F.sum("bytes"),
                        F.sum("latency_sum"), F.max("latency_max")).first()
    minutes.unpersist()
    return seconds, dict(zip(("rows", "requests", "errors", "bytes", "latency_sum",
                              "latency_max"), (rows, *total), strict=True))


def spark_totals(session, keyspace: str, day: date) -> dict:
    """The totals of the published minute view, read back from Cassandra: DUCKDB_SQL's and
    DUCKDB_FULL_SQL's (client_errors, per-bucket histogram sums, summed HLL estimates)."""
    from lae.batch import store
    from lae.views.histogram import N_BUCKETS
    from lae.views.hll import estimate

    batch_id = store.published_batch(session, keyspace, day)
    services = store.batches_of_day(session, keyspace, day)[batch_id]
    out = dict.fromkeys(("rows", "requests", "errors", "client_errors", "bytes",
                         "latency_sum", "users"), 0)
    out["latency_max"] = 0.0
    out["latency_hist"] = [0] * N_BUCKETS
    query = ("SELECT requests, errors, client_errors, bytes, latency_sum, latency_max, "  # noqa: S608 - table/column names are constants; values are bound
             f"latency_hist, users_hll FROM {keyspace}.batch_metrics_minute "
             "WHERE service = %s AND day = %s AND batch_id = %s")
    for service in sorted(services):
        for r in session.execute(query, (service, day, batch_id)):
            out["rows"] += 1
            for key in ("requests", "errors", "client_errors", "bytes", "latency_sum"):
                out[key] += getattr(r, key)
            out["latency_max"] = max(out["latency_max"], r.latency_max)
            out["latency_hist"] = [a + b for a, b in zip(out["latency_hist"], r.latency_hist,
                                                         strict=True)]
            out["users"] += estimate(r.users_hll)
    return out


def same_totals(a: dict, b: dict) -> bool:
    exact = all(a[k] == b[k] for k in ("rows", "requests", "errors", "bytes", "latency_max"))
    return exact and abs(a["latency_sum"] - b["latency_sum"]) <= 1e-9 * max(1.0, b["latency_sum"])


def same_full_totals(spark: dict, duck: dict) -> tuple[bool, float]:
    """Every exact measure equal (histogram bucket by bucket) and the relative difference of
    the summed distinct-user estimates (two HLL implementations: close, not equal)."""
    exact = same_totals(spark, duck) and spark["client_errors"] == duck["client_errors"] and (
        spark["latency_hist"] == duck["latency_hist"])
    return exact, abs(spark["users"] - duck["users"]) / max(1.0, duck["users"])


def fresh_keyspace_and_bucket(cfg):
    """An empty bench bucket and a freshly migrated bench keyspace."""
    from lae.scratch import fresh_keyspace_and_bucket as fresh

    return fresh(cfg, drop_timeout=120)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", default="1000000,10000000",
                   help="comma-separated day sizes (default 1M and 10M)")
    p.add_argument("--bucket", default="lae-bench-batch")
    p.add_argument("--keyspace", default="lae_bench_batch")
    p.add_argument("--driver-memory", default=None,
                   help="the Spark driver heap (default: the job's, LAE_BATCH_DRIVER_MEMORY)")
    args = p.parse_args()
    from lae.batch.job import recompute, session_conf
    from lae.spark import build_session

    settings = replace(get_settings(), bucket=args.bucket, keyspace=args.keyspace)
    if args.driver_memory:
        settings = replace(settings, batch_driver_memory=args.driver_memory)
    os.environ["LAE_BUCKET"], os.environ["LAE_KEYSPACE"] = args.bucket, args.keyspace
    print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores); "
          f"driver heap {settings.batch_driver_memory}")
    # The job's own session properties (its heap), as spark_jobs/batch_views.py sets them.
    spark = build_session("lae-bench-batch", settings=settings, conf=session_conf(settings))
    results = {}
    try:
        for n in (int(x) for x in args.events.split(",")):
            client, session = fresh_keyspace_and_bucket(settings)
            with tempfile.TemporaryDirectory(prefix="lae-bench-batch-") as tmp:
                t0 = time.perf_counter()
                size = write_master(settings, client, n, Path(tmp))
                print(f"\n{n:,} events: {size / 1e6:.1f} MB of Parquet written in "
                      f"{time.perf_counter() - t0:.0f}s", flush=True)
                timings: dict[str, float] = {}
                result = recompute(spark, settings, DAY, timings=timings)
                job_load = os.getloadavg()[0]
                d_seconds, d_totals = duckdb_minutes(Path(tmp))
                d_load = os.getloadavg()[0]
                full_seconds, full_totals = duckdb_full_minutes(Path(tmp))
                full_load = os.getloadavg()[0]
                like_seconds, like_totals = spark_same_sql(spark, settings.bucket)
                like_load = os.getloadavg()[0]
            s_totals = spark_totals(session, settings.keyspace, DAY)
            session.cluster.shutdown()
            results[n] = timings["compute"]
            print(f"  spark read+aggregate  {timings['compute']:7.1f}s "
                  f"{n / timings['compute']:>12,.0f} events/s   (the job: minute+hour views)")
            print(f"  cassandra write+verify{timings['write']:7.1f}s "
                  f"({result.minute_rows:,} minute + {result.hour_rows:,} hour rows, "
                  f"{(result.minute_rows + result.hour_rows) / timings['write']:,.0f} rows/s); "
                  f"publish {timings['publish']:.1f}s   [load {job_load:.1f}]")
            print(f"  duckdb read+aggregate {d_seconds:7.1f}s {n / d_seconds:>12,.0f} events/s"
                  f"   [load {d_load:.1f}]")
            print(f"  duckdb full minute view{full_seconds:6.1f}s "
                  f"{n / full_seconds:>12,.0f} events/s"
                  "   (+ client_errors, 60-bucket histogram, approx_count_distinct)"
                  f"   [load {full_load:.1f}]")
            print(f"  spark / duckdb light query       {timings['compute'] / d_seconds:7.1f}x "
                  "(goal <= 3x at 10M)")
            print(f"  spark / duckdb full minute view  {timings['compute'] / full_seconds:7.1f}x")
            print(f"  extra, like for like: spark running DuckDB's query {like_seconds:7.1f}s "
                  f"= {like_seconds / d_seconds:.1f}x duckdb   [load {like_load:.1f}]")
            light = {k: s_totals[k] for k in d_totals}
            print(f"  same totals: {same_totals(s_totals, d_totals)} (spark {light}; "
                  f"duckdb {d_totals}); like-for-like same totals: "
                  f"{same_totals(like_totals, d_totals)}", flush=True)
            exact, users_diff = same_full_totals(s_totals, full_totals)
            print(f"  full minute view same totals (client_errors, histogram per bucket too): "
                  f"{exact}; summed distinct users spark {s_totals['users']:,.0f} vs duckdb "
                  f"{full_totals['users']:,} ({users_diff:.2%} apart)", flush=True)
            print(f"  load average now: {os.getloadavg()[0]:.1f}")
    finally:
        spark.stop()
    sizes = sorted(results)
    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        print(f"\nspark read+aggregate {hi:,} / {lo:,}: {results[hi] / results[lo]:.1f}x the time "
              f"for {hi / lo:.0f}x the events (goal <= 10x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
