"""Batch recompute on the real stack: S3 master dataset → Spark → Cassandra, published once.

Input is built here, in the archive's layout and Parquet schema (lae.archive.writer), from
hand-made events with duplicates across partitions; the expected view rows are computed in
plain Python from the same events, de-duplicated by event_id.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import uuid
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from lae.archive.layout import hour_bucket, master_key
from lae.archive.writer import encode, master_table
from lae.batch import store
from lae.batch.checks import compare_counts, master_counts, published_counts
from lae.batch.job import recompute
from lae.cassandra_schema import migrate
from lae.schema import Event, event_from_dict
from lae.views import estimate
from tests.integration.helpers import fresh_keyspace_and_bucket

pytestmark = pytest.mark.integration

DAY1, DAY2 = date(2021, 3, 1), date(2021, 3, 2)
TOPIC = "logs.raw"
SERVICES = ("checkout", "search")
PATHS = ("/v1/orders/{id}", "/v1/search", "/health")
STATUSES = (200, 200, 200, 201, 404, 500, 503)


def _events(day: date, n: int, rng: random.Random) -> list[Event]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    offsets_s = [0.0, 59.999, 60.0, 86399.999]  # bucket and day edges
    offsets_s += [rng.uniform(0, 86400 - 0.001) for _ in range(n - len(offsets_s))]
    out = []
    for s in offsets_s:
        event = event_from_dict({
            "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "ts": (start + timedelta(seconds=s)).isoformat(),
            "service": rng.choice(SERVICES),
            "host": "h1",
            "method": "GET",
            "path": rng.choice(PATHS),
            "status": rng.choice(STATUSES),
            "latency_ms": round(rng.uniform(0.05, 900), 3),
            "bytes": rng.randint(0, 5000),
            "user_id": rng.choice([None, *(f"u{i}" for i in range(40))]),
        })
        assert isinstance(event, Event), event
        out.append(event)
    return out


def _archive(client, bucket: str, placed: list[tuple[int, Event]]) -> None:
    """Write (partition, event) pairs as the archiver would: per partition, offsets in order,
    one file per (partition, event date, hour)."""
    files: dict[tuple[int, str, str], list[tuple[int, Event]]] = defaultdict(list)
    next_offset: dict[int, int] = defaultdict(int)
    for partition, event in placed:
        offset = next_offset[partition]
        next_offset[partition] += 1
        files[(partition, *hour_bucket(event.ts))].append((offset, event))
    for (partition, day, hour), rows in files.items():
        offsets = [o for o, _ in rows]
        table = master_table([e for _, e in rows], TOPIC, partition, offsets,
                             [e.ts for _, e in rows])
        key = master_key(TOPIC, partition, offsets[0], offsets[-1], day, hour)
        client.put_object(Bucket=bucket, Key=key, Body=encode(table))


def _truth(events: list[Event]) -> dict[tuple, tuple[int, int, int]]:
    """(service, minute, path, status_class) → (requests, errors, bytes), de-duplicated."""
    seen, out = set(), defaultdict(lambda: [0, 0, 0])
    for e in events:
        if e.event_id in seen:
            continue
        seen.add(e.event_id)
        minute = e.ts.replace(second=0, microsecond=0)
        acc = out[(e.service, minute, e.path, f"{e.status // 100}xx")]
        acc[0] += 1
        acc[1] += e.status >= 500
        acc[2] += e.bytes
    return {k: tuple(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def env(settings, s3_service, cassandra_service):
    """A bucket and keyspace of this module's own, so reruns and other tests do not interfere."""
    cfg = replace(settings, bucket="lae-batch-it", keyspace="lae_batch_it")
    client, session = fresh_keyspace_and_bucket(cfg)
    yield cfg, client, session
    session.cluster.shutdown()


@pytest.fixture(scope="module")
def master(env):
    """Two days of events, ~10% duplicated into another partition (a producer retry)."""
    cfg, client, _ = env
    rng = random.Random(5)  # noqa: S311 - reproducible test data, not security
    events = {DAY1: _events(DAY1, 400, rng), DAY2: _events(DAY2, 300, rng)}
    placed = []
    for day_events in events.values():
        for e in day_events:
            placed.append((rng.randrange(3), e))
        for e in rng.sample(day_events, len(day_events) // 10):
            placed.append((rng.randrange(3), e))
    _archive(client, cfg.bucket, placed)
    copies = [e for _, e in placed]  # every archived copy, duplicates included
    return {d: [e for e in copies if e.ts.date() == d] for d in events}


def _published(session, cfg, day: date) -> dict[tuple, object]:
    rows = []
    for service in SERVICES:
        rows += store.read_published_minutes(session, service, day, keyspace=cfg.keyspace)
    return {(r.service, r.minute.replace(tzinfo=UTC), r.path, r.status_class): r for r in rows}


def _live_batches(session, cfg, day: date) -> set[str]:
    found = set()
    for table in store.TABLES.values():
        for service in SERVICES:
            found |= {r.batch_id for r in session.execute(
                f"SELECT batch_id FROM {cfg.keyspace}.{table} WHERE service = %s AND day = %s",  # noqa: S608
                (service, day))}
    return found


def test_recompute_publishes_exact_views_and_reruns_identically(spark, env, master):
    cfg, client, session = env
    first = {day: recompute(spark, cfg, day) for day in (DAY1, DAY2)}

    for day in (DAY1, DAY2):
        truth = _truth(master[day])
        rows = _published(session, cfg, day)
        got = {k: (r.requests, r.errors, r.bytes) for k, r in rows.items()}
        assert got == truth
        assert first[day].published and first[day].requests == sum(v[0] for v in truth.values())
        # The DAG's validation step (pyarrow over the same files) agrees.
        _, published = published_counts(session, cfg.keyspace, day)
        assert compare_counts(master_counts(client, cfg.bucket, day), published) == []
    assert store.read_watermark(session, cfg.keyspace) == datetime(2021, 3, 3, tzinfo=UTC)

    before = _published(session, cfg, DAY1)
    again = recompute(spark, cfg, DAY1)
    after = _published(session, cfg, DAY1)
    assert again.batch_id != first[DAY1].batch_id and again.dropped == [first[DAY1].batch_id]
    assert after.keys() == before.keys()
    for key, row in after.items():
        old = before[key]
        for col in ("requests", "errors", "client_errors", "bytes", "latency_sum",
                    "latency_max", "latency_hist"):
            assert getattr(row, col) == getattr(old, col), (key, col)
        assert estimate(row.users_hll) == pytest.approx(estimate(old.users_hll), rel=0.02)
    assert _live_batches(session, cfg, DAY1) == {again.batch_id}
    assert _live_batches(session, cfg, DAY2) == {first[DAY2].batch_id}
    assert store.read_watermark(session, cfg.keyspace) == datetime(2021, 3, 3, tzinfo=UTC)


def test_watermark_is_the_end_of_the_newest_published_day(env):
    cfg, _, session = env
    ks = "lae_batch_wm"
    wm_cfg = replace(cfg, keyspace=ks)
    session.execute(f"DROP KEYSPACE IF EXISTS {ks}", timeout=60)
    migrate(session, wm_cfg)
    d1, d2, d3 = date(2021, 4, 1), date(2021, 4, 2), date(2021, 4, 3)
    assert store.publish(session, ks, d1, store.new_batch_id())
    assert store.advance_watermark(session, ks) == datetime(2021, 4, 2, tzinfo=UTC)
    assert store.publish(session, ks, d3, store.new_batch_id())
    # d2 is a gap below W now: served from realtime and reported missing, not a pin on W.
    assert store.advance_watermark(session, ks) == datetime(2021, 4, 4, tzinfo=UTC)
    assert store.read_watermark(session, ks) == datetime(2021, 4, 4, tzinfo=UTC)
    assert store.publish(session, ks, d2, store.new_batch_id())
    # Filling the gap never moves W backwards.
    assert store.advance_watermark(session, ks) == datetime(2021, 4, 4, tzinfo=UTC)
    # An older batch id never replaces a newer publication.
    live = store.published_batch(session, ks, d2)
    assert not store.publish(session, ks, d2, "19990101T000000000000Z-00000000")
    assert store.published_batch(session, ks, d2) == live
    session.execute(f"DROP KEYSPACE IF EXISTS {ks}", timeout=60)


def _job_env(cfg) -> dict[str, str]:
    return {**os.environ, "LAE_BUCKET": cfg.bucket, "LAE_KEYSPACE": cfg.keyspace,
            "LAE_BATCH_WRITE_PARTITIONS": "1"}


@pytest.mark.parametrize("step", ["mid_write", "after_write_before_publish"])
def test_a_killed_job_keeps_the_published_version(spark, env, master, settings, step):
    """SIGKILL halfway through the write (minute rows written, hour rows not) or between the
    write and the publish: readers still get the old batch, W stays; the next run publishes
    and drops both the old and the orphaned batch."""
    cfg, _, session = env
    old_batch = store.published_batch(session, cfg.keyspace, DAY1)
    assert old_batch is not None, "runs after test_recompute_publishes_exact_views..."
    old_rows = _published(session, cfg, DAY1)
    w = store.read_watermark(session, cfg.keyspace)

    job = settings.home / "spark_jobs" / "batch_views.py"
    proc = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, str(job), "--date", DAY1.isoformat()],
        env={**_job_env(cfg), "LAE_BATCH_CRASH_AT": step},
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]

    orphans = set(store.batches_of_day(session, cfg.keyspace, DAY1)) - {old_batch}
    assert len(orphans) == 1  # registered and (partly) written, never published
    assert _live_batches(session, cfg, DAY1) == {old_batch, *orphans}
    assert store.published_batch(session, cfg.keyspace, DAY1) == old_batch
    assert {k: r.requests for k, r in _published(session, cfg, DAY1).items()} == {
        k: r.requests for k, r in old_rows.items()}
    assert store.read_watermark(session, cfg.keyspace) == w

    retry = recompute(spark, cfg, DAY1)
    assert retry.published and sorted(retry.dropped) == sorted({old_batch, *orphans})
    assert _live_batches(session, cfg, DAY1) == {retry.batch_id}
    assert {k: r.requests for k, r in _published(session, cfg, DAY1).items()} == {
        k: r.requests for k, r in old_rows.items()}
    assert store.read_watermark(session, cfg.keyspace) == w
