"""Start, find and stop the background processes of the local stack.

Each service runs in its own session (process group) so that ``down`` can stop it and every
child it forked, and so that it survives the ``lae stack up`` command that started it. A pid
file under the service's state dir records only processes this tool started; ``down`` never
touches anything else.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


class ServiceError(RuntimeError):
    """A service failed to start or to become healthy; the message names it and its log."""


@dataclass
class ManagedProcess:
    name: str
    state_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.state_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid from the pid file if that process is still alive, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        if _is_zombie(pid):
            return None
        return pid

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(
        self,
        cmd: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> int:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, **(env or {})}
        with open(self.log_file, "ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(cmd)}\n"
                      .encode())
            log.flush()
            proc = subprocess.Popen(  # noqa: S603 - argv list built by the stack, no shell
                list(cmd),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=full_env,
                cwd=str(cwd) if cwd else None,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        return proc.pid

    def stop(self, timeout: float = 60.0) -> bool:
        """SIGTERM the process group, wait, then SIGKILL. Returns True if something was stopped."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _group_alive(pid):
                break
            time.sleep(0.2)
        else:
            _signal_group(pid, signal.SIGKILL)
            time.sleep(0.5)
        self.pid_file.unlink(missing_ok=True)
        return True

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # Zombies of our own children still count as "in the group"; reap what we can.
    try:
        while os.waitpid(-pgid, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
    return any(not _is_zombie(p) for p in _group_members(pgid))


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pgrp is the 5th field, after "pid (comm) state ppid"; comm may contain spaces.
        after_comm = stat.rsplit(")", 1)[1].split()
        if int(after_comm[2]) == pgid:
            members.append(int(entry.name))
    return members


def _is_zombie(pid: int) -> bool:
    """True when nothing of the process is alive any more.

    A JVM's main thread can be a zombie while other threads still run and hold its ports
    for a moment, so every thread (/proc/<pid>/task/*) must be dead, not only the leader.
    """
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return True
    for task in tasks:
        try:
            state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            return False
    return True


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_ports_free(service: str, host: str, ports: Sequence[int], log_file: Path) -> None:
    """Fail fast, naming the service and its log, when another process already owns a port."""
    for port in ports:
        if port_open(host, port):
            raise ServiceError(
                f"{service}: port {host}:{port} is already in use by another process "
                f"(not started by lae); free it or set the LAE_* port variable. Log: {log_file}"
            )


def wait_until(
    service: str,
    check: Callable[[], bool],
    timeout: float,
    log_file: Path,
    process: ManagedProcess | None = None,
    interval: float = 1.0,
) -> float:
    """Poll ``check`` until it returns True; returns seconds waited, raises ServiceError."""
    start = time.monotonic()
    last_error: Exception | None = None
    while True:
        try:
            if check():
                return time.monotonic() - start
        except Exception as exc:  # noqa: BLE001 - any failure of a health probe means "not yet"
            last_error = exc
        if process is not None and not process.is_running():
            raise ServiceError(f"{service}: process exited during start-up; see {log_file}")
        if time.monotonic() - start > timeout:
            detail = f" (last error: {last_error})" if last_error else ""
            raise ServiceError(
                f"{service}: not healthy after {timeout:.0f}s{detail}; see {log_file}"
            )
        time.sleep(interval)


def rss_mib(pid: int) -> float:
    """Resident memory of a process group (the service and its children), in MiB."""
    total_kib = 0
    for member in _group_members(pid) or [pid]:
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024
