"""Pure parts of lae.batch: batch ids, the watermark's contiguity rule, value mapping, checks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from lae.batch.checks import compare_counts
from lae.batch.compute import day_bounds
from lae.batch.store import insert_cql, new_batch_id, row_values, watermark_end


def test_batch_ids_sort_by_creation_time_and_are_unique():
    t = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    ids = [new_batch_id(t + timedelta(microseconds=i)) for i in (0, 1, 1_000_000)]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert new_batch_id(t) != new_batch_id(t)  # same instant, still distinct


def test_watermark_end_is_the_day_after_the_newest_published_day():
    d1, d2, d3, d5 = (date(2026, 11, d) for d in (1, 2, 3, 5))
    assert watermark_end([]) is None
    assert watermark_end([d1]) == d2
    # A gap (an old island published by batch_late_data, say) does not pin W behind it.
    assert watermark_end([d1, d3]) == date(2026, 11, 4)
    assert watermark_end([d3, d1, d2]) == date(2026, 11, 4)
    assert watermark_end([d1, d2, d3, d5, d2]) == date(2026, 11, 6)


def test_day_bounds_are_half_open_utc():
    start, end = day_bounds(date(2026, 3, 29))  # a DST day in Europe: UTC has 24 h anyway
    assert start == datetime(2026, 3, 29, tzinfo=UTC) and end - start == timedelta(days=1)


def test_row_values_follow_the_insert_columns():
    row = {"service": "s", "day": date(2026, 1, 2), "bucket_ms": 1_767_312_060_000,
           "path": "/p", "status_class": "2xx", "requests": 3, "errors": 0,
           "client_errors": 1, "bytes": 10, "latency_sum": 1.5, "latency_max": 1.0,
           "latency_hist": (1, 2), "users_hll": bytearray(b"\x01")}
    values = row_values(row, "b1", "minute")
    cql = insert_cql("lae", "minute")
    assert cql.count("?") == len(values)
    assert values[:4] == ("s", date(2026, 1, 2), "b1", datetime(2026, 1, 2, 0, 1, tzinfo=UTC))
    assert values[-2:] == ([1, 2], b"\x01")
    assert "batch_metrics_minute" in cql and "minute, path" in cql


def test_compare_counts_reports_every_difference():
    assert compare_counts({"a": 2, "b": 1}, {"a": 2, "b": 1}) == []
    assert compare_counts({"a": 2}, {"a": 1, "c": 4}) == [
        "a: master dataset 2, published 1", "c: master dataset 0, published 4"]


def test_partition_groups_hold_rows_of_one_partition_key_and_at_most_size_rows():
    from lae.batch.store import partition_groups

    d1, d2 = date(2026, 1, 1), date(2026, 1, 2)
    values = [("a", d1, i) for i in range(5)] + [("b", d1, 9), ("a", d2, 7), ("a", d1, 5)]
    groups = list(partition_groups(values, size=2))
    for group in groups:
        assert 1 <= len(group) <= 2
        assert len({v[:2] for v in group}) == 1  # one partition per unlogged batch
    assert sorted(v for g in groups for v in g) == sorted(values)  # every row exactly once
    assert len(groups) == 3 + 1 + 1  # six rows of (a, d1) in pairs, then (b, d1) and (a, d2)
