"""lae.stream.process on real OS processes (no Spark): liveness, pid reuse, zombies, kill."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, replace

import psutil
import pytest

from lae.config import get_settings
from lae.stream import process


@pytest.fixture
def cfg(tmp_path):
    return replace(get_settings(), state_dir=tmp_path)


def _record(proc, owner="o1") -> process.PidRecord:
    return process.PidRecord(pid=proc.pid, create_time=psutil.Process(proc.pid).create_time(),
                             owner=owner, started_at="2026-11-26T08:00:00+00:00", log="x",
                             master="local[2]")


def test_alive_until_killed_and_a_zombie_counts_as_dead():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],  # noqa: S603
                            start_new_session=True)
    record = _record(proc)
    assert process.is_alive(record)
    assert [p.pid for p in process.group_members(record)] == [proc.pid]
    process.kill(record)
    time.sleep(0.5)
    # Not reaped yet: a zombie child of this process, which must not count as a running job.
    assert psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE
    assert not process.is_alive(record) and not process.group_members(record)
    proc.wait()


def test_a_recycled_pid_is_not_the_job():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # noqa: S603
    try:
        stale = replace(_record(proc), create_time=psutil.Process(proc.pid).create_time() - 100)
        assert not process.is_alive(stale)
        assert not process.is_alive(None)
    finally:
        proc.kill()
        proc.wait()


def test_terminate_sigterm_then_sigkill_for_a_process_that_ignores_it():
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)  # noqa: S603
    time.sleep(0.5)
    assert process.terminate(_record(proc), timeout_s=1.0)
    assert proc.wait(timeout=10) == -9


def test_pid_file_round_trip(cfg):
    assert process.read_pid(cfg, "j") is None
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],  # noqa: S603
                            start_new_session=True)
    try:
        record = _record(proc)
        process.stream_dir(cfg).mkdir(parents=True)
        process.pid_path(cfg, "j").write_text(json.dumps(asdict(record)))
        assert process.read_pid(cfg, "j") == record
    finally:
        proc.kill()
        proc.wait()
