"""Retention-guard decisions: lost ranges and ranges at risk, never a silent reset."""

from __future__ import annotations

import pytest

from lae.archive.retention import RetentionCheck, RetentionError, check_retention

H = 3600 * 1000
DAY = 24 * H


def test_lost_range_names_partition_and_offsets():
    with pytest.raises(RetentionError) as err:
        check_retention(RetentionCheck("logs.raw", 4, next_offset=100, beginning=250))
    assert err.value.partition == 4 and err.value.lost == (100, 250)
    assert "partition 4" in str(err.value) and "[100, 250)" in str(err.value)


def test_at_risk_when_older_than_retention_minus_margin():
    now = 10 * DAY
    check = RetentionCheck("logs.raw", 1, 5, 5, first_ts_ms=now - 7 * DAY + 7 * H, now_ms=now,
                           retention_ms=7 * DAY, margin_ms=6 * H)
    check_retention(check)  # 6 h 59 min... of room left: 7 h > 6 h margin: fine
    late = RetentionCheck("logs.raw", 1, 5, 5, first_ts_ms=now - 7 * DAY + 5 * H, now_ms=now,
                          retention_ms=7 * DAY, margin_ms=6 * H)
    with pytest.raises(RetentionError) as err:
        check_retention(late)
    assert err.value.lost is None and "at risk" in str(err.value)


@pytest.mark.parametrize("retention", [None, -1])
def test_unlimited_retention_is_never_at_risk(retention):
    check_retention(RetentionCheck("t", 0, 0, 0, first_ts_ms=0, now_ms=100 * DAY,
                                   retention_ms=retention))


def test_nothing_to_read_is_safe():
    check_retention(RetentionCheck("t", 0, 10, 10, first_ts_ms=None, now_ms=1,
                                   retention_ms=1))
