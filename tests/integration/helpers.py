"""Helpers shared by integration tests."""

from __future__ import annotations

import threading
import time

from lae.scratch import fresh_keyspace_and_bucket  # noqa: F401 - re-exported for tests


def restart_broker_mid_run(kafka_service, producer, worker: threading.Thread, count: int,
                           context, outage_s: float = 4.0):
    """Once a quarter of ``count`` is delivered, stop the broker for ``outage_s`` and start it
    again; then wait for ``worker`` (the thread sending) to finish. Returns the producer's
    stats at the moment the broker went down. ``context`` is shown if the run stalls."""
    deadline = time.monotonic() + 60
    while producer.stats().delivered < count // 4:
        assert time.monotonic() < deadline and worker.is_alive(), (producer.stats(), context)
        time.sleep(0.1)
    kafka_service.down()
    down_at = producer.stats()
    time.sleep(outage_s)
    kafka_service.up()
    worker.join(timeout=300)
    assert not worker.is_alive(), "sending did not finish after the broker came back"
    return down_at


def wait_for(predicate, timeout: float, what: str, interval: float = 2.0):
    """Poll ``predicate`` until it returns something truthy; return that, or fail naming
    ``what`` (and the last value seen) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def airflow_task_env(cfg) -> dict[str, str]:
    """Environment for a fresh interpreter running DAG code against ``cfg``'s stack: Airflow's
    config (this stack's DB) and the connections as AIRFLOW_CONN_* variables, exactly as a
    deployment would provide them."""
    import json
    import os

    from lae.stack.airflow import airflow_env, connections

    env = {**os.environ, **airflow_env(cfg)}
    for conn_id, conn in connections(cfg).items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
    return env


def truth_minute_totals(truth, days=None) -> dict[tuple, tuple[int, int, int]]:
    """(service, minute, path, status_class) → (requests, errors, bytes) from a generator
    ground-truth table: delivered, well-formed messages, de-duplicated by event_id, by event
    time (optionally only the event dates in ``days``) — what the batch views must hold."""
    from collections import defaultdict
    from datetime import UTC

    seen, out = set(), defaultdict(lambda: [0, 0, 0])
    for r in truth.select(["kind", "event_id", "ts", "service", "path", "status", "bytes",
                           "error"]).to_pylist():
        if r["kind"] == "malformed" or r["error"] is not None or r["event_id"] in seen:
            continue
        ts = r["ts"].astimezone(UTC)
        if days is not None and ts.date() not in days:
            continue
        seen.add(r["event_id"])
        acc = out[(r["service"], ts.replace(second=0, microsecond=0), r["path"],
                   f"{r['status'] // 100}xx")]
        acc[0] += 1
        acc[1] += r["status"] >= 500
        acc[2] += r["bytes"]
    return {k: tuple(v) for k, v in out.items()}

