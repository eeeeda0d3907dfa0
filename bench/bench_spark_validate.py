"""Per-row cost of lae.schema.spark_validate, full path vs fast path, on one static DataFrame.

Run: .venv/bin/python bench/bench_spark_validate.py [--rows 50000] [--reps 5] [--master local[1]]
     .venv/bin/python bench/bench_spark_validate.py --compare-huge-methods

``--compare-huge-methods`` runs the whole measurement twice, in two JVMs one after the other:
without and with ``-XX:-DontCompileHugeMethods`` (``lae.stream.job.HUGE_METHODS_JIT``, which
the streaming job sets): the validation's projections fuse into one generated method too large
for HotSpot's default JIT limit.

The messages come from lae.generator with its default mix (late, duplicate and malformed
shares), so the fast path's share is the real traffic's. The frame is cached in the JVM first,
then each variant is forced with the ``noop`` sink, alternating variants in each repetition so
that load from other processes hits both alike. Prints medians per row of wall time and of
the JVM's CPU time (psutil, all its threads: less inflated by other load than wall time, but it
includes the JIT and GC), and the load average during the runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def _messages(rows: int) -> list[bytes]:
    import numpy as np

    from lae.generator.model import TrafficModel

    base = 1_764_000_000_000 + np.arange(rows, dtype=np.int64) * 10
    return TrafficModel(11).draw(base).payloads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--master", default="local[1]")
    parser.add_argument("--java-options", default="", help="JVM options of the driver")
    parser.add_argument("--compare-huge-methods", action="store_true",
                        help="run twice: without and with -XX:-DontCompileHugeMethods")
    args = parser.parse_args()
    if args.compare_huge_methods:
        from lae.stream.job import HUGE_METHODS_JIT

        for options in ("", HUGE_METHODS_JIT):
            print(f"== JVM options: {options or '(default)'}", flush=True)
            subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--reps",  # noqa: S603 - this script again, with its own parsed arguments
                            str(args.reps), "--master", args.master, f"--java-options={options}"],
                           check=True)
        return

    import pyspark.sql.functions as F

    from lae.schema.spark import spark_validate
    from lae.spark import build_session

    conf = {"spark.ui.showConsoleProgress": "false"}
    if args.java_options:
        conf["spark.driver.extraJavaOptions"] = args.java_options
    spark = build_session("bench-spark-validate", master=args.master, conf=conf)
    spark.sparkContext.setLogLevel("WARN")
    msgs = _messages(args.rows)
    df = spark.createDataFrame([(m,) for m in msgs], "value binary").repartition(1).cache()
    df.count()

    fast_rows = spark_validate(df).where(F.col("reason").isNull()).count()
    from lae.schema.spark_fast import with_fast_path

    proven = (with_fast_path(df.withColumn("s", F.col("value").cast("string")), "s", "ok", "f_")
              .where("ok").count())
    print(f"{args.rows} messages, {fast_rows} valid, {proven} taken by the fast path, "
          f"master {args.master}")

    variants = {
        "full path (fast_path=False)": lambda: spark_validate(df, fast_path=False),
        "with fast path": lambda: spark_validate(df),
        "cast only (reference)": lambda: df.select(F.col("value").cast("string").alias("s")),
    }
    import psutil

    jvm = next(c for c in psutil.Process().children(recursive=True) if "java" in c.name())

    def jvm_cpu() -> float:
        t = jvm.cpu_times()
        return t.user + t.system

    times: dict[str, list[float]] = {k: [] for k in variants}
    cpus: dict[str, list[float]] = {k: [] for k in variants}
    loads: list[float] = []
    for build in variants.values():  # warm-up: codegen and JIT
        build().write.format("noop").mode("overwrite").save()
    for _ in range(args.reps):
        for name, build in variants.items():
            frame = build()
            start, cpu = time.perf_counter(), jvm_cpu()
            frame.write.format("noop").mode("overwrite").save()
            times[name].append(time.perf_counter() - start)
            cpus[name].append(jvm_cpu() - cpu)
            loads.append(os.getloadavg()[0])
    for name, ts in times.items():
        per_row = statistics.median(ts) / args.rows * 1e6
        cpu_row = statistics.median(cpus[name]) / args.rows * 1e6
        print(f"{name}: wall median {per_row:.1f} µs/row (min {min(ts) / args.rows * 1e6:.1f}, "
              f"max {max(ts) / args.rows * 1e6:.1f}), JVM CPU median {cpu_row:.1f} µs/row, "
              f"{args.reps} runs")
    print(f"load average (1 min) during the runs: {min(loads):.2f}–{max(loads):.2f}")
    spark.stop()


if __name__ == "__main__":
    main()
