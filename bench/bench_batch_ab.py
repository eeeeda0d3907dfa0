"""The batch job's compute, this checkout against another revision, in alternating processes.

    .venv/bin/python bench/bench_batch_ab.py --baseline HEAD            # 10M events, 2 pairs
    .venv/bin/python bench/bench_batch_ab.py --baseline 721642e --events 1000000 --pairs 3

``bench_batch.py`` gives one run's figures, and on a 2-core machine one 10M-event run differs
from the next by 10-20%: more than most changes to the job. Here one master day (written once
by ``bench_batch.write_master``, or reused with ``--reuse``) is computed by both versions, each
in its own Python process and JVM (properties read at JVM start, such as shuffle compression,
count too), the two alternating so that a drift of the machine hits both. A process computes
the day ``--reps`` times: the first rep pays the JVM's warm-up (JIT, class loading), as the
``batch_recompute`` DAG's spark-submit of one day does; the later ones are what a long-lived
session sees. Printed per process: each rep's seconds and the machine's busy CPU-seconds
(all cores, /proc/stat); then medians of cold and of warm reps, and per pair which was faster.

The compute is the job's own (``lae.batch.job``): ``read_day`` + ``day_views`` under the job's
SQL properties and session properties, cached and counted per service, as ``recompute`` times
its ``compute`` step; nothing is written to Cassandra. The baseline is a ``git worktree`` of
``--baseline`` imported through ``PYTHONPATH``; the virtualenv and the S3 endpoint are shared.
Both versions must produce the same per-service totals. Needs ``lae stack up s3``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from bench_archive_ab import alternating_runs, busy_cpu_seconds

from lae.config import get_settings

# One process computing the day ``reps`` times with the code on PYTHONPATH; prints JSON.
RUN = """
import json, sys, time
from dataclasses import replace
import lae
from lae.batch.compute import BATCH_SQL_CONF, day_views, read_day, sql_conf
from lae.batch.job import _totals, session_conf
from lae.config import get_settings
from lae.spark import build_session

bucket, day, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
from datetime import date
settings = replace(get_settings(), bucket=bucket)
spark = build_session("lae-bench-batch-ab", settings=settings, conf=session_conf(settings))
seconds, totals = [], None
with sql_conf(spark, BATCH_SQL_CONF):
    for _ in range(reps):
        started = time.perf_counter()
        minute, hour = day_views(read_day(spark, bucket, date.fromisoformat(day)),
                                 date.fromisoformat(day))
        minute, hour = minute.cache(), hour.cache()
        totals = {"minute": _totals(minute), "hour": _totals(hour)}
        seconds.append(time.perf_counter() - started)
        minute.unpersist(blocking=True)
        hour.unpersist(blocking=True)
conf = {k: spark.conf.get(k, None) for k in ("spark.shuffle.compress", "spark.driver.memory")}
spark.stop()
print(json.dumps({"lae": lae.__file__, "seconds": seconds, "totals": totals, "conf": conf}))
"""


def compute_once(include: Path, script: Path, bucket: str, day: str, reps: int) -> dict:
    # LAE_HOME: the baseline's worktree has no jars or stack state of its own; both use ours.
    env = dict(os.environ, PYTHONPATH=str(include),
               LAE_HOME=os.environ.get("LAE_HOME", str(get_settings().home)))
    before = busy_cpu_seconds()
    done = subprocess.run([sys.executable, str(script), bucket, day, str(reps)], env=env,  # noqa: S603 - fixed argv
                          capture_output=True, text=True, timeout=3600, check=False)
    busy = busy_cpu_seconds() - before
    if done.returncode != 0:
        raise RuntimeError(f"compute failed ({include}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["lae"].startswith(str(include)):
        raise RuntimeError(f"imported {result['lae']}, not the code under {include}")
    return {**result, "busy": busy}


def master_day(settings, events: int, reuse: bool) -> None:
    """The bench day in ``settings.bucket``: written now, or already there with ``reuse``."""
    from bench_batch import DAY, write_master

    from lae.s3 import s3_client

    client = s3_client(settings)
    try:
        client.create_bucket(Bucket=settings.bucket)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    if reuse and client.list_objects_v2(Bucket=settings.bucket, MaxKeys=1).get("KeyCount"):
        print(f"reusing the day in s3://{settings.bucket}", flush=True)
        return
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=settings.bucket, Key=obj["Key"])
    with tempfile.TemporaryDirectory(prefix="lae-bench-batch-ab-") as tmp:
        size = write_master(settings, client, events, Path(tmp))
    print(f"{events:,} events of {DAY} written to s3://{settings.bucket} "
          f"({size / 1e6:.1f} MB of Parquet)", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", required=True, help="git revision to compare against")
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--pairs", type=int, default=2)
    p.add_argument("--reps", type=int, default=2, help="computes per process (first is cold)")
    p.add_argument("--bucket", default="lae-bench-batch-ab")
    p.add_argument("--reuse", action="store_true",
                   help="keep the day already in --bucket instead of writing a new one")
    args = p.parse_args()
    from bench_batch import DAY

    settings = replace(get_settings(), bucket=args.bucket)
    print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)", flush=True)
    master_day(settings, args.events, args.reuse)
    runs: dict[str, list[dict]] = {"baseline": [], "this": []}
    for pair, name, include, script in alternating_runs(args.baseline, RUN, args.pairs):
        r = compute_once(include, script, args.bucket, DAY.isoformat(), args.reps)
        runs[name].append(r)
        reps = " ".join(f"{s:6.1f}" for s in r["seconds"])
        print(f"pair {pair} {name:<8} reps {reps} s | busy {r['busy']:6.1f} cpu-s | {r['conf']}",
              flush=True)
    print(f"\n{args.events:,} events, {args.reps} reps per process, baseline {args.baseline}:")
    for name, rs in runs.items():
        cold = [r["seconds"][0] for r in rs]
        warm = [s for r in rs for s in r["seconds"][1:]]
        print(f"  {name:<8} cold median {statistics.median(cold):6.1f} s"
              + (f", warm median {statistics.median(warm):6.1f} s (of {len(warm)})" if warm
                 else ""))
    same = all(r["totals"] == runs["baseline"][0]["totals"] for rs in runs.values() for r in rs)
    print(f"  same per-service totals in every run: {same}")
    pairs = list(zip(runs["this"], runs["baseline"], strict=True))
    # The cold rep is what the DAG's nightly spark-submit of one day pays.
    cold_faster = sum(t["seconds"][0] < b["seconds"][0] for t, b in pairs)
    busy_less = sum(t["busy"] < b["busy"] for t, b in pairs)
    print(f"  this checkout: cold rep faster in {cold_faster} of {args.pairs} pairs, "
          f"less machine CPU per process in {busy_less} of {args.pairs}")
    if args.reps > 1:
        warm_faster = sum(min(t["seconds"][1:]) < min(b["seconds"][1:]) for t, b in pairs)
        print(f"  this checkout's best warm rep faster in {warm_faster} of {args.pairs} pairs")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
