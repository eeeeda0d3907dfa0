"""batch_recompute's deadline names 06:00 UTC of the day its scheduled run starts."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from lae.config import get_settings
from lae.stack.airflow import airflow_env

SETTINGS = get_settings()
os.environ.update(airflow_env(SETTINGS))  # before airflow is imported (see test_dag_integrity)


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(SETTINGS.home / "dags" / "batch_recompute.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["batch_recompute"]


def test_deadline_is_0600_utc_of_the_scheduled_runs_day(dag):
    from airflow.timetables.base import TimeRestriction

    # The run that recomputes 2026-11-25: logical date 02:00 that day, starts 24 h later.
    day_start = datetime(2026, 11, 25, tzinfo=UTC)
    info = dag.timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=day_start, latest=None, catchup=True))
    assert info.logical_date == datetime(2026, 11, 25, 2, tzinfo=UTC)
    assert info.run_after == datetime(2026, 11, 26, 2, tzinfo=UTC)

    (alert,) = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
    assert type(alert.reference).__name__ == "DagRunLogicalDateDeadline"
    assert info.logical_date + alert.interval == datetime(2026, 11, 26, 6, tzinfo=UTC)
    assert type(alert.callback).__name__ == "AsyncCallback"  # runs in the triggerer
    assert alert.callback.path == "lae.alerts.deadline.deadline_missed"
