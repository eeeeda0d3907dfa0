"""Keep the streaming job alive, alone, and stopped when the operator says so.

``supervise`` is one check of the ``streaming_supervisor`` DAG (every 5 minutes) and of
``lae stream start``; it never waits for the job, it starts it detached. In order:

1. desired state (``stream_control``): 'stopped' (the operator) or 'crash_loop' (an earlier
   escalation) → leave it alone;
2. liveness: the local pid (``lae.stream.process``) and the heartbeat age; a live process that
   stopped reporting after the start-up grace is hung → killed and restarted; a job run
   elsewhere (another worker, by hand) shows as the lease held with a fresh heartbeat;
3. alive → alert when the consumer lag is above ``stream_lag_alert``;
4. down → crash-loop rule: ``stream_max_restarts_per_hour`` starts within the last hour → set
   'crash_loop', escalate (critical alert), start nothing until an operator starts it again;
5. take the lease (or take it over from the dead local owner), start the job detached with that
   owner, record the start, alert. A concurrent supervisor loses the lease race and starts
   nothing.

Cluster note: Spark standalone cannot run Python applications in cluster deploy mode, so the
driver always runs in client mode on the host that started it (``spark_default``'s master
gets the executors). With several Airflow workers only the one that started the job sees its
pid; the others rely on the lease and the heartbeat, which work across hosts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from lae.config import Settings
from lae.stream import process, store
from lae.stream.job import query_names
from lae.stream.lease import LeaseHeldError, StreamLease, default_owner

log = logging.getLogger(__name__)

AlertFn = Callable[..., object]
_UNREAD = object()  # status(): the caller has not read the pid file


@dataclass(frozen=True)
class Status:
    desired: str
    desired_reason: str | None
    pid: int | None
    alive: bool
    owner: str | None
    lease_holder: str | None
    heartbeat_age_s: float | None
    lag: int | None
    log: str | None

    def as_dict(self) -> dict:
        return asdict(self)


def master_from_connection(host: str | None, port: int | None) -> str:
    """The Spark master URL of a ``spark_default`` connection (host 'local[*]', 'yarn',
    'spark://h' or a bare host name)."""
    host = (host or "local[*]").strip()
    if host.startswith("local") or host in ("yarn",):
        return host
    if "://" not in host:
        host = f"spark://{host}"
    return f"{host}:{port}" if port else host


def status(session, settings: Settings, job: str = store.JOB,
           now: datetime | None = None, record: object = _UNREAD) -> Status:
    """The job's state; ``record`` is the pid file as the caller already read it (None: no
    file; read here if not given), so that liveness and the owner come from one reading."""
    if record is _UNREAD:
        record = process.read_pid(settings, job)
    desired, reason = store.desired_state(session, settings.keyspace, job)
    heartbeats = store.read_heartbeats(session, settings.keyspace)
    names = list(query_names(job).values())
    lags = _lags(settings, heartbeats, names)
    lease = StreamLease(session, settings.keyspace, job, settings.stream_lease_ttl_s)
    return Status(
        desired=desired, desired_reason=reason,
        pid=None if record is None else record.pid,
        alive=process.is_alive(record),
        owner=None if record is None else record.owner,
        lease_holder=lease.holder(),
        heartbeat_age_s=store.heartbeat_age(heartbeats, names, now),
        lag=max(lags) if lags else None,
        log=None if record is None else record.log,
    )


def _lags(settings: Settings, heartbeats: dict, names: list[str]) -> list[int]:
    """Per query, messages of ``logs.raw`` it has not processed: the topic's end offsets now
    minus where its last micro-batch ended (``progress.behind``). Without Kafka, the lag the
    heartbeats reported (which reads 0 between two slow micro-batches)."""
    from lae.kafka import topic_end_offsets
    from lae.stream.progress import behind

    try:
        target = topic_end_offsets(settings, settings.raw_topic)
    except Exception:  # noqa: BLE001 - a status without Kafka still has to answer
        log.warning("Kafka unreachable: lag from the heartbeats only", exc_info=True)
        return [heartbeats[n]["lag"] for n in names if n in heartbeats and
                heartbeats[n].get("lag") is not None]
    return [behind(heartbeats.get(n, {}).get("offsets"), settings.raw_topic, target)
            for n in names if n in heartbeats]


def _alert(alert: AlertFn | None, kind: str, title: str, details: dict, severity: str,
           context: dict) -> None:
    if alert is None:
        from lae.alerts import send_alert as alert
    alert(kind, title, details, severity=severity, **context)


def supervise(session, settings: Settings, master: str = "local[*]", job: str = store.JOB,
              alert: AlertFn | None = None, alert_context: dict | None = None,
              ignore_crash_loop: bool = False, extra_env: dict[str, str] | None = None,
              now: datetime | None = None) -> dict:
    """One supervision pass; returns what it found and did (``action``)."""
    ks, ctx = settings.keyspace, alert_context or {}
    now = now or datetime.now(UTC)
    # One reading of the pid file for the whole pass: a concurrent pass may replace it with the
    # job it just started, and a second reading here would take that live job for the dead one
    # (kill it, take its lease over, start another).
    record = process.read_pid(settings, job)
    st = status(session, settings, job, now, record)
    result = {"status": st.as_dict()}
    if st.desired != store.RUNNING and not ignore_crash_loop:
        return {**result, "action": "left_stopped"}

    fresh = st.heartbeat_age_s is not None and st.heartbeat_age_s <= settings.stream_stale_after_s
    if st.alive:
        in_grace = (now - record.started).total_seconds() < settings.stream_startup_grace_s
        if fresh or in_grace:
            if st.lag is not None and st.lag > settings.stream_lag_alert:
                _alert(alert, "stream_lag", f"{job}: consumer lag {st.lag} messages",
                       {"lag": st.lag, "threshold": settings.stream_lag_alert}, "warning", ctx)
            return {**result, "action": "running"}
        log.warning("%s pid %d alive but heartbeat %.0fs old: killing it", job, record.pid,
                    st.heartbeat_age_s or -1)
        process.kill(record)
        reason = f"hung: heartbeat {st.heartbeat_age_s}s old"
    else:
        if record is not None:
            process.kill(record)  # a driver that died may leave its JVM running
        dead_owner = None if record is None else record.owner
        if st.lease_holder is not None and st.lease_holder != dead_owner:
            # Someone else's instance: running (fresh heartbeat) or starting; its lease expires
            # by itself if it died.
            return {**result, "action": "running_elsewhere" if fresh else "lease_held"}
        reason = "not running" if record is None else f"process {record.pid} died"

    if not ignore_crash_loop:
        recent = store.restarts_since(session, ks, store.hour_ago(now), job)
        if len(recent) >= settings.stream_max_restarts_per_hour:
            store.set_desired_state(session, ks, store.CRASH_LOOP,
                                    f"{len(recent)} starts within an hour", "supervisor", job)
            _alert(alert, "stream_crash_loop",
                   f"{job}: {len(recent)} starts within an hour; not restarting",
                   {"starts": len(recent), "last_reason": reason,
                    "resume": "trigger streaming_control with action=start"}, "critical", ctx)
            return {**result, "action": "crash_loop"}

    started = start_with_lease(session, settings, master, job, reason,
                               dead_owner=None if record is None else record.owner,
                               extra_env=extra_env)
    if started is None:
        return {**result, "action": "lease_held"}
    _alert(alert, "stream_restart", f"{job} started ({reason})",
           {"pid": started.pid, "owner": started.owner, "reason": reason,
            "log": started.log, "master": master}, "warning", ctx)
    return {**result, "action": "started", "pid": started.pid, "owner": started.owner,
            "reason": reason}


def start_with_lease(session, settings: Settings, master: str, job: str, reason: str,
                     dead_owner: str | None = None,
                     extra_env: dict[str, str] | None = None) -> process.PidRecord | None:
    """Take the lease for a new owner and start the job as that owner; None if it is held."""
    lease = StreamLease(session, settings.keyspace, job, settings.stream_lease_ttl_s,
                        owner=default_owner())
    if dead_owner is not None and lease.take_over(dead_owner):
        pass
    else:
        try:
            lease.acquire()
        except LeaseHeldError:
            return None
    record = process.start_detached(settings, job, lease.owner, master, extra_env)
    store.record_restart(session, settings.keyspace, lease.owner, record.pid, reason, job)
    log.info("started %s pid %d as %s (%s)", job, record.pid, lease.owner, reason)
    return record


def stop(session, settings: Settings, by: str, reason: str = "stopped by operator",
         job: str = store.JOB, timeout_s: float = 90.0) -> dict:
    """Mark the job stopped (the supervisor then leaves it alone) and stop the local process;
    a job running on another host stops itself within seconds on seeing the desired state."""
    store.set_desired_state(session, settings.keyspace, store.STOPPED, reason, by, job)
    record = process.read_pid(settings, job)
    stopped = True if record is None else process.terminate(record, timeout_s)
    return {"action": "stopped", "pid": None if record is None else record.pid,
            "gone": stopped}


def start(session, settings: Settings, by: str, master: str = "local[*]",
          job: str = store.JOB, alert: AlertFn | None = None,
          alert_context: dict | None = None, extra_env: dict[str, str] | None = None) -> dict:
    """Mark the job running (clears 'stopped' and 'crash_loop') and start it if it is down."""
    store.set_desired_state(session, settings.keyspace, store.RUNNING, f"started by {by}", by,
                            job)
    return supervise(session, settings, master, job, alert=alert, alert_context=alert_context,
                     ignore_crash_loop=True, extra_env=extra_env)
