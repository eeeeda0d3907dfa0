"""lae.batch.late: which touched days are recomputed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

from lae.batch.late import days_to_recompute, touched_days

TODAY = date(2026, 11, 26)


def _at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def test_touched_days_keeps_the_latest_event_per_day():
    events = [SimpleNamespace(timestamp=_at(26, 1), extra={"dates": ["2026-11-20", "2026-11-25"]}),
              SimpleNamespace(timestamp=_at(26, 3), extra={"dates": ["2026-11-20"]}),
              SimpleNamespace(timestamp=datetime(2026, 11, 26, 4), extra=None)]
    assert touched_days(events) == {date(2026, 11, 20): _at(26, 3),
                                    date(2026, 11, 25): _at(26, 1)}


def test_published_days_are_recomputed_only_when_touched_after_publishing():
    touched = {date(2026, 11, 20): _at(26, 3), date(2026, 11, 21): _at(26, 3)}
    published = {date(2026, 11, 20): _at(21, 2), date(2026, 11, 21): _at(26, 4)}
    assert days_to_recompute(touched, published, TODAY) == [date(2026, 11, 20)]


def test_unpublished_days_wait_for_their_nightly_run():
    touched = {date(2026, d, 1 if d == 10 else 24): _at(26, 3) for d in (10, 11)}
    touched |= {date(2026, 11, 25): _at(26, 3), TODAY: _at(26, 3)}
    # 11-24's nightly ran at 11-25 02:00 (missed: recompute); 11-25's runs today; today's later.
    assert days_to_recompute(touched, {}, TODAY) == [date(2026, 10, 1), date(2026, 11, 24)]
