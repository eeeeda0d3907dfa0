"""The batch deadline: which instant it names, and the alert a missed deadline produces.

The deadline's arithmetic is Airflow's (reference + interval); what LAE decides is the
reference and interval that mean "06:00 UTC of the day the scheduled run starts", and how a
missed deadline reads. The DAG's wiring is checked in tests/dags/test_batch_deadline.py and
the scheduler-driven proof is in tests/integration/test_alerts.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from lae.alerts import deadline as dl
from lae.alerts.channels import read_records
from lae.alerts.notifier import alerts_file
from lae.config import Settings


def _context(logical: str, queued: str, run_type="scheduled", conf=None, state="running"):
    deadline = datetime.fromisoformat(logical) + dl.RUN_DAY_0600_AFTER_LOGICAL_DATE
    run = {"dag_id": "batch_recompute", "dag_run_id": f"{run_type}__{logical}",
           "logical_date": logical, "queued_at": queued, "run_type": run_type,
           "state": state, "conf": conf or {}}
    return {"dag_run": run, "deadline": {"id": "d1", "deadline_time": deadline}}


def test_a_late_scheduled_run_pages_with_the_run_and_the_deadline():
    alert = dl.deadline_alert(_context("2026-11-25T02:00:00+00:00", "2026-11-26T02:00:05+00:00"),
                              "http://127.0.0.1:8080/")
    assert alert.severity == "critical" and alert.kind == "deadline_missed"
    assert alert.title == "Deadline missed: batch_recompute has not finished day 2026-11-25"
    fields = dict(alert.fields())
    assert fields["Deadline"] == "2026-11-26T06:00:00+00:00"
    assert fields["Run"] == "scheduled__2026-11-25T02:00:00+00:00"
    assert fields["Run state"] == "running"
    assert fields["Log"] == ("http://127.0.0.1:8080/dags/batch_recompute/runs/"
                             "scheduled__2026-11-25T02:00:00+00:00")
    assert "Note" not in fields


def test_a_backfilled_past_day_is_recorded_not_paged():
    alert = dl.deadline_alert(_context("2026-11-01T02:00:00+00:00", "2026-11-26T08:00:00Z",
                                       run_type="backfill", conf={"day": "2026-11-01"}))
    assert alert.severity == "info"
    assert "before the run was queued" in dict(alert.fields())["Note"]


def test_the_callback_delivers_through_the_lae_alerts_path(tmp_path, monkeypatch):
    settings = Settings(home=tmp_path, state_dir=tmp_path / "state", jars_dir=tmp_path / "j")
    monkeypatch.setattr("lae.config.get_settings", lambda: settings)

    async def no_connection(conn_id):  # no channel configured: log and file only
        return None

    monkeypatch.setattr(dl, "_connection_or_none", no_connection)
    ctx = _context("2026-11-25T02:00:00+00:00", "2026-11-26T02:00:00+00:00")
    result = asyncio.run(dl.deadline_missed(context=ctx))
    (record,) = read_records(alerts_file(settings))
    assert record["kind"] == "deadline_missed" and record["severity"] == "critical"
    assert record["alert_id"] in result and record["delivered"] == {}


@pytest.mark.parametrize("value", ["2026-11-26T06:00:00Z", "2026-11-26T06:00:00+00:00"])
def test_context_datetimes_parse_in_either_json_form(value):
    assert dl._as_datetime(value) == datetime(2026, 11, 26, 6, tzinfo=UTC)
