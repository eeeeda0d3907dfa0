"""Query API latency for a 24 h minute series vs the floor: the same rows read directly.

Setup (keyspace ``lae_bench_query`` of the configured Cassandra): one service, 24 h of minute
rows straddling W — 12 h from a published batch, 12 h realtime — with ``--paths`` paths x 3
status classes per minute, real latency histograms and HLL sketches (datasketches).

Measured, in the same run and at each concurrency (default 1 and 32):

- **floor**: the rows the API needs, read with cassandra-driver prepared statements (the
  batch pointer, W, the batch slice and the realtime slice, all rows fetched), in threads;
- **api**: ``GET /v1/metrics?granularity=minute`` over the same 24 h against ``lae serve``
  running as its own process (uvicorn, one worker), from httpx clients in threads.

The API keeps the points of a published day wholly before W in a small cache keyed by its
batch_id (lae.serving.query.read_points: a batch_id's rows never change), so after the first
request only the realtime half is read per request, while the floor reads both halves every
time. The first (cold) request, which reads and sums both halves, is printed on its own, and a
second server with the cache off (``LAE_SERVE_DAY_CACHE=0``, case ``api-nocache``) reads both
halves on every request, like the floor.

Prints p50/p99 per case, their ratio, and the load average. Goal: api p99 ≤ 2x floor p99 at
concurrency 32.

    .venv/bin/python bench/bench_query.py [--requests 5] [--concurrency 1 32] [--paths 4]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import httpx

from lae.cassandra import connect
from lae.cassandra_schema import migrate
from lae.config import get_settings
from lae.views import N_BUCKETS, bucket_index

KEYSPACE = "lae_bench_query"
SERVICE = "bench"
DAY1, DAY2 = date(2026, 1, 10), date(2026, 1, 11)
W = datetime(2026, 1, 11, tzinfo=UTC)
START, END = W - timedelta(hours=12), W + timedelta(hours=12)
BATCH_ID = "20260112T020000000000Z-bench000"
COLS = ("service, day, {b}, path, status_class, requests, errors, client_errors, bytes, "
        "latency_sum, latency_max, latency_hist, users_hll")


def _row(rng: random.Random, minute: datetime, path: str, status_class: str):
    import datasketches

    n = rng.randint(20, 200)
    hist = [0] * N_BUCKETS
    total = 0.0
    for _ in range(n):
        lat = rng.lognormvariate(3, 1)
        hist[bucket_index(lat)] += 1
        total += lat
    sketch = datasketches.hll_sketch(12)
    for _ in range(n):
        sketch.update(f"u{rng.randrange(5000)}")
    return (n, n if status_class == "5xx" else 0, n if status_class == "4xx" else 0, 900 * n,
            total, 2000.0, hist, sketch.serialize_compact())


def setup(settings, paths: int) -> int:
    from cassandra.concurrent import execute_concurrent_with_args

    session = connect(settings)
    session.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}", timeout=120)
    migrate(session, settings)
    session.set_keyspace(KEYSPACE)
    cols = COLS.format(b="minute")
    batch = session.prepare(f"INSERT INTO batch_metrics_minute (batch_id, {cols}) "  # noqa: S608 - table/column names are constants; values are bound
                            f"VALUES ({', '.join(['?'] * 14)})")
    rt = session.prepare(f"INSERT INTO rt_metrics_minute ({cols}) "  # noqa: S608 - table/column names are constants; values are bound
                         f"VALUES ({', '.join(['?'] * 13)})")
    rng = random.Random(1)  # noqa: S311 - benchmark data
    batch_rows, rt_rows = [], []
    for i in range(24 * 60):
        minute = START + timedelta(minutes=i)
        for p in range(paths):
            for status_class in ("2xx", "4xx", "5xx"):
                key = (SERVICE, minute.date(), minute, f"/v1/route{p}", status_class)
                values = _row(rng, minute, f"/v1/route{p}", status_class)
                if minute < W:
                    batch_rows.append((BATCH_ID, *key, *values))
                else:
                    rt_rows.append((*key, *values))
    execute_concurrent_with_args(session, batch, batch_rows, concurrency=64,
                                 raise_on_first_error=True)
    execute_concurrent_with_args(session, rt, rt_rows, concurrency=64, raise_on_first_error=True)
    session.execute("INSERT INTO batch_published (view_name, day, batch_id, published_at) "
                    "VALUES ('metrics', %s, %s, %s)", (DAY1, BATCH_ID, datetime.now(UTC)))
    session.execute("INSERT INTO batch_watermark (view_name, complete_until, batch_id, "
                    "published_at) VALUES ('metrics', %s, %s, %s)",
                    (W, BATCH_ID, datetime.now(UTC)))
    session.cluster.shutdown()
    return len(batch_rows) + len(rt_rows)


class Floor:
    """What any reader must do for this series: pointer, W, and the two slices, fetched whole."""

    def __init__(self, settings):
        self.session = connect(settings, keyspace=KEYSPACE)
        s = self.session
        self.pointer = s.prepare("SELECT batch_id FROM batch_published WHERE view_name = ? "
                                 "AND day >= ? AND day <= ?")
        self.w = s.prepare("SELECT complete_until FROM batch_watermark WHERE view_name = ?")
        self.batch = s.prepare(f"SELECT {COLS.format(b='minute')} FROM batch_metrics_minute "  # noqa: S608 - table/column names are constants; values are bound
                               "WHERE service = ? AND day = ? AND batch_id = ? AND minute >= ? "
                               "AND minute < ?")
        self.rt = s.prepare(f"SELECT {COLS.format(b='minute')} FROM rt_metrics_minute "  # noqa: S608 - table/column names are constants; values are bound
                            "WHERE service = ? AND day = ? AND minute >= ? AND minute < ?")

    def __call__(self) -> int:
        s = self.session
        s.execute(self.w, ("metrics",)).one()
        (batch_id,) = [r.batch_id for r in s.execute(self.pointer, ("metrics", DAY1, DAY2))]
        f1 = s.execute_async(self.batch, (SERVICE, DAY1, batch_id, START, W))
        f2 = s.execute_async(self.rt, (SERVICE, DAY2, W, END))
        return len(list(f1.result())) + len(list(f2.result()))


def run_level(fn, concurrency: int, requests: int) -> tuple[list[float], list[str]]:
    """Each of ``concurrency`` threads runs ``requests`` calls back to back: (latencies of the
    calls that succeeded in ms, errors). An overloaded node times reads out; those are counted
    and shown, not hidden in the percentiles."""
    def worker(_):
        out, errors = [], []
        for _ in range(requests):
            t = time.perf_counter()
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")
                continue
            out.append(1000 * (time.perf_counter() - t))
        return out, errors

    with ThreadPoolExecutor(concurrency) as pool:
        parts = list(pool.map(worker, range(concurrency)))
    return [x for p, _ in parts for x in p], [e for _, es in parts for e in es]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def start_api(settings, day_cache: bool = True) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind((settings.host, 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LAE_KEYSPACE": KEYSPACE}
    if not day_cache:
        env["LAE_SERVE_DAY_CACHE"] = "0"
    proc = subprocess.Popen([sys.executable, "-m", "lae.cli", "serve", "--port", str(port)],  # noqa: S603 - our own CLI, fixed arguments
                            env=env)
    url = f"http://{settings.host}:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit("lae serve did not come up")
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5, help="per thread and level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--paths", type=int, default=4, help="paths per minute (x3 classes)")
    args = parser.parse_args()
    settings = replace(get_settings(), keyspace=KEYSPACE)
    rows = setup(settings, args.paths)
    print(f"rows: {rows} minute rows for one service-24h ({args.paths} paths x 3 classes), "
          f"W at {W:%Y-%m-%d %H:%M}Z (12 h batch + 12 h realtime)")
    servers = {"api": start_api(settings), "api-nocache": start_api(settings, day_cache=False)}
    floor = Floor(settings)
    params = {"service": SERVICE, "from": START.isoformat(), "to": END.isoformat(),
              "granularity": "minute"}

    def client_of(url: str):
        clients: dict[int, httpx.Client] = {}

        def call() -> None:
            import threading

            client = clients.setdefault(threading.get_ident(),
                                        httpx.Client(base_url=url, timeout=300))
            r = client.get("/v1/metrics", params=params)
            r.raise_for_status()
            if len(r.json()["points"]) != 24 * 60:
                raise RuntimeError(f"api returned {len(r.json()['points'])} points, not 1440")

        return call

    cases = {"floor": floor, **{name: client_of(url) for name, (_, url) in servers.items()}}

    try:
        if floor() != rows:
            raise RuntimeError("the floor did not read every row")
        for name in servers:
            warm, errors = run_level(cases[name], 1, 3)  # connection, statements, imports
            if not warm:
                raise RuntimeError(f"{name} never answered: {errors}")
            print(f"{name} warm-up at concurrency 1 (the first one cold: reads both halves): "
                  f"{', '.join(f'{x:.0f}' for x in warm)} ms")
        print(f"{'case':<8} {'conc':>4} {'ok':>5} {'errors':>6} {'p50 ms':>9} {'p99 ms':>9}  "
              "load avg (1/5/15)")
        results = {}
        for c in args.concurrency:
            for name, fn in cases.items():
                lat, errors = run_level(fn, c, args.requests)
                load = " ".join(f"{x:.1f}" for x in os.getloadavg())
                if not lat:
                    print(f"{name:<8} {c:>4} {0:>5} {len(errors):>6}  all failed: {errors[0]}")
                    continue
                results[(name, c)] = (pct(lat, 0.5), pct(lat, 0.99))
                print(f"{name:<8} {c:>4} {len(lat):>5} {len(errors):>6} "
                      f"{results[(name, c)][0]:>9.1f} {results[(name, c)][1]:>9.1f}  {load}",
                      flush=True)
                if errors:
                    print(f"         first error: {errors[0]}")
        for c in args.concurrency:
            for name in servers:
                if ("floor", c) not in results or (name, c) not in results:
                    continue
                (fp50, fp99), (ap50, ap99) = results[("floor", c)], results[(name, c)]
                print(f"concurrency {c}: {name}/floor p50 {ap50 / fp50:.2f}x, "
                      f"p99 {ap99 / fp99:.2f}x"
                      + ("  (goal p99 <= 2x)" if c == max(args.concurrency) else ""))
        print(f"cpus: {os.cpu_count()}")
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
        floor.session.cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
