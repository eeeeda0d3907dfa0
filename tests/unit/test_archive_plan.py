"""Planning decisions: a stored plan wins, so a re-run repeats exactly the same range."""

from __future__ import annotations

import json

from lae.archive.plan import DEFAULT_MAX_RANGE, PartitionPlan, decide_plan, stored_plan


def test_first_run_starts_at_beginning_never_latest():
    plan, new = decide_plan("t", 0, None, "", beginning=40, end_now=100, max_rows=10)
    assert new and (plan.start, plan.end) == (40, 100)


def test_stored_plan_is_reused_whatever_arrived_since():
    meta = PartitionPlan("t", 0, 40, 100, 10).metadata()
    plan, new = decide_plan("t", 0, 40, meta, beginning=0, end_now=5000, max_rows=99)
    assert not new and (plan.start, plan.end, plan.max_rows) == (40, 100, 10)


def test_plan_is_replaced_once_its_end_is_committed():
    meta = json.dumps({"archived": [40, 100], "run_id": "r"})
    plan, new = decide_plan("t", 0, 100, meta, beginning=0, end_now=130, max_rows=10)
    assert new and (plan.start, plan.end) == (100, 130)
    # A plan whose end is not above the committed offset is stale.
    assert stored_plan("t", 0, 100, PartitionPlan("t", 0, 40, 100, 10).metadata()) is None


def test_foreign_metadata_is_ignored():
    assert stored_plan("t", 0, 5, "not json") is None
    assert stored_plan("t", 0, 5, json.dumps({"plan_end": 10})) is None  # no version


def test_backlog_is_archived_in_bounded_steps():
    plan, _ = decide_plan("t", 0, 0, "", 0, end_now=10 * DEFAULT_MAX_RANGE, max_rows=10)
    assert plan.end == DEFAULT_MAX_RANGE


def test_empty_partition_plans_nothing():
    plan, _ = decide_plan("t", 0, 7, "", 0, end_now=7, max_rows=10)
    assert plan.empty


def test_plan_round_trips_through_xcom_dict():
    p = PartitionPlan("t", 2, 3, 4, 5)
    assert PartitionPlan.from_dict(p.to_dict()) == p
