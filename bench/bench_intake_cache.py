"""The speed layer's intake micro-batch on a static frame: what its cache costs.

    .venv/bin/python bench/bench_intake_cache.py [--rows 50000] [--reps 5]

The intake query (``lae.stream.sinks.intake_sink``) caches each micro-batch so that one read of
Kafka feeds both of its outputs (rejected records to the DLQ, late events counted). Three
variants run on the same cached, Kafka-shaped frame of generated messages (default traffic mix:
late, duplicate and malformed shares included), ``local[2]`` with the job's JVM options,
alternating in each repetition:

- ``whole batch cached``: the baseline, every parsed field and raw message cached;
- ``intake_columns cached``: what the sink caches, ``lae.stream.transforms.intake_columns``;
- ``parse only``: the validation forced with the ``noop`` sink, nothing cached, nothing
  written: the floor of any intake that validates every record.

Both intake variants write the DLQ records to the ``noop`` sink and collect the late counts;
their late counts must be equal. Prints medians of wall seconds and of the JVM's CPU seconds
(psutil, all its threads) per variant, and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()

    import numpy as np
    import psutil

    from lae.generator.model import TrafficModel
    from lae.spark import build_session
    from lae.stream.job import HUGE_METHODS_JIT
    from lae.stream.transforms import dlq_records, intake_columns, late_counts, parse

    spark = build_session("bench-intake-cache", master="local[2]",
                          conf={"spark.ui.showConsoleProgress": "false",
                                "spark.driver.extraJavaOptions": HUGE_METHODS_JIT})
    spark.sparkContext.setLogLevel("WARN")
    first_ms = 1_764_000_000_000
    payloads = TrafficModel(11).draw(first_ms + np.arange(args.rows, dtype=np.int64) * 10).payloads
    now = datetime.now(UTC)
    records = spark.createDataFrame(
        [(b"k", value, "logs.raw", i % 6, i, now) for i, value in enumerate(payloads)],
        "key binary, value binary, topic string, partition int, offset long, "
        "timestamp timestamp").repartition(2).cache()
    records.count()
    # Half of the generated time span is behind this watermark: late counts are not empty.
    cut = datetime.fromtimestamp((first_ms + args.rows * 5) / 1000, UTC)

    def intake(narrow: bool):
        parsed = parse(records)
        cached = (intake_columns(parsed) if narrow else parsed).persist()
        try:
            dlq_records(cached).write.format("noop").mode("overwrite").save()
            return sorted(tuple(r) for r in late_counts(cached, cut).collect())
        finally:
            cached.unpersist()

    variants = {
        "whole batch cached (baseline)": lambda: intake(narrow=False),
        "intake_columns cached": lambda: intake(narrow=True),
        "parse only (floor)": lambda: parse(records).write.format("noop").mode("overwrite")
        .save(),
    }
    first = {name: run() for name, run in variants.items()}  # warm-up: codegen and JIT
    baseline, narrow = list(first.values())[:2]
    if baseline != narrow or not baseline:
        raise SystemExit(f"late counts differ or are empty: {baseline} vs {narrow}")

    jvm = next(c for c in psutil.Process().children(recursive=True) if "java" in c.name())

    def jvm_cpu() -> float:
        t = jvm.cpu_times()
        return t.user + t.system

    walls: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, list[float]] = {name: [] for name in variants}
    loads = []
    for _ in range(args.reps):
        for name, run in variants.items():
            started, cpu = time.perf_counter(), jvm_cpu()
            run()
            walls[name].append(time.perf_counter() - started)
            cpus[name].append(jvm_cpu() - cpu)
            loads.append(os.getloadavg()[0])
    print(f"{args.rows} messages, {args.reps} reps, late counts equal "
          f"({sum(n for *_, n in baseline)} late events)")
    for name in variants:
        print(f"{name:32} wall median {statistics.median(walls[name]):5.2f} s   "
              f"JVM CPU median {statistics.median(cpus[name]):5.2f} s")
    print(f"load average (1 min) during the runs: {min(loads):.2f}-{max(loads):.2f}")
    spark.stop()


if __name__ == "__main__":
    main()
