"""Archive throughput (Kafka -> validate -> Parquet -> S3, offsets committed) next to Kafka's
Java ``ConsumerPerformance`` reading the same topic in the same run.

    .venv/bin/python bench/bench_archive.py                    # 1M events, 6 partitions
    .venv/bin/python bench/bench_archive.py --count 200000 --profile

The topic is fresh (``lae.bench.archive.<random>``) and filled by ``lae generate`` with the
default mix (late, duplicate, malformed). Both readers start from the beginning of the topic
with their own consumer group. The archive figure is end to end: plan, consume, validate,
cut and encode Parquet (zstd), upload, write pending results, commit, manifest. Needs Kafka,
S3 and Cassandra (lease) running (``lae stack up``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import subprocess
import time
import uuid
from datetime import UTC, datetime

from lae.archive.archiver import Timings
from lae.archive.run import RunOptions, run_archive
from lae.config import get_settings
from lae.generate import generate
from lae.kafka import TopicSpec, ensure_topics


def java_consumer(settings, topic: str, count: int) -> tuple[float, float, float]:
    """(seconds, records/s, MB/s) as ConsumerPerformance reports them (fetch time only)."""
    argv = ["java", "-Xmx512m", "-cp", f"{settings.jars_dir / 'kafka'}/*",
            "org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server",
            settings.kafka_bootstrap, "--topic", topic, "--messages", str(count),
            "--group", f"bench-java-{uuid.uuid4().hex[:8]}", "--timeout", "60000",
            "--hide-header"]
    started = time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True, check=True,  # noqa: S603 - fixed argv
                         timeout=600).stdout
    wall = time.monotonic() - started
    # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...
    line = [ln for ln in out.splitlines() if re.match(r"^\d{4}-", ln)][-1]
    cols = [c.strip() for c in line.split(",")]
    return wall, float(cols[5]), float(cols[3])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=1_000_000)
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--workers", type=int, default=1,
                   help="partitions archived in parallel processes (the DAG's mapped tasks)")
    p.add_argument("--profile", action="store_true",
                   help="cProfile the archive run (in-process part only; use --workers 1)")
    args = p.parse_args()
    settings = get_settings()
    topic = f"lae.bench.archive.{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, specs=[TopicSpec(topic, args.partitions, 1, {})])
    print(f"generating {args.count:,} events into {topic} ...", flush=True)
    summary = generate(seed=args.seed, count=args.count, topic=topic, settings=settings,
                       history=(datetime(2026, 11, 25, tzinfo=UTC),
                                datetime(2026, 11, 26, tzinfo=UTC)), stream=None)
    print(f"  {summary.line()}")

    print(f"load average (1 min) before the runs: {os.getloadavg()[0]:.1f}")
    j_wall, j_rps, j_mbps = java_consumer(settings, topic, args.count)
    print(f"java ConsumerPerformance: {j_rps:,.0f} records/s {j_mbps:.1f} MB/s "
          f"(process wall time incl. JVM start {j_wall:.1f}s)", flush=True)

    opts = RunOptions(run_id=f"bench-{topic}", topic=topic,
                      group_id=f"bench-archive-{uuid.uuid4().hex[:8]}", max_range=args.count,
                      workers=args.workers)
    timings = Timings()
    profiler = cProfile.Profile() if args.profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    manifest = run_archive(settings, opts, timings)
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - started
    totals = manifest["totals"]
    n = totals["valid"] + totals["quarantined"]
    raw_mb = summary.payload_bytes / 1e6
    rps = n / seconds
    print(f"archive end to end      : {rps:,.0f} records/s {raw_mb / seconds:.1f} MB/s of "
          f"message payload ({n:,} records, {seconds:.1f}s; {totals['files']} master + "
          f"{totals['quarantine_files']} quarantine files, {totals['bytes'] / 1e6:.1f} MB "
          "of Parquet)")
    print(f"archive / java records/s: {rps / j_rps:.0%} (goal >= 30%; {args.workers} worker "
          f"process(es) on {os.cpu_count()} cores)")
    other = seconds - timings.read_validate - timings.encode - timings.upload - timings.commit
    print("where the archive's time goes:")
    for name, value in (("consume + validate", timings.read_validate),
                        ("cut + Parquet encode", timings.encode), ("upload", timings.upload),
                        ("pending result + commit", timings.commit),
                        ("plan, lease, manifest, other", other)):
        print(f"  {name:<30}{value:7.1f}s {value / seconds:6.0%}")
    if timings.extra:
        fast, slow = timings.extra.get("fast_rows", 0), timings.extra.get("slow_rows", 0)
        print(f"  validation: {fast:,} messages on the vectorised fast path, {slow:,} through "
              "validate() one by one")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f}")
    if profiler:
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(25)
        print(buf.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
