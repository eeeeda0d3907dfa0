"""Archiving one planned partition range, and a whole run without Airflow.

Order of effects for one partition (each step is a crash point in the tests):

1. take the partition's lease; re-read the stored plan under it (the source of truth);
2. read ``[start, end)``, validate, cut files (``lae.archive.writer``);
3. upload every file (``before_upload`` … ``mid_multipart`` … ``after_upload``);
4. put the pending result (files, counts, dates) for the manifest;
5. renew the lease (fails if it was lost), commit ``end`` for the group (``after_commit``);
6. release the lease.

A crash anywhere before 5 leaves the committed offset at ``start`` with the plan stored in
its metadata, so the re-run re-reads the same range and overwrites the same keys with the same
bytes: each event of the range ends up in the master dataset exactly once.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from lae.archive.crash import crash_point
from lae.archive.manifest import put_pending
from lae.archive.plan import PartitionPlan, load_plan
from lae.archive.reader import prefetched, read_range
from lae.archive.upload import UploadConfig, put
from lae.archive.writer import Split, cut_files

log = logging.getLogger(__name__)

# Concurrent S3 puts per partition: enough to hide one request's latency behind encoding.
UPLOAD_THREADS = 4


@dataclass
class Timings:
    """Seconds spent per stage, for the benchmark's breakdown."""

    read_validate: float = 0.0
    encode: float = 0.0
    upload: float = 0.0
    commit: float = 0.0
    extra: dict = field(default_factory=dict)


def archive_partition(consumer, s3, bucket: str, topic: str, partition: int, lease,
                      upload: UploadConfig | None = None, run_id: str = "adhoc",
                      timings: Timings | None = None, reader=None) -> dict:
    """Archive the stored plan of one partition; returns its result document.

    ``reader(plan)`` yields the range's records as ``Columns`` batches (default: ``read_range`` on
    ``consumer``). ``{"skipped": reason}`` results mean there was nothing to do (no plan
    stored, or the plan was already committed by an earlier run).
    """
    from kafka import OffsetAndMetadata, TopicPartition

    upload = upload or UploadConfig()
    t = timings or Timings()
    lease.acquire()
    try:
        plan = load_plan(consumer, topic, partition)
        if plan is None or plan.empty:
            return {"topic": topic, "partition": partition, "skipped": "nothing planned"}
        t0 = time.perf_counter()
        split = Split()
        read = 0
        for batch in prefetched((reader or partial(read_range, consumer))(plan)):
            split.add_columns(batch)
            read += len(batch.offsets)
        lease.keep_alive()  # reading a big range can take a while
        t1 = time.perf_counter()
        t.read_validate += t1 - t0
        for name in ("fast_rows", "slow_rows"):
            t.extra[name] = t.extra.get(name, 0) + getattr(split, name)
        result = _empty_result(plan, run_id)
        result["raw_bytes"] = split.raw_bytes
        # Uploads run on a few threads while the next file is encoded (both release the GIL);
        # results are recorded in file order, so the result document does not depend on which
        # upload finished first. Bounded, so a slow store cannot pile up encoded files.
        in_flight: deque = deque()
        first = True
        with ThreadPoolExecutor(UPLOAD_THREADS, "lae-archive-upload") as pool:
            for f in cut_files(split, topic, partition, plan.max_rows):
                if first:
                    crash_point("before_upload")
                    first = False
                in_flight.append((f, pool.submit(put, s3, bucket, f.key, f.data, upload)))
                t2 = time.perf_counter()
                t.encode += t2 - t1
                while in_flight and (len(in_flight) >= 2 * UPLOAD_THREADS
                                     or in_flight[0][1].done()):
                    _record(result, *_finished(in_flight.popleft()))
                    lease.keep_alive()  # keeps a long partition's lease alive
                t1 = time.perf_counter()
                t.upload += t1 - t2
            while in_flight:
                _record(result, *_finished(in_flight.popleft()))
            t.upload += time.perf_counter() - t1
        crash_point("after_upload")
        t2 = time.perf_counter()
        result["read"] = read
        put_pending(s3, bucket, result)
        lease.renew()  # fencing: never commit after losing the lease
        consumer.commit({TopicPartition(topic, partition): OffsetAndMetadata(
            plan.end, json.dumps({"archived": [plan.start, plan.end], "run_id": run_id}), -1)})
        t.commit += time.perf_counter() - t2
        crash_point("after_commit")
        log.info("archived %s/%s [%d, %d): %d valid, %d quarantined, %d files", topic,
                 partition, plan.start, plan.end, result["valid"], result["quarantined"],
                 len(result["files"]) + len(result["quarantine_files"]))
        return result
    finally:
        lease.release()


def _finished(entry) -> tuple:
    f, future = entry
    return f, future.result()


def _empty_result(plan: PartitionPlan, run_id: str) -> dict:
    return {"run_id": run_id, "topic": plan.topic, "partition": plan.partition,
            "start": plan.start, "end": plan.end, "max_rows": plan.max_rows, "valid": 0,
            "quarantined": 0, "last_offset": None, "files": [], "quarantine_files": [],
            "dates": {}, "quarantine_reasons": {}}


def _record(result: dict, f, info: dict) -> None:
    entry = {"key": f.key, "rows": f.rows, "bytes": info["bytes"], "sha256": info["sha256"],
             "first_offset": f.first, "last_offset": f.last, "date": f.date}
    if f.kind == "master":
        result["files"].append(entry)
        result["valid"] += f.rows
        result["dates"][f.date] = result["dates"].get(f.date, 0) + f.rows
    else:
        entry["reasons"] = f.reasons
        result["quarantine_files"].append(entry)
        result["quarantined"] += f.rows
        for reason, n in (f.reasons or {}).items():
            result["quarantine_reasons"][reason] = result["quarantine_reasons"].get(reason, 0) + n
    last = result["last_offset"]
    result["last_offset"] = f.last if last is None else max(last, f.last)
