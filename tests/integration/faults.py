"""Fault-injection helpers shared by the reliability tests (and, through them, the report).

- ``ApiServer``: the example API server (``lae.api``) under a real uvicorn on a free port;
- ``Shipper``: threads that POST generator events to ``/v1/logs`` like a log shipper does
  (same body again after a 503, honouring Retry-After) and remember, per event, how many
  attempts it took and whether it was acknowledged;
- ``kill9``: SIGKILL one service's process group (a crash, not a clean shutdown);
- ``topic_events`` / ``master_event_ids``: what Kafka and the master dataset hold, by event_id;
- ``record_figures``: the scenario's figures, appended to ``$LAE_RELIABILITY_REPORT`` (JSON
  lines) when set, which is how ``bench/reliability/run.py`` builds docs/RELIABILITY.md.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import numpy as np
import uvicorn

TOKEN = "reliability-token"  # noqa: S105 - a test-only bearer token
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiServer:
    """``lae.api.create_app`` with its real Kafka sink, served in a thread."""

    def __init__(self, settings, ack_timeout_s: float = 5.0, retry_after_s: int = 1):
        from lae.api.app import create_app
        from lae.api.settings import ApiSettings

        api_settings = ApiSettings(service="reliability-api", ingest_token=TOKEN,
                                   latency_scale=0, error_rate=0,
                                   ingest_ack_timeout_s=ack_timeout_s,
                                   retry_after_s=retry_after_s)
        self.app = create_app(api_settings, settings=settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(60)


def generator_batches(seed: int, batches: int, size: int, day: datetime) -> list[list[bytes]]:
    """``batches`` lists of ``size`` valid schema-v1 events (lae.generator), event time in
    ``day``; the ground truth is their event_ids."""
    from lae.generator.model import Mix, TrafficModel

    model = TrafficModel(seed, mix=Mix(late=0.0, duplicate=0.0, malformed=0.0))
    start_ms = int(day.replace(tzinfo=UTC).timestamp() * 1000)
    positions = start_ms + np.sort(np.random.default_rng(seed).integers(
        0, 86_400_000, batches * size))
    chunk = model.draw(positions)
    payloads = chunk.payloads
    return [payloads[i * size:(i + 1) * size] for i in range(batches)]


def event_id(payload: bytes) -> str:
    return json.loads(payload)["event_id"]


@dataclass
class ShipStats:
    """Per event_id: attempts (requests that carried it) and whether one was answered 202."""

    attempts: Counter = field(default_factory=Counter)
    acked: set = field(default_factory=set)
    statuses: Counter = field(default_factory=Counter)
    retry_after_missing: int = 0
    first_503_at: float | None = None
    errors: list = field(default_factory=list)


class Shipper:
    """``threads`` workers POST the batches in turn; a 503 is retried with the same body after
    Retry-After (the contract: 503 = nothing acknowledged, send all of it again)."""

    def __init__(self, url: str, batches: list[list[bytes]], threads: int = 2,
                 give_up_s: float = 180.0):
        self.url = url
        self.pending = list(reversed(batches))
        self.lock = threading.Lock()
        self.stats = ShipStats()
        self.give_up_s = give_up_s
        self.done_batches = 0
        self.workers = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> Shipper:
        for w in self.workers:
            w.start()
        return self

    def join(self, timeout: float = 300.0) -> ShipStats:
        deadline = time.monotonic() + timeout
        for w in self.workers:
            w.join(max(0.1, deadline - time.monotonic()))
        assert not any(w.is_alive() for w in self.workers), "shipper did not finish"
        return self.stats

    def _next(self) -> list[bytes] | None:
        with self.lock:
            return self.pending.pop() if self.pending else None

    def _run(self) -> None:
        with httpx.Client(headers={**AUTH, "Content-Type": "application/x-ndjson"},
                          timeout=60) as client:
            while (batch := self._next()) is not None:
                self._ship(client, batch)

    def _ship(self, client: httpx.Client, batch: list[bytes]) -> None:
        body = b"\n".join(batch)
        ids = [event_id(p) for p in batch]
        deadline = time.monotonic() + self.give_up_s
        while True:
            with self.lock:
                self.stats.attempts.update(ids)
            try:
                r = client.post(self.url + "/v1/logs", content=body)
                status, retry_after = r.status_code, r.headers.get("Retry-After")
            except httpx.HTTPError as exc:  # a dropped connection is "not acknowledged" too
                status, retry_after = 0, None
                with self.lock:
                    self.stats.errors.append(repr(exc))
            with self.lock:
                self.stats.statuses[status] += 1
                if status == 202:
                    assert r.json()["accepted"] == len(batch), r.text
                    self.stats.acked.update(ids)
                    self.done_batches += 1
                    return
                if status == 503:
                    if self.stats.first_503_at is None:
                        self.stats.first_503_at = time.monotonic()
                    if retry_after is None:
                        self.stats.retry_after_missing += 1
            if status not in (0, 503) or time.monotonic() > deadline:
                with self.lock:
                    self.stats.errors.append(f"gave up on a batch: status {status}")
                return
            time.sleep(float(retry_after or 1))


def kill9(service) -> int:
    """SIGKILL the service's whole process group (no shutdown hook runs); returns its pid."""
    pid = service.process.pid()
    assert pid is not None, f"{service.name} is not running"
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while service.process.is_running():
        assert time.monotonic() < deadline, f"{service.name} survived SIGKILL"
        time.sleep(0.1)
    return pid


def topic_events(bootstrap: str, topic: str) -> list[tuple[int, int, bytes]]:
    """Every record of ``topic`` from the beginning to the current end: (partition, offset,
    value)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        out = []
        deadline = time.monotonic() + 120
        while any(consumer.position(tp) < end[tp] for tp in parts):
            assert time.monotonic() < deadline, "could not read the topic to its end"
            for tp, records in consumer.poll(timeout_ms=500).items():
                out += [(tp.partition, r.offset, r.value) for r in records if r.offset < end[tp]]
        return out
    finally:
        consumer.close()


def master_objects(s3, bucket: str, prefix: str = "master/") -> dict[str, tuple[str, int]]:
    """key → (ETag, size) of every object under ``prefix``."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = (obj["ETag"], obj["Size"])
    return out


def master_event_ids(s3, bucket: str) -> Counter:
    """event_id → rows in the master dataset's Parquet files (read with pyarrow)."""
    import pyarrow.parquet as pq

    from lae.archive.layout import MASTER_PREFIX

    ids: Counter = Counter()
    for key in master_objects(s3, bucket, MASTER_PREFIX + "/"):
        if key.endswith(".parquet"):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            ids.update(pq.read_table(io.BytesIO(body), columns=["event_id"])
                       .column("event_id").to_pylist())
    return ids


def record_figures(scenario: str, **figures) -> None:
    """Append one scenario's measured figures for the reliability report (if asked to)."""
    path = os.environ.get("LAE_RELIABILITY_REPORT")
    if not path:
        return
    load1, load5, _ = os.getloadavg()
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
    line = {"scenario": scenario, "test": test,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "loadavg_1m": round(load1, 2), "loadavg_5m": round(load5, 2), **figures}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line, sort_keys=True) + "\n")


def private_airflow_db(cfg, tmp_path) -> str:
    """A migrated Airflow metadata DB of the caller's own; returns its SQLAlchemy URL, for
    ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` of a ``dag.test()`` process.

    ``dag.test()`` in the stack's own DB is visible to the stack's live scheduler (DAGs are
    unpaused at creation): the scheduler queues the test run's SCHEDULED task instances to its
    own executor, where they run with the stack's environment (bucket ``lae-lake``, the stack's
    connections) instead of the test's, racing ``dag.test``. The stack DB is copied (SQLite
    backup API: consistent while the scheduler writes) so that migrating is quick.
    """
    import sqlite3
    import subprocess

    from lae.stack.airflow import airflow_env, venv_bin

    stack_db = cfg.service_dir("airflow") / "airflow.db"
    private_db = tmp_path / "airflow-private.db"
    if stack_db.exists():
        src, dst = sqlite3.connect(stack_db), sqlite3.connect(private_db)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
    url = f"sqlite:///{private_db}"
    env = {**os.environ, **airflow_env(cfg), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url}
    subprocess.run([str(venv_bin() / "airflow"), "db", "migrate"], env=env,  # noqa: S603
                   check=True, capture_output=True, timeout=600)
    return url


def private_airflow_env(cfg, tmp_path) -> dict[str, str]:
    """``airflow_env(cfg)`` + the connections as AIRFLOW_CONN_*, on ``private_airflow_db``."""
    from lae.stack.airflow import airflow_env, connections

    env = {**os.environ, **airflow_env(cfg),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": private_airflow_db(cfg, tmp_path)}
    for conn_id, conn in connections(cfg).items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
    return env
