"""lae.serving.merge: the merge rule (invariant 4), by example and as hypothesis properties.

The expectation is the rule restated bucket by bucket in the test (which layer owns a bucket
start), independently of the function's own structure (it indexes rows by key per layer).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lae.serving.merge import BATCH, REALTIME, ViewRow, days_of, merge

T0 = datetime(2026, 11, 24, tzinfo=UTC)  # three days: 24th, 25th, 26th
SPAN_MIN = 3 * 24 * 60


def row(minute: int, requests: int = 1, service: str = "s", path: str = "/a",
        status_class: str = "2xx", width: timedelta = timedelta(minutes=1)) -> ViewRow:
    start = T0 + minute * width
    return ViewRow(service=service, day=start.date(), start=start, path=path,
                   status_class=status_class, requests=requests, errors=requests // 3)


def owner(start: datetime, w: datetime | None, batch_days: set[date] | None) -> str:
    """The rule, as the issue states it: start < W and the day has a batch → batch."""
    before_w = w is not None and start < w
    has_batch = batch_days is None or start.date() in batch_days
    return BATCH if before_w and has_batch else REALTIME


def test_boundary_is_half_open():
    w = T0 + timedelta(minutes=10)
    batch = [row(9, 5), row(10, 7)]
    rt = [row(9, 50), row(10, 70)]
    merged = merge(batch, rt, w)
    assert [(r.start, r.requests, r.source) for r in merged.rows] == [
        (T0 + timedelta(minutes=9), 5, BATCH), (T0 + timedelta(minutes=10), 70, REALTIME)]
    assert merged.straddling == [] and merged.missing_batch_days == []


def test_no_watermark_means_everything_realtime():
    merged = merge([row(1, 5)], [row(1, 9), row(2, 1)], None)
    assert [(r.requests, r.source) for r in merged.rows] == [(9, REALTIME), (1, REALTIME)]


def test_hour_bucket_straddling_w_is_taken_from_batch_and_reported():
    w = T0 + timedelta(hours=3, minutes=30)
    hour = timedelta(hours=1)
    merged = merge([row(3, 60, width=hour)], [row(3, 30, width=hour)], w, "hour")
    assert [(r.requests, r.source) for r in merged.rows] == [(60, BATCH)]
    assert merged.straddling == [T0 + 3 * hour]


def test_minute_bucket_straddling_w_is_reported():
    w = T0 + timedelta(minutes=5, seconds=30)
    merged = merge([row(5, 2)], [row(5, 3), row(6, 4)], w)
    assert [(r.requests, r.source) for r in merged.rows] == [(2, BATCH), (4, REALTIME)]
    assert merged.straddling == [T0 + timedelta(minutes=5)]


def test_day_before_w_without_batch_falls_back_to_realtime_and_is_reported():
    w = T0 + timedelta(days=2)  # 24th and 25th before W; only the 25th has a batch
    batch = [row(24 * 60 + 1, 5)]
    rt = [row(1, 3), row(24 * 60 + 1, 4), row(2 * 24 * 60 + 1, 6)]
    merged = merge(batch, rt, w, batch_days={date(2026, 11, 25)}, window=(T0, T0 + 3 * (w - T0)))
    assert [(r.day.day, r.requests, r.source) for r in merged.rows] == [
        (24, 3, REALTIME), (25, 5, BATCH), (26, 6, REALTIME)]
    assert merged.missing_batch_days == [date(2026, 11, 24)]


def test_missing_batch_day_reported_even_without_any_row():
    w = T0 + timedelta(days=2)
    merged = merge([], [], w, batch_days=set(), window=(T0, T0 + timedelta(days=3)))
    assert merged.missing_batch_days == [date(2026, 11, 24), date(2026, 11, 25)]


def test_duplicate_keys_in_one_layer_are_refused():
    with pytest.raises(ValueError, match="twice"):
        merge([row(1), row(1)], [], T0 + timedelta(days=1))


def test_unknown_granularity_is_refused():
    with pytest.raises(ValueError, match="granularity"):
        merge([], [], None, "second")


def test_days_of_is_half_open():
    assert days_of(T0, T0 + timedelta(days=1)) == [T0.date()]
    assert days_of(T0 + timedelta(hours=23), T0 + timedelta(days=1, seconds=1)) == [
        date(2026, 11, 24), date(2026, 11, 25)]


# ----------------------------------------------------------------- properties
keys = st.tuples(st.integers(0, SPAN_MIN - 1), st.sampled_from(["a", "b"]),
                 st.sampled_from(["/x", "/y"]), st.sampled_from(["2xx", "5xx"]))
layer_rows = st.dictionaries(keys, st.integers(1, 1000), max_size=60)
watermarks = st.one_of(st.none(), st.integers(-60, SPAN_MIN + 60).map(
    lambda m: T0 + timedelta(minutes=m)), st.integers(0, SPAN_MIN * 60).map(
    lambda s: T0 + timedelta(seconds=s)))
batch_day_sets = st.one_of(st.none(), st.sets(st.sampled_from(days_of(T0, T0 + timedelta(days=3)))))


def _rows(spec: dict) -> list[ViewRow]:
    return [row(m, n, service=s, path=p, status_class=c) for (m, s, p, c), n in spec.items()]


@settings(max_examples=300, deadline=None)
@given(layer_rows, layer_rows, watermarks, batch_day_sets)
def test_every_bucket_once_from_its_owner(batch_spec, rt_spec, w, batch_days):
    batch, rt = _rows(batch_spec), _rows(rt_spec)
    merged = merge(batch, rt, w, batch_days=batch_days)
    got = [(r.key, r.requests, r.source) for r in merged.rows]

    # No bucket twice: each (service, start, path, class) at most once.
    assert len({k for k, _, _ in got}) == len(got)
    # No bucket lost, none invented: exactly the owner layer's rows of every bucket start.
    expected = {(r.key, r.requests, BATCH) for r in batch
                if owner(r.start, w, batch_days) == BATCH}
    expected |= {(r.key, r.requests, REALTIME) for r in rt
                 if owner(r.start, w, batch_days) == REALTIME}
    assert set(got) == expected
    # Totals equal the union rule's.
    assert sum(n for _, n, _ in got) == sum(n for _, n, _ in expected)


@settings(max_examples=200, deadline=None)
@given(layer_rows, watermarks)
def test_identical_layers_give_the_single_layer_totals(spec, w):
    """When both layers hold the same rows (drift 0), the merge counts each exactly once."""
    merged = merge(_rows(spec), _rows(spec), w)
    assert sum(r.requests for r in merged.rows) == sum(spec.values())
    assert sorted(r.key for r in merged.rows) == sorted(r.key for r in _rows(spec))
    # And the source flips exactly at W: every batch bucket starts before every rt bucket.
    batch_starts = [r.start for r in merged.rows if r.source == BATCH]
    rt_starts = [r.start for r in merged.rows if r.source == REALTIME]
    if batch_starts and rt_starts:
        assert max(batch_starts) < w <= min(rt_starts)
