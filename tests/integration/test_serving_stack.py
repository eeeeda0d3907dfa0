"""The serving layer on the real stack: batch rows from the real batch job, realtime rows from
lae.views on Spark, the query API over HTTP, reconcile (and its DAG), and the audit.

Data: "yesterday" and "today" (relative to now, so the dashboard's last-24-h view has data)
of hand-made events, archived to S3 in the archive's layout. The batch job recomputes
yesterday (W = today 00:00). The realtime rows are what the speed layer writes: the same
``metrics_minute`` / ``metrics_hour_from_events`` on a Spark DataFrame, upserted with prepared
statements, over today and the second half of yesterday, minus a few events treated as
*late* (dropped behind the streaming watermark) and recorded in ``stream_late_events`` as the
speed layer does. The ground truth is the events themselves.

``stream_late_events`` belongs to the speed layer's V004 migration; when V004 is not in the
tree, the fixture creates the table with V004's exact CQL (IF NOT EXISTS: only if absent).
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from lae.batch.job import recompute
from lae.schema import Event, event_from_dict
from lae.serving.audit import EXPLAINED, audit_hourly, late_by_day, truth_hourly
from lae.serving.store import ViewStore
from tests.integration.helpers import fresh_keyspace_and_bucket
from tests.integration.test_batch_recompute import _archive, _events

pytestmark = [pytest.mark.integration, pytest.mark.spark]

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
TODAY = NOW.date()
YESTERDAY = TODAY - timedelta(days=1)
RT_FROM = datetime(YESTERDAY.year, YESTERDAY.month, YESTERDAY.day, 12, tzinfo=UTC)
W_EXPECTED = datetime(TODAY.year, TODAY.month, TODAY.day, tzinfo=UTC)
# Today's events span [00:00, NOW), or the first 5 minutes when NOW is earlier than that; the
# queries end a minute after the later of the two. (They ended at NOW + 1 min: a CI run that
# loaded this module at 00:00 UTC placed most of today's events after the queries' end.)
TODAY_SPAN = max(NOW - W_EXPECTED, timedelta(minutes=5))
QUERY_END = W_EXPECTED + TODAY_SPAN + timedelta(minutes=1)
QUERY = "speed_views"
LATE_TABLE_CQL = """CREATE TABLE IF NOT EXISTS stream_late_events (
  service text, day date, query_name text, batch_id bigint, events bigint,
  PRIMARY KEY ((service, day), query_name, batch_id))"""
RT_COLUMNS = ("service", "day", "{b}", "path", "status_class", "requests", "errors",
              "client_errors", "bytes", "latency_sum", "latency_max", "latency_hist", "users_hll")


def today_events(n: int, rng: random.Random) -> list[Event]:
    """Events between today 00:00 and now (at least 5 minutes' worth: see TODAY_SPAN)."""
    span = TODAY_SPAN.total_seconds()
    out = []
    for _ in range(n):
        e = event_from_dict({
            "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "ts": (W_EXPECTED + timedelta(seconds=rng.uniform(0, span))).isoformat(),
            "service": rng.choice(("checkout", "search")), "host": "h1", "method": "GET",
            "path": rng.choice(("/v1/orders/{id}", "/v1/search")),
            "status": rng.choice((200, 200, 201, 404, 500)),
            "latency_ms": round(rng.uniform(0.5, 700), 3), "bytes": rng.randint(0, 4000),
            "user_id": rng.choice([None, *(f"u{i}" for i in range(30))]),
        })
        assert isinstance(e, Event), e
        out.append(e)
    return out


def write_rt(session, ks: str, spark, events: list[Event]) -> int:
    """Realtime rows as the speed layer computes them (lae.views), upserted (prepared)."""
    from cassandra.concurrent import execute_concurrent_with_args

    from lae.schema import spark_schema
    from lae.views import metrics_hour_from_events, metrics_minute

    df = spark.createDataFrame([e._asdict() for e in events], spark_schema())
    written = 0
    for bucket, view in (("minute", metrics_minute), ("hour", metrics_hour_from_events)):
        cols = [c.format(b=bucket) for c in RT_COLUMNS]
        insert = session.prepare(f"INSERT INTO {ks}.rt_metrics_{bucket} ({', '.join(cols)}) "  # noqa: S608
                                 f"VALUES ({', '.join('?' for _ in cols)})")
        rows = [tuple(r[c] for c in cols) for r in view(df).collect()]
        rows = [(*r[:11], list(r[11]), None if r[12] is None else bytes(r[12])) for r in rows]
        execute_concurrent_with_args(session, insert, rows, concurrency=32,
                                     raise_on_first_error=True)
        written += len(rows)
    return written


def record_late(session, service: str, day: date, events: int) -> None:
    session.execute("INSERT INTO stream_late_events (service, day, query_name, batch_id, "
                    "events) VALUES (%s, %s, %s, %s, %s)", (service, day, QUERY, 1, events))


def truth_table(events: list[Event]):
    """The events as a generator ground-truth table (the columns truth_hourly reads)."""
    import pyarrow as pa

    return pa.table({"kind": ["valid"] * len(events), "event_id": [e.event_id for e in events],
                     "ts": pa.array([e.ts for e in events], pa.timestamp("ms", tz="UTC")),
                     "service": [e.service for e in events], "error": [None] * len(events)})


class ApiServer:
    """``lae serve``'s app under uvicorn in a thread, on a free loopback port."""

    def __init__(self, settings):
        import uvicorn

        from lae.serving.api import create_app

        with socket.socket() as s:
            s.bind((settings.host, 0))
            self.port = s.getsockname()[1]
        self.app = create_app(settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host=settings.host,
                                                    port=self.port, log_level="warning",
                                                    access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://{settings.host}:{self.port}"

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.app.state.backend.close()


@pytest.fixture(scope="module")
def stack_data(settings, s3_service, cassandra_service, spark):
    cfg = replace(settings, keyspace="lae_serving_it", bucket="lae-serving-it")
    client, session = fresh_keyspace_and_bucket(cfg)
    session.set_keyspace(cfg.keyspace)  # the test's own statements name tables only
    session.execute(LATE_TABLE_CQL)
    rng = random.Random(7)  # noqa: S311 - reproducible test data
    yesterday, today = _events(YESTERDAY, 600, rng), today_events(400, rng)
    events = yesterday + today
    # Archived as the archiver would, with duplicates across partitions (batch de-duplicates).
    placed = [(rng.randrange(2), e) for e in events] + [(1, e) for e in rng.sample(events, 15)]
    _archive(client, cfg.bucket, placed)
    result = recompute(spark, cfg, YESTERDAY)
    assert result.published and result.watermark == W_EXPECTED.isoformat(), result

    # Late: events the speed layer dropped behind its watermark (not in its rows, counted).
    late_today = [e for e in today if e.service == "checkout"][:7]
    late_yesterday = [e for e in yesterday if e.service == "search" and e.ts >= RT_FROM][:3]
    dropped = {e.event_id for e in late_today + late_yesterday}
    rt_events = [e for e in today + [e for e in yesterday if e.ts >= RT_FROM]
                 if e.event_id not in dropped]
    assert write_rt(session, cfg.keyspace, spark, rt_events) > 0
    record_late(session, "checkout", TODAY, len(late_today))
    record_late(session, "search", YESTERDAY, len(late_yesterday))
    session.execute(
        "INSERT INTO stream_heartbeat (query_name, run_id, batch_id, "
        "last_progress_at, offsets, lag, input_rows, updated_at) VALUES "
        "(%s, 'r1', 5, %s, '{}', 42, 100, %s)", (QUERY, datetime.now(UTC), datetime.now(UTC)))
    with ApiServer(cfg) as server:
        yield {"cfg": cfg, "session": session, "events": events, "url": server.url,
               "store": ViewStore(session, cfg.keyspace), "late_today": len(late_today),
               "late_yesterday": len(late_yesterday)}
    session.cluster.shutdown()


def _audit(data, end):
    truth = truth_hourly(truth_table(data["events"]))
    late = late_by_day(data["store"], ("checkout", "search"), (YESTERDAY, TODAY))
    with httpx.Client(base_url=data["url"], timeout=60) as client:
        return audit_hourly(client, truth, datetime.combine(YESTERDAY, datetime.min.time(),
                                                            UTC), end, late=late), truth, late


def test_query_api_merges_batch_before_w_and_realtime_after(stack_data):
    url = stack_data["url"]
    services = httpx.get(f"{url}/v1/services", timeout=60).json()["services"]
    assert services == ["checkout", "search"]
    start = datetime.combine(YESTERDAY, datetime.min.time(), UTC)
    body = httpx.get(f"{url}/v1/metrics", timeout=60, params={
        "service": "checkout", "from": start.isoformat(),
        "to": QUERY_END.isoformat()}).json()
    assert body["w"] == W_EXPECTED.isoformat().replace("+00:00", "Z")
    points = body["points"]
    sources = {(p["start"] < body["w"], p["source"]) for p in points}
    assert sources == {(True, "batch"), (False, "rt")}, sources
    assert all(p["p99_ms"] >= p["p95_ms"] >= p["p50_ms"] > 0 for p in points)
    truth = sum(1 for e in stack_data["events"] if e.service == "checkout")
    assert sum(p["requests"] for p in points) == truth - stack_data["late_today"]
    # The API answers day by day, yesterday (published, before W) from its batch-day cache on
    # the second call: both calls equal read_merged's merge summed by series, exactly.
    from lae.serving.query import read_merged
    from lae.serving.series import series

    merged = read_merged(stack_data["store"], "checkout", start, QUERY_END)
    expected = [p.as_json() for p in series(merged.rows)]
    for _ in range(2):
        again = httpx.get(f"{url}/v1/metrics", timeout=60, params={
            "service": "checkout", "from": start.isoformat(),
            "to": QUERY_END.isoformat()}).json()
        assert again["points"] == expected
    # path filter: a subset of the same buckets.
    only = httpx.get(f"{url}/v1/metrics", timeout=60, params={
        "service": "checkout", "from": start.isoformat(), "to": QUERY_END.isoformat(),
        "granularity": "hour", "path": "/v1/search"}).json()["points"]
    assert 0 < sum(p["requests"] for p in only) < truth
    health = httpx.get(f"{url}/v1/health", timeout=60).json()
    assert health["w"] == body["w"]
    (stream,) = health["stream"]
    assert stream["query_name"] == QUERY and stream["lag"] == 42
    assert 0 <= stream["heartbeat_age_s"] < 600
    assert httpx.get(f"{url}/v1/metrics", timeout=60, params={
        "service": "checkout", "from": "2026-01-01T00:00:00Z",
        "to": "2026-03-01T00:00:00Z"}).status_code == 400

    # A service's first rows are listed once the API's short cache of the list expires (a
    # list cached for 30 s once hid a service that had just started from a dashboard).
    from lae.serving.api import SERVICES_TTL_S

    session = stack_data["session"]
    session.execute("INSERT INTO rt_metrics_hour (service, day, hour, path, status_class, "
                    "requests) VALUES ('newcomer', %s, %s, '/x', '2xx', 1)",
                    (TODAY, NOW.replace(minute=0)))
    try:
        time.sleep(SERVICES_TTL_S + 0.5)
        listed = httpx.get(f"{url}/v1/services", timeout=60).json()["services"]
        assert listed == ["checkout", "newcomer", "search"], listed
    finally:
        session.execute("DELETE FROM rt_metrics_hour WHERE service = 'newcomer' AND day = %s",
                        (TODAY,))


def test_audit_batch_hours_exact_realtime_hours_explained_by_late_events(stack_data):
    report, truth, late = _audit(stack_data, NOW + timedelta(hours=1))
    print(report.text())
    assert report.ok, report.text()
    by_source = {h.source for h in report.hours}
    assert {"batch", "rt"} <= by_source
    assert report.late == {("checkout", TODAY): (stack_data["late_today"],
                                                 stack_data["late_today"])}
    assert any(h.status == EXPLAINED for h in report.hours)
    # The audit can fail: one event more in a batch hour's truth is a mismatch.
    key = next(k for k in truth if k[1].date() == YESTERDAY)
    bad = audit_hourly(httpx.Client(base_url=stack_data["url"], timeout=60),
                       {**truth, key: truth[key] + 1},
                       datetime.combine(YESTERDAY, datetime.min.time(), UTC),
                       NOW + timedelta(hours=1), late=late)
    assert not bad.ok and any("from batch" in p for p in bad.problems), bad.problems


DAG_SCRIPT = """
import json, sys
from datetime import datetime
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
dr = bag.dags["reconcile_views"].test(run_conf=json.loads(sys.argv[2]),
                                      run_after=datetime.fromisoformat(sys.argv[3]))
print("RESULT " + json.dumps({"state": str(dr.state), "run_id": dr.run_id,
                              "tasks": {t.task_id: str(t.state) for t in dr.get_task_instances()}}))
"""


def test_reconcile_dag_alerts_on_injected_drift_and_materializes(stack_data, settings,
                                                                 airflow_running, tmp_path):
    from tests.integration.faults import private_airflow_env

    cfg, session = stack_data["cfg"], stack_data["session"]
    # The discrepancy: half an hour of checkout's realtime minutes deleted, inside the window
    # the speed layer covered yesterday.
    lo = datetime.combine(YESTERDAY, datetime.min.time(), UTC) + timedelta(hours=13)
    rows = list(session.execute(
        "SELECT minute, path, status_class, requests FROM rt_metrics_minute "
        "WHERE service = 'checkout' AND day = %s AND minute >= %s AND minute < %s",
        (YESTERDAY, lo, lo + timedelta(minutes=30))))
    deleted = sum(r.requests for r in rows)
    assert deleted > 0
    for r in rows:
        session.execute("DELETE FROM rt_metrics_minute WHERE service = "
                        "'checkout' AND day = %s AND minute = %s AND path = %s AND "
                        "status_class = %s", (YESTERDAY, r.minute, r.path, r.status_class))

    # dag.test() on a private copy of the metadata DB: in the stack's own DB the live scheduler
    # (reconcile_views is unpaused and scheduled) took this run's task instance and ran it
    # with the stack's keyspace, and dag.test's own attempt was killed ("TI is no longer in
    # the running state"); seen twice on a loaded machine.
    env = {**private_airflow_env(cfg, tmp_path), "LAE_KEYSPACE": cfg.keyspace,
           "LAE_BUCKET": cfg.bucket}
    # A long grace: this run must not expire today's realtime rows (the next test does).
    dag_file = settings.home / "dags" / "reconcile_views.py"
    proc = subprocess.run([sys.executable, "-c", DAG_SCRIPT, str(dag_file),
                           json.dumps({"grace_minutes": 3 * 24 * 60}),
                           # The module's clock: a run after midnight UTC must still call
                           # YESTERDAY yesterday (CI crossed midnight once and the materialized
                           # days moved on under the test).
                           NOW.isoformat()],
                          env=env, capture_output=True, text=True, timeout=600)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (proc.stdout[-3000:], proc.stderr[-5000:])
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["state"] == "success", (result, proc.stdout[-5000:], proc.stderr[-3000:])

    from lae.alerts import alerts_file, read_records

    mine = [a for a in read_records(alerts_file(settings)) if a.get("run_id") == result["run_id"]
            and a.get("kind") == "view_drift"]
    assert len(mine) == 1, mine
    details = mine[0]["details"]
    assert (details["service"], details["day"], details["unexplained"]) == (
        "checkout", YESTERDAY.isoformat(), deleted), details
    assert "checkout" in mine[0]["title"] and YESTERDAY.isoformat() in mine[0]["title"]

    drift = {r.service: r for r in session.execute(
        "SELECT * FROM view_drift WHERE day = %s", (YESTERDAY,))}
    assert drift["checkout"].unexplained == deleted and drift["checkout"].alerted
    # search: realtime short by exactly its late events: explained, no alert.
    search = drift["search"]
    assert search.batch_requests - search.rt_requests == stack_data["late_yesterday"]
    assert (search.late_events, search.unexplained, search.alerted) == (
        stack_data["late_yesterday"], 0, False)

    # serving_* materialized: per service and day, the same totals the API answers.
    for service in ("checkout", "search"):
        for day in (YESTERDAY, TODAY):
            served = session.execute(
                "SELECT sum(requests) AS n FROM serving_metrics_hour "
                "WHERE service = %s AND day = %s", (service, day)).one().n
            start = datetime.combine(day, datetime.min.time(), UTC)
            api = httpx.get(f"{stack_data['url']}/v1/metrics", timeout=60, params={
                "service": service, "from": start.isoformat(),
                "to": (start + timedelta(days=1)).isoformat(), "granularity": "hour"}).json()
            assert served == sum(p["requests"] for p in api["points"]), (service, day)


def test_next_batch_advances_w_expires_realtime_and_audit_is_exact(stack_data, spark):
    from lae.serving.reconcile import ReconcileConfig, reconcile

    cfg, store = stack_data["cfg"], stack_data["store"]
    result = recompute(spark, cfg, TODAY)  # "tonight's" batch of today
    tomorrow = W_EXPECTED + timedelta(days=1)
    assert result.watermark == tomorrow.isoformat(), result
    alerts = []
    report = reconcile(store, now=NOW, cfg=ReconcileConfig(grace=timedelta(0)),
                       alert=lambda *a, **kw: alerts.append((a, kw)))
    assert report.w == tomorrow.isoformat()
    for service in ("checkout", "search"):
        for day in (YESTERDAY, TODAY):
            left = store.session.execute(
                "SELECT count(*) AS n FROM rt_metrics_minute "
                "WHERE service = %s AND day = %s", (service, day)).one().n
            assert left == 0, (service, day, left)
    time.sleep(5.5)  # the API caches W for 5 s
    audit, _, _ = _audit(stack_data, NOW + timedelta(hours=1))
    assert audit.ok, audit.text()
    assert {h.source for h in audit.hours} == {"batch"} and not audit.late
