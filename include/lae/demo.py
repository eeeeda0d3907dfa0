"""`lae demo` (`make demo`): the whole pipeline on the local stack, then an audit table.

1. start the stack (S3, Kafka, Cassandra, Airflow) and wait for real health;
2. generate yesterday's history straight into ``logs.raw`` (with its ground truth);
3. start the speed layer through Airflow (``streaming_supervisor``) and the example API
   server (``lae api``), and drive live traffic through the server: every response it gives
   is counted by the client as today's ground truth;
4. Airflow runs ``kafka_to_s3_archive`` → ``batch_recompute`` for yesterday (publishes W) →
   ``reconcile_views`` once the stream has caught up;
5. prints one row per (service, hour): ground truth vs what the query API serves and which
   layer served it, then the URLs and credentials of the Airflow UI and the dashboard.

Re-running is safe: each run adds new events and keeps its ground truth under
``.lae/demo/``; the audit sums every run's truth, so the table stays exact.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from lae.config import Settings, get_settings

ARCHIVE_DAG, BATCH_DAG = "kafka_to_s3_archive", "batch_recompute"
SUPERVISOR_DAG, RECONCILE_DAG = "streaming_supervisor", "reconcile_views"
CONTROL_DAG = "streaming_control"
API_PATHS = ("/v1/orders/{n}", "/v1/users/{n}", "/v1/search?q=demo{n}")


class _Steps:
    """Prints each step as it starts and ends, and keeps a summary table."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, float]] = []

    def run(self, title: str, fn: Callable[[], Any]) -> Any:
        print(f"==> {title} ...", flush=True)
        t0 = time.monotonic()
        result = fn()
        elapsed = time.monotonic() - t0
        self.rows.append((title, str(result), elapsed))
        print(f"    {result}  ({elapsed:.1f}s)", flush=True)
        return result

    def table(self) -> str:
        width = max(len(t) for t, _, _ in self.rows)
        lines = [f"{'step':<{width}}  {'seconds':>7}  result"]
        lines += [f"{t:<{width}}  {s:>7.1f}  {r}" for t, r, s in self.rows]
        return "\n".join(lines)


def demo_dir(settings: Settings) -> Path:
    path = settings.state_dir / "demo"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _stack_up() -> str:
    from lae.stack import commands

    if commands.up(argparse.Namespace(services=[])) != 0:
        raise SystemExit("the stack did not come up; see the errors above")
    return "s3, kafka, cassandra, airflow healthy"


def _generate_history(settings: Settings, count: int, day: date) -> str:
    from lae.generate import generate

    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    truth = demo_dir(settings) / f"truth-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.parquet"
    summary = generate(seed=int(time.time()), count=count,
                       history=(start, start + timedelta(days=1)),
                       truth_path=truth, settings=settings, progress_interval=5.0)
    if summary.failed:
        raise SystemExit(f"{summary.failed} events were not delivered: {summary.last_error}")
    return summary.line()


def _run_dag(api, dag_id: str, conf: dict | None = None, timeout: float = 900) -> str:
    api.wait_for_dag(dag_id, timeout=180)
    run_id = api.trigger(dag_id, conf=conf, note="lae demo")
    state = api.wait_for_run(dag_id, run_id, timeout=timeout)
    if state != "success":
        raise SystemExit(f"{dag_id} run {run_id} {state}: {api.task_states(dag_id, run_id)}")
    return f"{run_id}: {state}"


def start_stream(api, settings: Settings) -> str:
    """The supervisor's run, after ``streaming_control`` action=start when someone stopped the
    job on purpose (``lae stream stop``, the UI) or the supervisor gave up on a crash loop:
    the supervisor rightly leaves such a job down, and the demo would wait for it in vain."""
    from lae.stream import store

    status = stream_status(settings)
    notes = []
    if status.get("desired") != store.RUNNING:
        started = _run_dag(api, CONTROL_DAG, conf={"action": "start", "reason": "lae demo"})
        notes.append(f"it was {status.get('desired')} ({status.get('desired_reason')}): "
                     f"{CONTROL_DAG} action=start {started}")
    notes.append(_run_dag(api, SUPERVISOR_DAG))
    return "; ".join(notes)


def stream_status(settings: Settings) -> dict:
    from lae.cassandra import connect
    from lae.stream import supervisor

    session = connect(settings)
    try:
        return supervisor.status(session, settings).as_dict()
    finally:
        session.cluster.shutdown()


def wait_stream_caught_up(settings: Settings, timeout: float = 600) -> str:
    """Until every query of the streaming job has processed ``logs.raw`` up to the end offsets
    it has now (its heartbeats' offsets, not their lag: see ``lae.stream.progress.behind``)."""
    from lae.cassandra import connect
    from lae.kafka import topic_end_offsets
    from lae.stream import store
    from lae.stream.job import query_names
    from lae.stream.progress import behind

    target = topic_end_offsets(settings, settings.raw_topic)
    names = list(query_names(store.JOB).values())
    deadline = time.monotonic() + timeout
    session = connect(settings)
    try:
        while True:
            heartbeats = store.read_heartbeats(session, settings.keyspace)
            missing = {name: behind(heartbeats.get(name, {}).get("offsets"), settings.raw_topic,
                                    target) for name in names}
            if not any(missing.values()):
                return f"caught up: every query reached offsets {target}"
            if time.monotonic() > deadline:
                raise SystemExit(f"the streaming job did not catch up in {timeout:.0f}s: "
                                 f"messages still to process per query {missing}")
            time.sleep(5)
    finally:
        session.cluster.shutdown()


def wait_stream_running(settings: Settings, since: datetime, timeout: float = 600) -> str:
    """Until the job reports progress made after ``since``.

    A new job starts reading at the topic's end (LAE_STREAM_STARTING_OFFSETS=latest: history is
    the batch layer's), so traffic sent before its first micro-batch would never reach the
    realtime tables; the demo waits for the job to be reading before it sends any.
    """
    deadline = time.monotonic() + timeout
    last: dict = {}
    while time.monotonic() < deadline:
        last = stream_status(settings)
        age = last.get("heartbeat_age_s")
        if last.get("alive") and age is not None and \
                datetime.now(UTC) - timedelta(seconds=age) > since:
            return f"running (pid {last.get('pid')}, heartbeat {age:.0f}s old)"
        time.sleep(5)
    raise SystemExit(f"the streaming job did not start in {timeout:.0f}s: {last}")


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _count(counts: Counter) -> None:
    counts[datetime.now(UTC).replace(minute=0, second=0, microsecond=0)] += 1


def _live_traffic(settings: Settings, requests: int, seconds: float) -> str:
    """Drive the example API server; count its answers per (service, hour) as ground truth."""
    import httpx

    from lae.api.settings import ApiSettings

    port = _free_port(settings.host)
    log = (demo_dir(settings) / "api.log").open("ab")
    server = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "lae.api", "--port", str(port)], stdout=log, stderr=log)
    base = f"http://{settings.host}:{port}"
    counts: Counter = Counter()
    service = ApiSettings.from_env().service
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    health = client.get("/health").json()
                    _count(counts)  # a probe that got an answer was logged like any request
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit(f"the API server did not start; see {log.name}") from None
                    time.sleep(0.5)
            pause = seconds / max(requests, 1)
            for n in range(requests):
                hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
                client.get(API_PATHS[n % len(API_PATHS)].format(n=n),
                           headers={"x-user-id": f"u{n % 97}"})
                counts[hour] += 1  # the hour the request started in, as the server stamps it
                time.sleep(pause)
            # The health probes above were requests too: they are logged like any other.
            health = client.get("/health").json()
            _count(counts)
    finally:
        server.terminate()  # flushes the emitter on shutdown
        server.wait(timeout=60)
        log.close()
    stats = health.get("emitter", {})
    record = {"service": service, "hours": {h.isoformat(): c for h, c in counts.items()},
              "emitter": stats}
    path = demo_dir(settings) / f"api-truth-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(record, indent=2))
    return f"{sum(counts.values())} requests to {service} via {base}; emitter {stats}"


def ground_truth(settings: Settings) -> dict[tuple[str, datetime], int]:
    """Every demo run's truth: generator tables (deduplicated) plus the API clients' counts."""
    import pyarrow as pa

    from lae.generator.truth import read_truth
    from lae.serving.audit import truth_hourly

    tables = [read_truth(p) for p in sorted(demo_dir(settings).glob("truth-*.parquet"))]
    truth: Counter = Counter(truth_hourly(pa.concat_tables(tables)) if tables else {})
    for path in sorted(demo_dir(settings).glob("api-truth-*.json")):
        record = json.loads(path.read_text())
        for hour, count in record["hours"].items():
            truth[(record["service"], datetime.fromisoformat(hour))] += count
    return dict(truth)


def _audit(settings: Settings, start: datetime, end: datetime):
    from lae.serving.audit import audit_via_api

    return audit_via_api(settings, ground_truth(settings), start, end)


def run(args: argparse.Namespace) -> int:
    from lae.airflow_api import AirflowApi

    settings = get_settings()
    steps = _Steps()
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    steps.run("start the local stack", _stack_up)
    api = AirflowApi.login(settings)
    steps.run(f"generate {args.events:,} events of {yesterday} into {settings.raw_topic}",
              lambda: _generate_history(settings, args.events, yesterday))
    supervised_at = datetime.now(UTC)
    steps.run(f"Airflow: {SUPERVISOR_DAG} starts the streaming job",
              lambda: start_stream(api, settings))
    steps.run("wait for the streaming job's first progress",
              lambda: wait_stream_running(settings, since=supervised_at))
    steps.run(f"live traffic: {args.requests} requests through the example API server",
              lambda: _live_traffic(settings, args.requests, args.seconds))
    steps.run(f"Airflow: {ARCHIVE_DAG} (Kafka -> S3 master dataset)",
              lambda: _run_dag(api, ARCHIVE_DAG))
    steps.run(f"Airflow: {BATCH_DAG} for {yesterday} (publishes W)",
              lambda: _run_dag(api, BATCH_DAG, conf={"day": yesterday.isoformat()},
                               timeout=1800))
    steps.run("wait for the speed layer to catch up",
              lambda: wait_stream_caught_up(settings))
    steps.run(f"Airflow: {RECONCILE_DAG}", lambda: _run_dag(api, RECONCILE_DAG))
    start = datetime(yesterday.year, yesterday.month, yesterday.day, tzinfo=UTC)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    audits = []

    def audit() -> str:
        audits.append(_audit(settings, start, end))
        return f"{len(audits[0].hours)} service-hours compared, {len(audits[0].problems)} problems"

    steps.run("audit: query API vs ground truth, hour by hour", audit)
    report = audits[0]

    print("\n" + steps.table())
    print("\nPer hour: ground truth vs served (source = the layer that served it)\n")
    print(report.text())
    batch_hours = [h for h in report.hours if h.source == "batch"]
    exact = sum(h.truth == h.api for h in batch_hours)
    print(f"\nbatch hours exact: {exact}/{len(batch_hours)}; realtime hours: "
          f"{sum(h.source == 'rt' for h in report.hours)}; "
          f"{'ALL OK' if report.ok else 'PROBLEMS: ' + str(len(report.problems))}")
    _print_access(settings)
    return 0 if report.ok else 1


def _print_access(settings: Settings) -> None:
    from lae.stack.airflow import admin_credentials

    user, password = admin_credentials(settings)
    print(f"\nAirflow UI: {settings.airflow_url}  (user {user}, password {password})")
    print(f"Dashboard inside Airflow: {settings.airflow_url}/plugin/lae-views  "
          f"(nav entry 'LAE views'; the page itself: {settings.airflow_url}/lae/dashboard/)")
    print(f"Dashboard standalone and the query API: .venv/bin/lae serve -> "
          f"http://{settings.host}:{settings.serve_port}/dashboard/")
    print("The streaming job keeps running under the supervisor; stop it with "
          "`.venv/bin/lae stream stop`, and everything with `.venv/bin/lae stack down`.")
