"""The local Airflow's supervisor: restart budget, and restarts of real child processes.

The children are small Python processes standing in for the Airflow components (the real
components under the real supervisor are killed in tests/integration/test_airflow.py).
"""

from __future__ import annotations

import sys
import time

import pytest

from lae.alerts import read_records
from lae.alerts.notifier import alerts_file
from lae.config import get_settings
from lae.stack.airflow_supervisor import RestartBudget, Supervisor, log_tail


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    # The supervisor's alerts go to <LAE_STATE_DIR>/alerts.jsonl.
    monkeypatch.setenv("LAE_STATE_DIR", str(tmp_path))
    return tmp_path


def test_budget_delays_grow_then_the_budget_is_spent():
    budget = RestartBudget(limit=3, window_s=100, delays_s=(1, 5))
    assert [budget.on_exit(t) for t in (0, 10, 20)] == [1, 5, 5]
    assert budget.on_exit(30) is None


def test_budget_forgets_exits_older_than_the_window():
    budget = RestartBudget(limit=2, window_s=100, delays_s=(1, 5))
    assert budget.on_exit(0) == 1
    assert budget.on_exit(50) == 5
    # The exit at 0 is 100 s old: out of the window, so this is the second recent exit.
    assert budget.on_exit(100) == 5
    assert budget.recent_exits == 2
    assert budget.on_exit(120) is None


def test_a_component_that_exits_is_restarted_and_the_others_keep_running(state_dir):
    # Exits with 3 at its first start, stays up at its second (the marker file says which).
    marker = state_dir / "started-once"
    flaky = _python(f"import pathlib, sys, time\np = pathlib.Path({str(marker)!r})\n"
                    "if not p.exists():\n    p.touch(); print('boom', flush=True); sys.exit(3)\n"
                    "time.sleep(60)")
    steady = _python("import time; time.sleep(60)")
    supervisor = Supervisor(state_dir, {"flaky": flaky, "steady": steady},
                            budget_factory=lambda: RestartBudget(delays_s=(0.0,)))
    try:
        for name in supervisor.commands:
            supervisor.start(name)
        first_flaky, steady = supervisor.procs["flaky"], supervisor.procs["steady"]
        deadline = time.monotonic() + 30
        def restarted() -> bool:
            proc = supervisor.procs["flaky"]
            return proc is not first_flaky and proc.poll() is None

        while not restarted():
            assert supervisor.check(time.monotonic()) is None
            assert time.monotonic() < deadline, "flaky was not restarted"
            time.sleep(0.05)
        # The second start is running; the steady one was never touched.
        time.sleep(0.3)
        assert supervisor.check(time.monotonic()) is None
        assert supervisor.procs["flaky"].poll() is None
        assert supervisor.procs["steady"] is steady and steady.poll() is None
    finally:
        supervisor.stop_all(grace_s=5)
    assert "boom" in log_tail(state_dir / "flaky.log")
    (alert,) = read_records(alerts_file(get_settings()))
    assert alert["kind"] == "airflow_component_exited" and alert["severity"] == "warning"
    assert alert["details"]["component"] == "flaky" and alert["details"]["exit_code"] == 3
    assert "boom" in alert["details"]["log_tail"]


def test_a_component_that_keeps_exiting_stops_the_supervisor(state_dir, capsys):
    supervisor = Supervisor(
        state_dir, {"crashy": _python("print('boom', flush=True); raise SystemExit(3)"),
                    "steady": _python("import time; time.sleep(60)")},
        budget_factory=lambda: RestartBudget(limit=2, window_s=60, delays_s=(0.0,)))
    started = time.monotonic()
    assert supervisor.run(poll_s=0.05) == 3
    assert time.monotonic() - started < 30
    # Started three times (two restarts), then the budget was spent and everything stopped.
    assert log_tail(state_dir / "crashy.log").count("boom") == 3
    assert supervisor.procs["steady"].poll() is not None
    out = capsys.readouterr().out
    assert out.count("crashy exited with code 3; restarting") == 2
    assert "giving up" in out and out.rstrip().endswith("stopped")
    alerts = read_records(alerts_file(get_settings()))
    assert [a["severity"] for a in alerts] == ["warning", "warning", "critical"]


def test_log_tail_gives_the_last_lines_of_a_large_log(tmp_path):
    log = tmp_path / "big.log"
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(200_000)))  # ~2.2 MB
    assert log_tail(log, lines=3) == "line 199997\nline 199998\nline 199999\n"
    assert log_tail(log, lines=3, window=4096).endswith("line 199999\n")
    assert log_tail(tmp_path / "missing.log").startswith("(log unreadable:")
