"""The archive's throughput, this checkout against another revision, in alternating pairs.

    .venv/bin/python bench/bench_archive_ab.py --baseline HEAD~1            # 1M events, 4 pairs
    .venv/bin/python bench/bench_archive_ab.py --baseline 87e68f5 --pairs 6 --topic T

``bench_archive.py`` gives one run's figure, and on a 2-core machine with the broker, the S3
endpoint and Cassandra on it one run differs from the next by ±10%: too much to see a change of
a few percent. Here both versions archive the same topic (generated once, or ``--topic``), each
run with a fresh consumer group, the two alternating so that a drift of the machine hits both.
The baseline is a ``git worktree`` of ``--baseline`` imported through ``PYTHONPATH``; everything
else (the virtualenv, the running stack) is shared. Kafka's Java ``ConsumerPerformance`` reads
the topic right before each archive run, as in ``bench_archive.py``.

Printed per run: records/s, wall seconds, the machine's busy CPU-seconds over the run (all
cores, from /proc/stat: it includes the broker and the S3 endpoint, and the forkserver's workers,
which are not children of the run), the Java figure and the ratio; then medians per version and
in how many pairs this checkout was faster. Needs ``lae stack up kafka s3 cassandra``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bench_archive import java_consumer

from lae.config import get_settings
from lae.generate import generate
from lae.kafka import TopicSpec, ensure_topics

ROOT = Path(__file__).resolve().parents[1]

# One archive run in a fresh interpreter (the version comes from PYTHONPATH); prints JSON.
RUN = """
import json, sys, time, uuid
import lae
from lae.archive.run import RunOptions, run_archive
from lae.config import get_settings

if __name__ == "__main__":  # the forkserver's workers import this module again
    topic, workers = sys.argv[1], int(sys.argv[2])
    opts = RunOptions(run_id=f"ab-{uuid.uuid4().hex[:8]}", topic=topic,
                      group_id=f"ab-{uuid.uuid4().hex[:8]}", max_range=10**9, workers=workers)
    started = time.perf_counter()
    manifest = run_archive(get_settings(), opts)
    seconds = time.perf_counter() - started
    totals = manifest["totals"]
    print(json.dumps({"lae": lae.__file__, "seconds": seconds,
                      "records": totals["valid"] + totals["quarantined"]}))
"""


def busy_cpu_seconds() -> float:
    """All cores' non-idle time so far (user, nice, system, irq, softirq)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / os.sysconf("SC_CLK_TCK")


@contextmanager
def baseline_include(revision: str, folder: Path) -> Iterator[Path]:
    """``include/`` of a detached ``git worktree`` of ``revision`` under ``folder``, for
    PYTHONPATH; the worktree is removed afterwards, whatever happened."""
    tree = folder / "baseline"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree),  # noqa: S603, S607 - fixed argv
                    revision], check=True)
    try:
        yield tree / "include"
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],  # noqa: S603, S607 - fixed argv
                       check=False)


def alternating_runs(revision: str, script_text: str,
                     pairs: int) -> Iterator[tuple[int, str, Path, Path]]:
    """(pair number, "baseline" or "this", that version's include/, the run script), the two
    versions alternating (baseline first in odd pairs) so a drift of the machine hits both;
    the baseline worktree and the script are removed when the loop ends, whatever happened."""
    with tempfile.TemporaryDirectory(prefix="lae-ab-") as tmp, \
            baseline_include(revision, Path(tmp)) as baseline:
        script = Path(tmp) / "run_once.py"
        script.write_text(script_text)
        versions = {"baseline": baseline, "this": ROOT / "include"}
        for pair in range(pairs):
            for name in (["baseline", "this"] if pair % 2 == 0 else ["this", "baseline"]):
                yield pair + 1, name, versions[name], script


def archive_once(include: Path, topic: str, workers: int, script: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(include))
    before = busy_cpu_seconds()
    done = subprocess.run([sys.executable, str(script), topic, str(workers)], env=env,  # noqa: S603 - fixed argv
                          capture_output=True, text=True, timeout=1800, check=False)
    busy = busy_cpu_seconds() - before
    if done.returncode != 0:
        raise RuntimeError(f"archive run failed ({include}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["lae"].startswith(str(include)):
        raise RuntimeError(f"imported {result['lae']}, not the code under {include}")
    return {**result, "busy": busy, "rps": result["records"] / result["seconds"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", required=True, help="git revision to compare against")
    p.add_argument("--pairs", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--count", type=int, default=1_000_000)
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--topic", help="archive this existing topic instead of generating one")
    args = p.parse_args()
    settings = get_settings()
    topic, count = args.topic, args.count
    if topic is None:
        topic = f"lae.bench.archive.{uuid.uuid4().hex[:8]}"
        ensure_topics(settings, specs=[TopicSpec(topic, args.partitions, 1, {})])
        print(f"generating {count:,} events into {topic} ...", flush=True)
        generate(seed=3, count=count, topic=topic, settings=settings, stream=None,
                 history=(datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC)))
    runs: dict[str, list[dict]] = {"baseline": [], "this": []}
    for pair, name, include, script in alternating_runs(args.baseline, RUN, args.pairs):
        _, java_rps, _ = java_consumer(settings, topic, count)
        r = archive_once(include, topic, args.workers, script)
        r["ratio"] = r["rps"] / java_rps
        runs[name].append(r)
        print(f"pair {pair} {name:<8} {r['rps']:>9,.0f} records/s "
              f"{r['seconds']:6.2f}s busy {r['busy']:5.1f} cpu-s | java "
              f"{java_rps:,.0f} records/s, ratio {r['ratio']:.1%}", flush=True)
    print(f"\n{topic}, {args.workers} worker process(es), baseline {args.baseline}:")
    for name, rs in runs.items():
        print(f"  {name:<8} median {statistics.median(r['rps'] for r in rs):>9,.0f} records/s, "
              f"{statistics.median(r['seconds'] for r in rs):.2f}s, busy "
              f"{statistics.median(r['busy'] for r in rs):.1f} cpu-s, ratio "
              f"{statistics.median(r['ratio'] for r in rs):.1%}")
    faster = sum(t["rps"] > b["rps"] for t, b in zip(runs["this"], runs["baseline"], strict=True))
    print(f"  this checkout faster in {faster} of {args.pairs} pairs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
