"""Backfill and late data through the *running* Airflow (scheduler, executor, asset events).

One stack set-up for both acceptance paths (Spark runs dominate the time):

1. ``lae generate --start … --days 3`` → ``kafka_to_s3_archive`` triggered through the REST API
   and run by the scheduler → a backfill of ``batch_recompute`` for the 3 days, created through
   ``POST /api/v2/backfills`` (what ``airflow backfill create`` and the UI's *Backfill* do) →
   every run succeeds and the published batch tables equal the generator's ground truth →
   the same backfill again with reprocess behaviour ``completed`` → new batches, identical rows
   (``users_hll`` compared by estimate: the sketch bytes may differ), one live batch per day.
2. Late data: more events for the oldest day, archived by the scheduler; the archive's real
   Asset event on ``lae_master_logs_v1`` names that day, ``batch_late_data`` (scheduled on the
   asset) triggers ``batch_recompute`` for it alone, and its published rows now include the late
   events.

The backfill is created through the api-server rather than an ``airflow backfill create``
process: on SQLite, Airflow creates each backfill run in a SAVEPOINT that reads before it
writes, and SQLite refuses that lock upgrade at once ("database is locked", no busy timeout
applies) whenever the scheduler holds or has just taken the write lock. The api-server answers
that case with a 503 after removing the partial backfill, which ``AirflowApi.create_backfill``
retries; the CLI left a half-created backfill behind.

Everything runs in the stack's own bucket and keyspace (the scheduler's tasks read those), on
days no other test writes; what an earlier run of this module left for those days is removed
first, so the module can be re-run on a kept stack.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from lae.airflow_api import AirflowApi, AirflowApiError
from lae.archive.layout import MASTER_PREFIX
from lae.batch import store
from lae.generator.truth import read_truth
from lae.kafka import TopicSpec, ensure_topics
from lae.s3 import s3_client
from lae.views import estimate
from tests.integration.helpers import truth_minute_totals, wait_for

pytestmark = [
    pytest.mark.integration,
    # Seven spark-submits through the scheduler: far beyond the suite's default 900 s per test
    # on a loaded machine.
    pytest.mark.timeout(3000),
]

DAYS = [date(2021, 7, 5), date(2021, 7, 6), date(2021, 7, 7)]
ARCHIVE, BATCH, LATE = "kafka_to_s3_archive", "batch_recompute", "batch_late_data"
# Spark-submit in local mode on a loaded 2-core machine: minutes per run, not seconds.
RUN_TIMEOUT_S = 900


def _lae(*args: str) -> None:
    lae = Path(sys.executable).parent / "lae"
    subprocess.run([str(lae), *args], check=True, timeout=300,  # noqa: S603 - fixed argv
                   capture_output=True)


def _generate(topic: str, truth: Path, start: date, days: int, count: int, seed: int) -> None:
    _lae("generate", "--start", start.isoformat(), "--days", str(days), "--count", str(count),
         "--seed", str(seed), "--topic", topic, "--truth", str(truth), "--progress", "0")


def _get(api: AirflowApi, path: str):
    """GET that rides out a busy api-server (read timeouts, SQLite "database is locked")."""
    import httpx

    for attempt in range(5):
        try:
            status, payload = api.request("GET", path)
        except httpx.TimeoutException:
            status, payload = None, "timed out"
        if status == 200:
            return payload
        assert status in (None, 500) and attempt < 4, (path, status, payload)
        time.sleep(5)
    raise AssertionError("unreachable")


def _runs(api: AirflowApi, dag_id: str, run_type: str | None = None) -> list[dict]:
    # Newest first: a kept stack's scheduled runs pile up beyond one page.
    payload = _get(api, f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=-id")
    return [r for r in payload["dag_runs"] if run_type in (None, r["run_type"])]


def _wait_run(api: AirflowApi, dag_id: str, run_id: str) -> str:
    def finished():
        state = _get(api, f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
        return state if state in ("success", "failed") else None

    return wait_for(finished, RUN_TIMEOUT_S, f"{dag_id} run {run_id}", interval=5)


def _set_paused(api: AirflowApi, dag_id: str, paused: bool) -> None:
    status, payload = api.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": paused})
    assert status == 200, payload


def _trigger(api: AirflowApi, dag_id: str, conf: dict) -> str:
    # SQLite (the local stack's metadata DB) answers "database is locked" as an HTTP 500 when
    # the scheduler holds the write lock long on a loaded machine; the insert was rolled back.
    for attempt in range(3):
        try:
            return api.trigger(dag_id, conf=conf, note="test_batch_backfill")
        except AirflowApiError as exc:
            if "Database error" not in str(exc) or attempt == 2:
                raise
            time.sleep(5)
    raise AssertionError("unreachable")


def _archive(api: AirflowApi, topic: str) -> str:
    """One scheduler-run archive of ``topic``; returns the run id."""
    run_id = _trigger(api, ARCHIVE, {"topic": topic})
    state = _wait_run(api, ARCHIVE, run_id)
    assert state == "success", (state, api.task_states(ARCHIVE, run_id))
    return run_id


def _backfill(api: AirflowApi, reprocess: str = "none") -> dict[date, dict]:
    """A backfill of ``batch_recompute`` for DAYS; waits for it to complete and returns the
    final dag run per day."""
    # to_date is the day after the last one: a run's logical date is 02:00 of its day, and
    # the backfill takes logical dates in [from_date 00:00, to_date 00:00].
    backfill = api.create_backfill(BATCH, DAYS[0].isoformat(),
                                   (DAYS[-1] + timedelta(days=1)).isoformat(),
                                   reprocess_behavior=reprocess, max_active_runs=1)
    api.wait_for_backfill(backfill["id"], timeout=RUN_TIMEOUT_S * len(DAYS))
    runs = {}
    for r in _runs(api, BATCH, run_type="backfill"):
        day = datetime.fromisoformat(r["logical_date"]).date()
        if day in DAYS:
            runs[day] = r
    return runs


def _tables(session, keyspace: str, day: date) -> tuple[str, dict]:
    """(published batch id, {(table, key…): measures}) of one day, every service; the HLL sketch
    is compared by its estimate."""
    batch_id = store.published_batch(session, keyspace, day)
    services = store.batches_of_day(session, keyspace, day).get(batch_id, ())
    out = {}
    for (bucket, table), service in itertools.product(store.TABLES.items(), sorted(services)):
        for r in session.execute(
                f"SELECT * FROM {keyspace}.{table} WHERE service = %s AND day = %s "  # noqa: S608
                "AND batch_id = %s", (service, day, batch_id)):
            key = (table, r.service, getattr(r, bucket), r.path, r.status_class)
            out[key] = tuple(estimate(getattr(r, m)) if m == "users_hll" else getattr(r, m)
                             for m in store.MEASURES)
    return batch_id, out


def _minute_totals(tables: dict) -> dict[tuple, tuple[int, int, int]]:
    req, err, byt = (store.MEASURES.index(m) for m in ("requests", "errors", "bytes"))
    return {(service, ts.replace(tzinfo=UTC), path, sc): (v[req], v[err], v[byt])
            for (table, service, ts, path, sc), v in tables.items()
            if table == store.TABLES["minute"]}


def _cancel_open_backfills(api: AirflowApi) -> None:
    for b in _get(api, f"/api/v2/backfills?dag_id={BATCH}&limit=100")["backfills"]:
        if not b["completed_at"]:
            status, payload = api.request("PUT", f"/api/v2/backfills/{b['id']}/cancel")
            assert status == 200, payload


def _forget_earlier_runs(api: AirflowApi, settings, session) -> None:
    """Remove what an earlier run of this module left for DAYS: dag runs, master files, batches
    (after any archive run still in flight, which could write more files for DAYS)."""
    wait_for(lambda: not [r for r in _runs(api, ARCHIVE) if r["state"] in ("queued", "running")],
             RUN_TIMEOUT_S, "archive runs in flight to finish", interval=5)
    # A backfill left unfinished (e.g. an interrupted run of this module) blocks a new one.
    _cancel_open_backfills(api)
    for r in _runs(api, BATCH):
        if datetime.fromisoformat(r["logical_date"]).date() in DAYS or (
                (r.get("conf") or {}).get("day") in {d.isoformat() for d in DAYS}):
            path = f"/api/v2/dags/{BATCH}/dagRuns/{r['dag_run_id']}"
            if r["state"] in ("queued", "running"):
                # Airflow deletes only finished runs; failing it also stops its running task.
                status, payload = api.request("PATCH", path, {"state": "failed"})
                assert status == 200, payload
            status, payload = api.request("DELETE", path)
            assert status == 204, payload
    client = s3_client(settings)
    for day in DAYS:
        prefix = f"{MASTER_PREFIX}/date={day.isoformat()}/"
        for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=settings.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=settings.bucket, Key=obj["Key"])
        for batch_id, services in store.batches_of_day(session, settings.keyspace, day).items():
            store.drop_batch(session, settings.keyspace, day, batch_id, services)
        session.execute(f"DELETE FROM {settings.keyspace}.batch_published "  # noqa: S608
                        "WHERE view_name = %s AND day = %s", (store.VIEW, day))


@pytest.fixture(scope="module")
def stack(settings, airflow_service, kafka_service, s3_service, cassandra_service):
    from lae.cassandra import connect

    api = AirflowApi.login(settings)
    api.timeout = 120  # a loaded machine's api-server can take longer than the default 30 s
    for dag_id in (ARCHIVE, BATCH, LATE):
        api.wait_for_dag(dag_id, timeout=300)
    session = connect(settings)
    try:
        _forget_earlier_runs(api, settings, session)
        yield api, session
    finally:
        session.cluster.shutdown()


def test_backfill_twice_then_late_data_through_the_scheduler(settings, stack, tmp_path):
    api, session = stack
    ks = settings.keyspace
    started = time.monotonic()

    def part_done(name: str) -> None:
        # Spark runs dominate; the times of each part are reported with `-s` (CI budget).
        nonlocal started
        print(f"\n{name}: {time.monotonic() - started:.0f}s", flush=True)
        started = time.monotonic()

    topic = f"lae.test.backfill.{uuid.uuid4().hex[:10]}"
    ensure_topics(settings, specs=[TopicSpec(topic, 2, 1, {})])
    # Held back until the late-data step: its asset-triggered recomputes would race the backfill.
    _set_paused(api, LATE, True)
    _set_paused(api, BATCH, False)

    # --- 1. three historical days → archive → backfill ---------------------------------------
    _generate(topic, tmp_path / "history.parquet", DAYS[0], len(DAYS), 1500, seed=21)
    history = read_truth(tmp_path / "history.parquet")
    _archive(api, topic)

    runs = _backfill(api)
    assert {d: r["state"] for d, r in runs.items()} == dict.fromkeys(DAYS, "success")
    first = {d: _tables(session, ks, d) for d in DAYS}
    for day in DAYS:
        batch_id, tables = first[day]
        assert batch_id is not None, day
        assert _minute_totals(tables) == truth_minute_totals(history, {day}), day
    assert store.read_watermark(session, ks) >= datetime(2021, 7, 8, tzinfo=UTC)

    part_done("part 1, generate + archive + backfill of 3 days")

    # --- 2. the same backfill again: every day recomputed, same rows ---------------------------
    runs = _backfill(api, reprocess="completed")
    assert {d: r["state"] for d, r in runs.items()} == dict.fromkeys(DAYS, "success")
    for day in DAYS:
        batch_id, tables = _tables(session, ks, day)
        assert batch_id > first[day][0], (day, "not recomputed")
        assert tables == first[day][1], day
        assert set(store.batches_of_day(session, ks, day)) == {batch_id}, day

    part_done("part 2, the same backfill again")

    # --- 3. late events for the oldest day → asset event → batch_late_data → recompute --------
    _set_paused(api, LATE, False)
    late_before = {r["dag_run_id"] for r in _runs(api, LATE)}
    _generate(topic, tmp_path / "late.parquet", DAYS[0], 1, 120, seed=22)
    late = read_truth(tmp_path / "late.parquet")
    archive_run = _archive(api, topic)

    def late_run_on_our_event():
        # Another archive run (the stack's own schedule) may trigger batch_late_data as well:
        # find the finished run whose triggering events include the late archive run's.
        for r in _runs(api, LATE):
            if r["dag_run_id"] in late_before or r["state"] not in ("success", "failed"):
                continue
            events = _get(api, f"/api/v2/dags/{LATE}/dagRuns/{r['dag_run_id']}"
                               "/upstreamAssetEvents")["asset_events"]
            ours = [e for e in events if e["source_run_id"] == archive_run]
            if ours:
                return r, ours, events
        return None

    late_dag_run, ours, events = wait_for(late_run_on_our_event, RUN_TIMEOUT_S,
                                          "batch_late_data to run on the asset", interval=5)
    assert late_dag_run["state"] == "success", late_dag_run
    # The run may also see events of archive runs made while it was paused (its event window
    # starts at its previous run): step 1's names all three days, but their batches are newer,
    # so only the late archive's day is recomputed (checked below).
    assert [e["extra"]["dates"] for e in ours] == [[DAYS[0].isoformat()]], events

    def recompute_of_day0():
        # Run type "operator_triggered" (Airflow 3.3's TriggerDagRunOperator); matched by conf.
        found = [r for r in _runs(api, BATCH)
                 if (r.get("conf") or {}).get("day") == DAYS[0].isoformat()]
        return found if found and all(r["state"] in ("success", "failed") for r in found) else None

    (recompute_run,) = wait_for(recompute_of_day0, RUN_TIMEOUT_S, "the late-data recompute")
    assert recompute_run["state"] == "success", recompute_run
    batch_id, tables = _tables(session, ks, DAYS[0])
    assert batch_id > first[DAYS[0]][0]
    both = pa.concat_tables([history, late])
    expected = truth_minute_totals(both, {DAYS[0]})
    assert sum(v[0] for v in expected.values()) > sum(
        v[0] for v in truth_minute_totals(history, {DAYS[0]}).values())
    assert _minute_totals(tables) == expected
    # The other days were not touched by the late events and were left alone.
    assert not [r for r in _runs(api, BATCH)
                if (r.get("conf") or {}).get("day") in {d.isoformat() for d in DAYS[1:]}]
    for day in DAYS[1:]:
        assert _tables(session, ks, day)[1] == first[day][1]
    part_done("part 3, late data through the asset event")
