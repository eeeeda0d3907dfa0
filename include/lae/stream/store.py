"""The speed layer's Cassandra tables: rt_ upserts, late counts, heartbeat, control, restarts.

Writes are upserts of complete values keyed so that a replayed micro-batch overwrites what its
first attempt wrote (no counters). The read functions at the bottom are what the serving layer
and the supervisor call: ``read_heartbeats``, ``late_events``, ``desired_state``,
``restarts_since``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta

from lae.stream.progress import Heartbeat
from lae.views import HOUR_COLUMNS, MINUTE_COLUMNS

RT_TABLES = {"minute": ("rt_metrics_minute", MINUTE_COLUMNS),
             "hour": ("rt_metrics_hour", HOUR_COLUMNS)}
JOB = "speed_views"
RUNNING, STOPPED, CRASH_LOOP = "running", "stopped", "crash_loop"
# In-flight writes from the driver: hides the round trip without flooding one local node.
WRITE_CONCURRENCY = 32


def _utc(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, UTC)


def upsert_cql(keyspace: str, bucket: str) -> str:
    table, columns = RT_TABLES[bucket]
    return (f"INSERT INTO {keyspace}.{table} ({', '.join(columns)}) "  # noqa: S608
            f"VALUES ({', '.join('?' for _ in columns)})")


def prepare_upsert(session, keyspace: str, bucket: str):
    """The prepared rt upsert of a bucket, marked idempotent: a complete row under its full
    key, so a timed-out one may be resent (lae.cassandra.IdempotentWriteRetryPolicy)."""
    from lae.cassandra import idempotent

    return idempotent(session.prepare(upsert_cql(keyspace, bucket)))


def rt_values(row, bucket: str) -> tuple:
    """A view row (the bucket start as epoch millis in ``bucket_ms``) → INSERT values.

    Collected timestamps would come back in the driver's local zone; millis do not.
    """
    return (row["service"], row["day"], _utc(row["bucket_ms"]), row["path"],
            row["status_class"], row["requests"], row["errors"], row["client_errors"],
            row["bytes"], row["latency_sum"], row["latency_max"], list(row["latency_hist"]),
            None if row["users_hll"] is None else bytes(row["users_hll"]))


def execute_all(session, statement, params: Sequence[tuple]) -> None:
    """Run one prepared statement over many parameter tuples; the first error raises (and
    fails the micro-batch, which Spark then replays from the checkpoint)."""
    from cassandra.concurrent import execute_concurrent_with_args

    if params:
        execute_concurrent_with_args(session, statement, params, concurrency=WRITE_CONCURRENCY,
                                     raise_on_first_error=True)


def write_late_events(session, keyspace: str, query_name: str, batch_id: int,
                      counts: Iterable[tuple[str, date, int]]) -> None:
    stmt = session.prepare(
        f"INSERT INTO {keyspace}.stream_late_events (service, day, query_name, batch_id, "  # noqa: S608
        "events) VALUES (?, ?, ?, ?, ?)")
    execute_all(session, stmt, [(s, d, query_name, batch_id, n) for s, d, n in counts])


def write_heartbeat(session, keyspace: str, hb: Heartbeat, trigger_ms: int,
                    now: datetime | None = None) -> None:
    values = asdict(hb)
    cols = [*values, "trigger_ms", "updated_at"]
    session.execute(
        f"INSERT INTO {keyspace}.stream_heartbeat ({', '.join(cols)}) "  # noqa: S608
        f"VALUES ({', '.join('%s' for _ in cols)})",
        (*values.values(), trigger_ms, now or datetime.now(UTC)))


def touch_heartbeat(session, keyspace: str, query_name: str, run_id: str,
                    now: datetime | None = None) -> None:
    """Say 'the driver is alive' while no micro-batch runs (no new data): only updated_at."""
    session.execute(
        f"UPDATE {keyspace}.stream_heartbeat SET updated_at = %s, run_id = %s "  # noqa: S608
        "WHERE query_name = %s", (now or datetime.now(UTC), run_id, query_name))


# -- control and restarts ----------------------------------------------------------------------

def set_desired_state(session, keyspace: str, state: str, reason: str, by: str,
                      job: str = JOB) -> None:
    if state not in (RUNNING, STOPPED, CRASH_LOOP):
        raise ValueError(f"unknown desired state {state!r}")
    session.execute(
        f"INSERT INTO {keyspace}.stream_control (job, desired, reason, updated_by, "  # noqa: S608
        "updated_at) VALUES (%s, %s, %s, %s, %s)",
        (job, state, reason, by, datetime.now(UTC)))


def desired_state(session, keyspace: str, job: str = JOB) -> tuple[str, str | None]:
    """(desired state, reason); a job nobody ever stopped is meant to run."""
    row = session.execute(
        f"SELECT desired, reason FROM {keyspace}.stream_control WHERE job = %s",  # noqa: S608
        (job,)).one()
    return (RUNNING, None) if row is None else (row.desired, row.reason)


def record_restart(session, keyspace: str, owner: str, pid: int | None, reason: str,
                   job: str = JOB, now: datetime | None = None) -> None:
    session.execute(
        f"INSERT INTO {keyspace}.stream_restarts (job, started_at, owner, pid, reason) "  # noqa: S608
        "VALUES (%s, %s, %s, %s, %s)", (job, now or datetime.now(UTC), owner, pid, reason))


def restarts_since(session, keyspace: str, since: datetime, job: str = JOB) -> list:
    return list(session.execute(
        f"SELECT started_at, owner, pid, reason FROM {keyspace}.stream_restarts "  # noqa: S608
        "WHERE job = %s AND started_at >= %s", (job, since)))


# -- reads for the serving layer and the supervisor --------------------------------------------

def read_heartbeats(session, keyspace: str) -> dict[str, dict]:
    """query_name → its heartbeat row as a dict (offsets and lag_by_partition parsed)."""
    out = {}
    for row in session.execute(f"SELECT * FROM {keyspace}.stream_heartbeat"):  # noqa: S608
        values = row._asdict()
        for name in ("offsets", "lag_by_partition"):
            values[name] = json.loads(values[name]) if values.get(name) else {}
        for name in ("last_progress_at", "updated_at", "watermark"):
            if values.get(name) is not None:
                values[name] = values[name].replace(tzinfo=UTC)
        out[row.query_name] = values
    return out


def heartbeat_age(heartbeats: dict[str, dict], query_names: Iterable[str],
                  now: datetime | None = None) -> float | None:
    """Seconds since the stalest of these queries last reported (None if one never did)."""
    now = now or datetime.now(UTC)
    ages = []
    for name in query_names:
        hb = heartbeats.get(name)
        if hb is None or hb.get("updated_at") is None:
            return None
        ages.append((now - hb["updated_at"]).total_seconds())
    return max(ages) if ages else None


def late_events(session, keyspace: str, service: str, day: date) -> int:
    """How many valid events of (service, day) arrived behind the streaming watermark, so the
    realtime views do not count them (summed over micro-batches and queries)."""
    rows = session.execute(
        f"SELECT events FROM {keyspace}.stream_late_events "  # noqa: S608
        "WHERE service = %s AND day = %s", (service, day))
    return sum(int(r.events) for r in rows)


def hour_ago(now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) - timedelta(hours=1)
