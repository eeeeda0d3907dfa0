"""`make demo` starts the speed layer even when someone stopped it on purpose earlier.

The supervisor rightly leaves a job stopped on purpose (or given up on after a crash loop)
alone; the demo then waited ten minutes for progress that could not come. Airflow's REST client
and the job's status are stand-ins here: the branch is the demo's, the real DAGs are covered by
tests/integration/test_stream_dags.py and by running `make demo`."""

from __future__ import annotations

import pytest

from lae import demo


@pytest.fixture
def triggered(monkeypatch):
    calls: list[tuple[str, dict | None]] = []

    def run_dag(api, dag_id, conf=None, timeout=900):
        calls.append((dag_id, conf))
        return f"{dag_id}: success"

    monkeypatch.setattr(demo, "_run_dag", run_dag)
    return calls


@pytest.mark.parametrize("desired", ["stopped", "crash_loop"])
def test_a_job_kept_down_is_started_through_streaming_control_first(monkeypatch, triggered,
                                                                   desired):
    monkeypatch.setattr(demo, "stream_status",
                        lambda settings: {"desired": desired, "desired_reason": "maintenance"})
    note = demo.start_stream(api=None, settings=None)
    assert triggered == [("streaming_control", {"action": "start", "reason": "lae demo"}),
                         ("streaming_supervisor", None)]
    assert f"it was {desired} (maintenance)" in note


def test_a_job_meant_to_run_is_left_to_the_supervisor(monkeypatch, triggered):
    monkeypatch.setattr(demo, "stream_status",
                        lambda settings: {"desired": "running", "desired_reason": None})
    demo.start_stream(api=None, settings=None)
    assert triggered == [("streaming_supervisor", None)]
