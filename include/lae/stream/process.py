"""The local driver process: its pid file, whether it is alive, starting it detached.

The pid file (``<state_dir>/stream/<job>.json``) records pid, the process's start time (so a
recycled pid is not mistaken for the job), the lease owner the job runs as, and its log file.
A zombie counts as dead: a supervisor that runs in a long-lived process (tests, ``dag.test``)
is the parent of the job it started and may not have reaped it yet.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from lae.config import Settings

JOB_SCRIPT = "speed_views.py"


@dataclass(frozen=True)
class PidRecord:
    pid: int
    create_time: float
    owner: str
    started_at: str  # ISO 8601, UTC
    log: str
    master: str

    @property
    def started(self) -> datetime:
        return datetime.fromisoformat(self.started_at)


def stream_dir(settings: Settings) -> Path:
    return settings.state_dir / "stream"


def pid_path(settings: Settings, job: str) -> Path:
    return stream_dir(settings) / f"{job}.json"


def log_path(settings: Settings, job: str) -> Path:
    return stream_dir(settings) / f"{job}.log"


def read_pid(settings: Settings, job: str) -> PidRecord | None:
    try:
        return PidRecord(**json.loads(pid_path(settings, job).read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def is_alive(record: PidRecord | None) -> bool:
    """The recorded process still runs (same pid *and* start time, not a zombie)."""
    import psutil

    if record is None:
        return False
    try:
        proc = psutil.Process(record.pid)
        return (abs(proc.create_time() - record.create_time) < 1.0
                and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def launch_command(settings: Settings) -> list[str]:
    """The job's driver: this interpreter (the one with ``lae`` installed) running the entry
    point directly; pyspark starts its JVM from there."""
    return [sys.executable, str(settings.home / "spark_jobs" / JOB_SCRIPT)]


def start_detached(settings: Settings, job: str, owner: str, master: str,
                   extra_env: dict[str, str] | None = None) -> PidRecord:
    """Start the job in its own session (it outlives the caller: an Airflow task, a CLI call),
    output appended to its log; write and return its pid record."""
    import psutil

    folder = stream_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    log = log_path(settings, job)
    env = {**os.environ, **(extra_env or {}), "LAE_STREAM_OWNER": owner,
           "LAE_SPARK_MASTER": master}
    with log.open("ab") as out:
        out.write(f"\n=== {datetime.now(UTC).isoformat()} start owner={owner} master={master}\n"
                  .encode())
        out.flush()
        proc = subprocess.Popen(  # noqa: S603 - fixed argv: this interpreter and the job script
            launch_command(settings), stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, env=env, cwd=str(settings.home), start_new_session=True)
    record = PidRecord(pid=proc.pid, create_time=psutil.Process(proc.pid).create_time(),
                       owner=owner, started_at=datetime.now(UTC).isoformat(), log=str(log),
                       master=master)
    tmp = pid_path(settings, job).with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record)))
    tmp.replace(pid_path(settings, job))  # atomic: a reader never sees half a record
    return record


def terminate(record: PidRecord, timeout_s: float = 60.0) -> bool:
    """SIGTERM the driver (it stops its queries and Spark, and its JVM exits with it), SIGKILL
    the whole group after ``timeout_s``; True once nothing of it runs."""
    if is_alive(record):
        try:
            os.kill(record.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and group_members(record):
        time.sleep(0.5)
    kill(record)
    # SIGKILL is delivered asynchronously: a process can still show as running for a moment
    # before the kernel turns it into a zombie, so give it a few seconds before saying no.
    deadline = time.monotonic() + 5.0
    while group_members(record) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not group_members(record)


def group_members(record: PidRecord) -> list:
    """Live processes of the job's session (driver and JVM): started with
    ``start_new_session``, their process group id is the driver's pid. Processes older than
    the record belong to an earlier group that reused the id, not to this job."""
    import psutil

    members = []
    for proc in psutil.process_iter(["pid", "create_time", "status"]):
        try:
            if (os.getpgid(proc.pid) == record.pid
                    and proc.info["create_time"] >= record.create_time - 1.0
                    and proc.info["status"] != psutil.STATUS_ZOMBIE):
                members.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return members


def kill(record: PidRecord) -> None:
    """SIGKILL the driver and its JVM: no clean-up, as a crash would leave it."""
    import psutil

    for proc in group_members(record):
        try:
            proc.kill()
        except psutil.Error:
            pass
