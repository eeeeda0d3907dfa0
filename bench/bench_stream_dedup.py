"""The speed layer's de-duplication state at steady state: ``on_time_events`` vs its baseline.

    .venv/bin/python bench/bench_stream_dedup.py [--rate 5000] [--minutes 25] [--batch-s 10]

Spark evicts a de-duplication state by scanning all of it on every micro-batch, so what a
micro-batch pays for it grows with the state, and the state only stops growing once the
watermark evicts as fast as events arrive. bench_freshness measures 10 minutes of real time,
less than it takes ``dropDuplicatesWithinWatermark`` (the baseline: an id stays until the
watermark passes its ``ts`` plus the delay) to reach that point with the default 10-minute
watermark. Here event time is simulated: ``--rate`` events per second of event time (1% of them
re-sent copies), ``--batch-s`` seconds of it per micro-batch, ``--minutes`` of it in all, read
as a file stream (one file per micro-batch) as fast as Spark goes. Both variants run in the same
run on the same files, each through the job's session settings (RocksDB, changelog
checkpointing, 2 state partitions as in bench_freshness) on ``local[2]``:

- ``baseline``: ``withWatermark("ts") + dropDuplicatesWithinWatermark("event_id")`` (the speed
  layer until 2026-11-27);
- ``on_time_events``: ``lae.stream.transforms.on_time_events`` as shipped.

Prints, per variant and per 5 minutes of event time: the state's rows at the end, and the
medians of the state's removal (the scan), update and commit times per micro-batch; then the
output rows of both (they must be equal) and wall time. Needs no service.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

START_S = 1_795_000_000  # 2026-11-18: any fixed event-time origin


def write_batches(root: Path, rate: int, minutes: float, batch_s: int, seed: int) -> int:
    """One Parquet file per micro-batch: event_id, ts (UTC), reason (null: all valid)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    n_batches = int(minutes * 60 // batch_s)
    per_batch = rate * batch_s
    recent: list[tuple[str, int]] = []
    for b in range(n_batches):
        base_us = (START_S + b * batch_s) * 1_000_000
        ts = base_us + np.sort(rng.integers(0, batch_s * 1_000_000, per_batch))
        ids = [str(uuid.UUID(int=int(x), version=4))
               for x in rng.integers(0, 2**63, per_batch, dtype=np.int64)]
        # 1% copies of recent events (a producer's retry: same id, same ts), arriving later.
        pick = rng.integers(0, per_batch, per_batch // 100)
        copies = recent[: len(pick)]
        recent = [(ids[i], int(ts[i])) for i in pick]
        all_ids = ids + [c[0] for c in copies]
        all_ts = np.concatenate([ts, np.array([c[1] for c in copies], dtype=np.int64)])
        table = pa.table({
            "event_id": pa.array(all_ids, pa.string()),
            "ts": pa.array(all_ts, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "reason": pa.nulls(len(all_ids), pa.string()),
        })
        pq.write_table(table, root / f"{b:05d}.parquet")
    return n_batches


def run_variant(spark, name: str, files: Path, work: Path, rate: int) -> dict:
    import pyspark.sql.functions as F
    from pyspark.sql import types as T

    from lae.stream.transforms import on_time_events

    schema = T.StructType([T.StructField("event_id", T.StringType()),
                           T.StructField("ts", T.TimestampType()),
                           T.StructField("reason", T.StringType())])
    events = (spark.readStream.schema(schema).option("maxFilesPerTrigger", 1)
              .parquet(str(files)))
    if name == "baseline":
        out = (events.where(F.col("reason").isNull()).withWatermark("ts", "10 minutes")
               .dropDuplicatesWithinWatermark(["event_id"]))
    else:
        out = on_time_events(events, "10 minutes")
    emitted: list[int] = []
    started = time.monotonic()
    query = (out.writeStream.queryName(name)
             .foreachBatch(lambda df, _: emitted.append(df.count()))
             .option("checkpointLocation", str(work / f"ckpt-{name}"))
             .trigger(availableNow=True).start())
    query.awaitTermination()
    wall = time.monotonic() - started
    reports = [p for p in query.recentProgress if p.numInputRows]
    # Window of event time by the events read so far (a micro-batch may take several files).
    per_window: dict[int, list] = {}
    read = 0
    for p in reports:
        read += p.numInputRows
        (op,) = [o for o in p.stateOperators if o.operatorName.startswith("dedupe")]
        per_window.setdefault(int(read / 1.01 / rate // 300), []).append(op)
    return {"name": name, "wall_s": wall, "out_rows": sum(emitted), "batches": len(reports),
            "windows": per_window}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=5000, help="events per second of event time")
    parser.add_argument("--minutes", type=float, default=25, help="minutes of event time")
    parser.add_argument("--batch-s", type=int, default=10, help="event-time seconds per batch")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args(argv)

    from lae.config import Settings
    from lae.spark import build_session
    from lae.stream.job import session_conf

    work = Path(tempfile.mkdtemp(prefix="lae-bench-dedup-"))
    try:
        t = time.monotonic()
        n = write_batches(work / "in", args.rate, args.minutes, args.batch_s, seed=7)
        print(f"{n} micro-batches of {args.rate * args.batch_s:,} events (+1% copies) written "
              f"in {time.monotonic() - t:.0f}s", flush=True)
        conf = session_conf(Settings.from_env()) | {
            "spark.sql.shuffle.partitions": "2", "spark.ui.showConsoleProgress": "false",
            # Keep every progress report (100 by default): the windows need all of them.
            "spark.sql.streaming.numRecentProgressUpdates": "100000"}
        spark = build_session("bench-stream-dedup", master=args.master, conf=conf)
        results = [run_variant(spark, name, work / "in", work, args.rate)
                   for name in ("baseline", "on_time_events")]
        spark.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nrate={args.rate}/s of event time, {args.batch_s}s per micro-batch, watermark 10 "
          f"minutes, master={args.master}, 2 state partitions")
    print(f"{'variant':>15} {'minutes':>8} {'state rows':>11} {'removal ms':>10} "
          f"{'update ms':>9} {'commit ms':>9}")
    for r in results:
        for w, ops in sorted(r["windows"].items()):
            def med(attr, ops=ops):
                return statistics.median(getattr(o, attr) for o in ops)
            print(f"{r['name']:>15} {w * 5:>3}-{w * 5 + 5:<4} {ops[-1].numRowsTotal:>11,} "
                  f"{med('allRemovalsTimeMs'):>10.0f} {med('allUpdatesTimeMs'):>9.0f} "
                  f"{med('commitTimeMs'):>9.0f}")
    for r in results:
        print(f"{r['name']:>15}: {r['batches']} micro-batches, {r['out_rows']:,} rows out, "
              f"{r['wall_s']:.0f}s wall")
    if results[0]["out_rows"] != results[1]["out_rows"]:
        print("OUTPUT DIFFERS")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
