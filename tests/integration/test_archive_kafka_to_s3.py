"""The archiver against the real broker, S3 endpoint and Cassandra: counts match the generator's
ground truth, also after the process is SIGKILLed at each step and re-run."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lae.archive.crash import ENV as CRASH_ENV
from lae.archive.layout import MANIFEST_PREFIX, parse_file_name
from lae.archive.lease import CassandraLease
from lae.generate import generate
from lae.generator.model import Mix
from lae.generator.truth import read_truth
from lae.kafka import TopicSpec, ensure_topics
from lae.s3 import s3_client
from lae.schema import archive_arrow_schema

pytestmark = pytest.mark.integration

DAY = (datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC))
MIX = Mix(late=0.05, duplicate=0.03, malformed=0.02)
PARTITIONS = 3
# Short, so the test can wait for a killed run's lease to expire; long enough that a run on a
# busy 2-core machine renews it in time.
LEASE_TTL_S = 8


@pytest.fixture(scope="module")
def stack(kafka_service, s3_service, cassandra_service, settings):
    return settings


def _batch(settings, tmp_path, count=3000, seed=7):
    topic = f"lae.test.archive.{uuid.uuid4().hex[:10]}"
    ensure_topics(settings, specs=[TopicSpec(topic, PARTITIONS, 1, {})])
    path = tmp_path / "truth.parquet"
    summary = generate(seed=seed, count=count, history=DAY, mix=MIX, topic=topic,
                       truth_path=path, settings=settings, stream=None)
    assert summary.failed == 0
    return topic, read_truth(path)


def _run(topic, run_id, *, crash=None, ttl=30, threshold=64 * 1024 * 1024, part=16 * 1024,
         max_rows=400, group=None):
    env = {**os.environ}
    env.pop(CRASH_ENV, None)
    if crash:
        env[CRASH_ENV] = crash
    cmd = [sys.executable, "-m", "lae.archive", "--topic", topic, "--run-id", run_id,
           "--group-id", group or f"g-{topic}", "--max-rows", str(max_rows),
           "--multipart-threshold", str(threshold), "--part-size", str(part),
           "--lease-ttl", str(ttl)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _objects(settings, prefix, topic):
    s3 = s3_client(settings)
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket,
                                                              Prefix=prefix):
        for obj in page.get("Contents", []):
            if f"/{topic}+" in obj["Key"]:
                out[obj["Key"]] = s3.get_object(Bucket=settings.bucket,
                                                Key=obj["Key"])["Body"].read()
    return out


def _table(objs: dict[str, bytes]) -> pa.Table | None:
    tables = [pq.read_table(io.BytesIO(b)) for _, b in sorted(objs.items())]
    return pa.concat_tables(tables) if tables else None


def _manifest(settings, run_id):
    s3 = s3_client(settings)
    body = s3.get_object(Bucket=settings.bucket, Key=f"{MANIFEST_PREFIX}/{run_id}.json")["Body"]
    return json.loads(body.read())


def _assert_exactly_once(settings, topic, truth):
    master = _objects(settings, "master/logs/v1/", topic)
    quarantine = _objects(settings, "quarantine/logs/v1/", topic)
    rows = truth.to_pylist()
    expected_valid = [r for r in rows if r["kind"] != "malformed"]
    expected_bad = [r for r in rows if r["kind"] == "malformed"]
    table = _table(master)
    assert table.schema.equals(archive_arrow_schema())
    got = table.to_pydict()
    # Per Kafka coordinate and per event_id, with multiplicity: duplicates appear as often as
    # they were sent, nothing appears twice because of a re-run.
    assert Counter(zip(got["partition"], got["offset"], strict=True)) == Counter(
        (r["partition"], r["offset"]) for r in expected_valid)
    assert Counter(got["event_id"]) == Counter(r["event_id"] for r in expected_valid)
    assert Counter(got["partition"]) == Counter(r["partition"] for r in expected_valid)
    # Every file sits in the date/hour of its rows' event time, and its name is its offsets.
    for key, body in master.items():
        t = pq.read_table(io.BytesIO(body))
        _, part, first, last = parse_file_name(key)
        offs = t["offset"].to_pylist()
        assert (first, last) == (min(offs), max(offs)) and {part} == set(t["partition"].to_pylist())
        hours = {ts.strftime("date=%Y-%m-%d/hour=%H") for ts in t["ts"].to_pylist()}
        assert hours == {key.split("/")[3] + "/" + key.split("/")[4]}, key
    qt = _table(quarantine).to_pydict()
    assert Counter(zip(qt["partition"], qt["offset"], strict=True)) == Counter(
        (r["partition"], r["offset"]) for r in expected_bad)
    by_coord = {(p, o): (raw, reason) for p, o, raw, reason in
                zip(qt["partition"], qt["offset"], qt["raw"], qt["reason"], strict=True)}
    for r in expected_bad:
        raw, reason = by_coord[(r["partition"], r["offset"])]
        assert raw == r["raw"]
        assert reason == r["expected_reason"], r["malformed_type"]
    assert len(got["offset"]) + len(qt["offset"]) == truth.num_rows
    return master, quarantine


def test_archive_matches_ground_truth(stack, tmp_path, spark):
    settings = stack
    topic, truth = _batch(settings, tmp_path)
    run_id = f"t-{topic}"
    proc = _run(topic, run_id)
    assert proc.returncode == 0, proc.stderr[-3000:]
    master, _ = _assert_exactly_once(settings, topic, truth)
    manifest = _manifest(settings, run_id)
    kinds = Counter(truth["kind"].to_pylist())
    assert manifest["totals"]["valid"] == truth.num_rows - kinds["malformed"]
    assert manifest["totals"]["quarantined"] == kinds["malformed"]
    assert {f["key"] for f in manifest["files"]} == set(master)
    # Late events land in their event-time day, and the manifest names every touched day.
    late_days = Counter(r["ts"].strftime("%Y-%m-%d") for r in truth.to_pylist()
                        if r["kind"] == "late")
    assert set(late_days) <= set(manifest["dates"])
    assert sum(manifest["dates"].values()) == manifest["totals"]["valid"]
    ends: dict[int, int] = {}
    for r in truth.to_pylist():
        ends[r["partition"]] = max(ends.get(r["partition"], 0), r["offset"] + 1)
    assert {p["partition"]: (p["start"], p["end"]) for p in manifest["partitions"]} == {
        p: (0, end) for p, end in ends.items()}
    # A second run has nothing new: no files, no duplicates.
    again = _run(topic, run_id + "-again")
    assert again.returncode == 0, again.stderr[-3000:]
    assert _manifest(settings, run_id + "-again")["totals"]["files"] == 0
    _assert_exactly_once(settings, topic, truth)
    # Spark reads the files with the schema from lae.schema.
    from lae.schema import archive_spark_schema

    df = spark.read.schema(archive_spark_schema()).parquet(
        f"s3a://{settings.bucket}/master/logs/v1/")
    n = df.where(df.topic == topic).count()
    assert n == manifest["totals"]["valid"]


def test_worker_processes_archive_exactly_once(stack, tmp_path, monkeypatch):
    """``workers=2``: partitions archived by processes forked from the preloaded forkserver
    give the same exactly-once result and a manifest covering every partition."""
    from lae.archive import run

    settings = stack
    topic, truth = _batch(settings, tmp_path, seed=11)
    run_id = f"w-{topic}"
    assert len(set(truth["partition"].to_pylist())) > 1  # work for both workers

    def in_this_process(*args, **kwargs):
        raise AssertionError("partitions archived in the calling process, not in workers")

    # The workers are fresh interpreters, so only this process sees the patch: the run fails
    # if it archives here instead of in its worker processes.
    monkeypatch.setattr(run, "_archive_partitions", in_this_process)
    run.run_archive(settings, run.RunOptions(run_id=run_id, topic=topic, group_id=f"g-{topic}",
                                             max_rows=400, workers=2))
    master, _ = _assert_exactly_once(settings, topic, truth)
    manifest = _manifest(settings, run_id)
    assert {f["key"] for f in manifest["files"]} == set(master)
    assert {p["partition"] for p in manifest["partitions"]} == set(truth["partition"].to_pylist())
    assert manifest["totals"]["valid"] + manifest["totals"]["quarantined"] == truth.num_rows


@pytest.mark.parametrize("step", ["before_upload", "mid_multipart", "after_upload",
                                  "after_commit"])
def test_crash_then_rerun_is_exactly_once(stack, tmp_path, step, cassandra_service):
    settings = stack
    topic, truth = _batch(settings, tmp_path, count=2500, seed=11)
    # Every object multipart: the kill comes after a part is stored, before completion (S3's
    # 5 MiB minimum part size makes these small files one-part uploads).
    opts = {"threshold": 1, "part": 5 * 1024 * 1024} if step == "mid_multipart" else {}
    crashed = _run(topic, f"c-{topic}", crash=step, ttl=LEASE_TTL_S, **opts)
    assert crashed.returncode == -9, crashed.stderr[-3000:]
    # The killed run still holds partition 0's lease; it expires on its own (TTL).
    from lae.cassandra import connect

    session = connect(settings)
    try:
        busy = Counter(truth["partition"].to_pylist()).most_common(1)[0][0]
        lease = CassandraLease(session, settings.keyspace, topic, busy)
        assert lease.holder() is not None
        time.sleep(LEASE_TTL_S + 1)
        assert lease.holder() is None
    finally:
        session.cluster.shutdown()
    rerun = _run(topic, f"r-{topic}", **opts)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    master, quarantine = _assert_exactly_once(settings, topic, truth)
    manifest = _manifest(settings, f"r-{topic}")
    # The re-run's manifest covers the crashed range too (recovered after a commit crash).
    listed = {f["key"] for f in manifest["files"]}
    assert listed == set(master), "no stray files beside the manifest's"
    assert {f["key"] for f in manifest["quarantine_files"]} == set(quarantine)
    if step == "after_commit":
        # The crashed run committed its first partition, then died before the manifest.
        recovered = [p for p in manifest["partitions"] if p.get("recovered_from")]
        assert [p["recovered_from"] for p in recovered] == [f"c-{topic}"]
