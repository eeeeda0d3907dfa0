"""The start of a local Spark application: the jars on the classpath in place (what
``lae.spark`` does for a ``local[…]`` master) against ``spark.jars`` (what it did before, and
still does for a cluster), in alternating pairs in one run.

Each application is a real ``spark-submit --master local[2]`` of a tiny job that touches the
S3A and Kafka classes and runs one task (the executor fetches ``spark.jars`` before its first
task). Printed per variant: wall seconds, CPU seconds of the whole process tree, and the bytes
the application wrote to its temp folder (``spark.local.dir``, a fresh one per run).

    .venv/bin/python bench/bench_spark_start.py [--pairs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lae.config import get_settings
from lae.spark import spark_conf

JOB = """
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
jvm = spark._jvm
for name in ("org.apache.hadoop.fs.s3a.S3AFileSystem",
             "org.apache.spark.sql.kafka010.KafkaSourceProvider"):
    jvm.java.lang.Class.forName(name, True, jvm.Thread.currentThread().getContextClassLoader())
assert spark.range(1000).count() == 1000
spark.stop()
"""


def folder_bytes(folder: Path) -> int:
    total = 0
    for f in folder.rglob("*"):
        try:
            total += f.stat().st_size if f.is_file() else 0
        except FileNotFoundError:  # removed by Spark between the listing and the stat
            pass
    return total


def run_once(master_for_conf: str, job: Path) -> tuple[float, float, int]:
    settings = get_settings()
    conf = spark_conf(settings, master_for_conf)
    with tempfile.TemporaryDirectory(prefix="lae-bench-start-") as local_dir:
        conf["spark.local.dir"] = local_dir
        conf["spark.ui.enabled"] = "false"
        argv = ["spark-submit", "--master", "local[2]"]
        for key, value in conf.items():
            argv += ["--conf", f"{key}={value}"]
        argv.append(str(job))
        env = {**os.environ, "PYSPARK_PYTHON": sys.executable,
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        # Spark removes its temp folders at a normal exit; the watcher records the peak.
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,  # noqa: S603 - fixed argv
                                stderr=subprocess.PIPE, text=True)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, folder_bytes(Path(local_dir)))
            time.sleep(0.5)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"spark-submit failed:\n{proc.stderr.read()[-3000:]}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return wall, cpu, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    variants = {"in place (local master)": "local[2]",
                "spark.jars (before)": "spark://not-used:7077"}
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "job.py"
        job.write_text(JOB)
        run_once("local[2]", job)  # warm the page cache for both: the same jar files
        for pair in range(args.pairs):
            order = list(variants.items())
            if pair % 2:
                order.reverse()
            for name, master in order:
                wall, cpu, peak = run_once(master, job)
                results[name].append((wall, cpu, peak))
                print(f"pair {pair + 1}  {name:26s} wall {wall:6.2f} s  cpu {cpu:6.2f} s  "
                      f"temp peak {peak / 2**20:7.1f} MiB", flush=True)
    print("\nmedians")
    for name, runs in results.items():
        print(f"  {name:26s} wall {statistics.median(r[0] for r in runs):6.2f} s  "
              f"cpu {statistics.median(r[1] for r in runs):6.2f} s  "
              f"temp peak {statistics.median(r[2] for r in runs) / 2**20:7.1f} MiB")


if __name__ == "__main__":
    main()
