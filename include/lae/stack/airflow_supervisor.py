"""The local Airflow's process supervisor: ``python -m lae.stack.airflow_supervisor``.

It migrates the metadata DB, imports the stack's connections, then runs the four components
(``lae.stack.airflow.COMPONENTS``), one log file each, in one process group that ``lae stack
down`` stops.

A component that exits is started again, as the Docker setup's ``restart: unless-stopped``
does: Airflow's scheduler re-raises any error of its loop and exits (a process manager is
expected to restart it); on SQLite a write that follows a read in one transaction can fail at
once with "database is locked", whatever the busy timeout. Before, one exit of any component
stopped the whole local Airflow: in one CI run it went away in the middle of the suite and the
remaining Airflow tests failed on refused connections, with no record of which component had
exited. Every exit is now logged here with the last lines of the component's log and recorded
as an alert (the dashboard's health view reads the alerts file). A component that keeps
exiting (``RestartBudget``) is a fault to stop on, not one to hide: the supervisor then stops
everything and exits non-zero, and the stack reports Airflow as down.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from lae.stack.airflow import COMPONENTS, CONNECTIONS_FILE, venv_bin

LOG_TAIL_LINES = 20


@dataclass
class RestartBudget:
    """How often one component may exit before the supervisor gives up on it.

    ``limit`` exits within ``window_s`` are restarted, after a growing delay (so a component
    that fails at once does not spin); one more within the window spends the budget.
    """

    limit: int = 5
    window_s: float = 600.0
    delays_s: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0)
    _exits: deque[float] = field(default_factory=deque)

    def on_exit(self, now: float) -> float | None:
        """Record an exit at ``now``; the delay before restarting, or None to give up."""
        while self._exits and now - self._exits[0] >= self.window_s:
            self._exits.popleft()
        self._exits.append(now)
        if len(self._exits) > self.limit:
            return None
        return self.delays_s[min(len(self._exits), len(self.delays_s)) - 1]

    @property
    def recent_exits(self) -> int:
        return len(self._exits)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES, window: int = 64 * 1024) -> str:
    """The last ``lines`` lines of ``path``, from its last ``window`` bytes only: a local
    stack's component logs only grow, and a crash should not wait on reading one whole."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - window))
            return b"".join(deque(f, maxlen=lines)).decode(errors="replace")
    except OSError as exc:
        return f"(log unreadable: {exc})"


def _alert(name: str, code: int, action: str, log_path: Path, severity: str) -> None:
    # Imported here: the alerts module imports the Task SDK, which the supervisor's normal
    # path does not need. channels=[]: looking up the webhook/SMTP connections would need the
    # metadata DB that may be what just failed; the alert still reaches the alerts file and
    # the supervisor's log.
    from lae.alerts.notifier import send_alert

    send_alert("airflow_component_exited", f"Airflow {name} exited with code {code}; {action}",
               {"component": name, "exit_code": code, "log": str(log_path),
                "log_tail": log_tail(log_path, 10)},
               severity=severity, channels=[])


def leftovers_in_group(pgid: int) -> list[psutil.Process]:
    """Processes of process group ``pgid`` whose parent is not in it, and their descendants,
    except the calling process: what a component that exited left behind.

    A component's children (the scheduler's LocalExecutor workers and the task processes they
    run) outlive it, reparented out of the group; idle, they would wait on their dead parent's
    queue for ever and hold up ``lae stack down`` (it waits for the whole group) by a minute.
    A process that detached into a session of its own (the streaming job) is not in the group.
    """
    me = os.getpid()
    members: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["ppid"]):
        try:
            if os.getpgid(proc.pid) == pgid:
                members[proc.pid] = proc
        except ProcessLookupError:
            continue
    found: list[psutil.Process] = []
    for pid, proc in members.items():
        if pid != me and proc.info["ppid"] not in members:
            try:
                found += [proc, *proc.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
    return found


def stop_processes(procs: list[psutil.Process], grace_s: float = 5.0) -> None:
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue


class Supervisor:
    """Runs ``commands`` (name -> argv), each logging to ``<state_dir>/<name>.log``."""

    def __init__(self, state_dir: Path, commands: dict[str, list[str]],
                 budget_factory=RestartBudget):
        self.state_dir = state_dir
        self.commands = commands
        # Leftovers are looked for only in a process group of our own (the stack starts the
        # supervisor in a new session); in a shared group, "parent not in the group" would
        # also match whatever started that group.
        self.own_group = os.getpgid(0) == os.getpid()
        self.procs: dict[str, subprocess.Popen] = {}
        self.restart_at: dict[str, float] = {}
        self.budgets = {name: budget_factory() for name in self.commands}
        self.stopping = False

    def log_path(self, name: str) -> Path:
        return self.state_dir / f"{name}.log"

    def start(self, name: str) -> None:
        with open(self.log_path(name), "ab") as log:
            self.procs[name] = subprocess.Popen(  # noqa: S603 - fixed argv
                self.commands[name], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        print(f"started {name} pid {self.procs[name].pid} (log: {self.log_path(name)})",
              flush=True)

    def check(self, now: float) -> int | None:
        """One supervision step: restart what is due, handle new exits. An exit code when the
        supervisor must give up, else None."""
        for name, due in list(self.restart_at.items()):
            if now >= due:
                del self.restart_at[name]
                self.start(name)
        for name, proc in self.procs.items():
            if name in self.restart_at or proc.poll() is None:
                continue
            code = proc.returncode
            if self.own_group:
                left = leftovers_in_group(os.getpgid(0))
                if left:
                    print(f"{name} left {len(left)} processes behind; stopping them "
                          f"(pids {sorted(p.pid for p in left)})", flush=True)
                    stop_processes(left)
            budget = self.budgets[name]
            delay = budget.on_exit(now)
            tail = log_tail(self.log_path(name))
            if delay is None:
                print(f"{name} exited with code {code}, its {budget.recent_exits}th exit within "
                      f"{budget.window_s:.0f}s; giving up and stopping the others. Last lines "
                      f"of {self.log_path(name)}:\n{tail}", flush=True)
                _alert(name, code, "restart budget spent, Airflow stopped",
                       self.log_path(name), "critical")
                return code or 1
            print(f"{name} exited with code {code}; restarting in {delay:.0f}s "
                  f"(exit {budget.recent_exits} of {budget.limit} allowed within "
                  f"{budget.window_s:.0f}s). Last lines of {self.log_path(name)}:\n{tail}",
                  flush=True)
            _alert(name, code, "restarted", self.log_path(name), "warning")
            self.restart_at[name] = now + delay
        return None

    def stop_all(self, grace_s: float = 30.0) -> None:
        running = [p for p in self.procs.values() if p.poll() is None]
        for p in running:
            p.terminate()
        deadline = time.monotonic() + grace_s
        for p in running:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()

    def run(self, poll_s: float = 1.0) -> int:
        for name in self.commands:
            self.start(name)
        code = 0
        while not self.stopping:
            failed = self.check(time.monotonic())
            if failed is not None:
                code = failed
                break
            time.sleep(poll_s)
        self.stop_all()
        print("stopped", flush=True)
        return code


def prepare_db(state_dir: Path) -> bool:
    """Migrate the metadata DB and import the connections file the stack wrote."""
    airflow = str(venv_bin() / "airflow")
    print("migrating the metadata DB", flush=True)
    if subprocess.call([airflow, "db", "migrate"]) != 0:  # noqa: S603 - fixed argv
        print("airflow db migrate failed", flush=True)
        return False
    connections_file = state_dir / CONNECTIONS_FILE
    if connections_file.exists():
        print("importing connections", flush=True)
        argv = [airflow, "connections", "import", "--overwrite", str(connections_file)]
        if subprocess.call(argv) != 0:  # noqa: S603 - fixed argv
            print("airflow connections import failed", flush=True)
            return False
    return True


def supervise(state_dir: Path) -> int:
    """Prepare the DB, then run the components until SIGTERM/SIGINT or a spent budget."""
    if not prepare_db(state_dir):
        return 1
    airflow = str(venv_bin() / "airflow")
    supervisor = Supervisor(state_dir, {name: [airflow, *args] for name, args in COMPONENTS})

    def _stop(_signum, _frame):
        supervisor.stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return supervisor.run()


if __name__ == "__main__":
    # The stack starts this with cwd = the service dir and airflow_env() in the environment.
    sys.exit(supervise(Path.cwd()))
