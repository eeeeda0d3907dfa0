"""lae.serving.series and the pure parts of lae.serving.reconcile (no Cassandra)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import datasketches
from hypothesis import given, settings
from hypothesis import strategies as st

from lae.serving.merge import BATCH, REALTIME, ViewRow
from lae.serving.reconcile import ReconcileConfig, drift_of, missing_batches
from lae.serving.series import percentiles, series, sum_hists
from lae.views import N_BUCKETS, bucket_index, merge_hists, percentile_from_hist

T0 = datetime(2026, 11, 25, 10, tzinfo=UTC)


def sketch(users: list[str]) -> bytes:
    s = datasketches.hll_sketch(12)
    for u in users:
        s.update(u)
    return s.serialize_compact()


def vrow(minute: int, latencies: list[float], users: list[str], path="/a", status="2xx",
         source=BATCH) -> ViewRow:
    hist = [0] * N_BUCKETS
    for lat in latencies:
        hist[bucket_index(lat)] += 1
    errors = len(latencies) if status == "5xx" else 0
    start = T0 + timedelta(minutes=minute)
    return ViewRow("svc", start.date(), start, path, status, len(latencies), errors, 0,
                   100 * len(latencies), sum(latencies), max(latencies), tuple(hist),
                   sketch(users), source)


def test_one_point_per_bucket_with_merged_measures():
    rows = [vrow(0, [10.0] * 98, ["u1", "u2"]), vrow(0, [900.0, 900.0], ["u2", "u3"], "/b", "5xx"),
            vrow(1, [5.0], ["u9"], source=REALTIME)]
    points = series(rows)
    assert [p.start for p in points] == [T0, T0 + timedelta(minutes=1)]
    first, second = points
    assert (first.requests, first.errors, first.bytes, first.source) == (100, 2, 10000, BATCH)
    assert first.error_rate == 0.02
    assert first.unique_users == 3.0  # u2 is in both sketches: a union, not a sum
    # 98 at 10 ms, 2 at 900 ms: p95 is near 10 ms, p99 near 900 ms (within the bucket error).
    assert 8.5 < first.p95_ms < 11.5 and 790 < first.p99_ms <= 900
    assert second.source == REALTIME and second.requests == 1


def test_path_filter_keeps_only_that_path():
    rows = [vrow(0, [1.0], ["a"]), vrow(0, [2.0, 2.0], ["b"], path="/b")]
    assert [p.requests for p in series(rows, "/b")] == [2]


def test_drift_window_is_the_realtime_span_and_late_events_explain_a_shortfall():
    day = T0.date()
    batch = [vrow(m, [1.0] * 10, ["u"]) for m in range(0, 10)]
    rt = [vrow(m, [1.0] * 10, ["u"], source=REALTIME) for m in (2, 3, 5)]  # 4 missing inside
    d = drift_of("svc", day, "b1", batch, rt, late_events=4)
    assert (d.window_start, d.window_end) == (T0 + timedelta(minutes=2), T0 + timedelta(minutes=6))
    assert (d.batch_requests, d.rt_requests) == (40, 30)
    assert (d.explained, d.unexplained) == (4, 6)
    assert d.rel_diff == 0.25 and d.unexplained_rel == 6 / 40
    assert drift_of("svc", day, "b1", batch, [], 0) is None


def test_realtime_excess_is_never_explained_by_late_events():
    batch = [vrow(0, [1.0] * 10, ["u"])]
    rt = [vrow(0, [1.0] * 12, ["u"], source=REALTIME)]
    d = drift_of("svc", T0.date(), "b1", batch, rt, late_events=100)
    assert (d.explained, d.unexplained) == (0, 2)


def test_missing_batches_only_overdue_days_with_data():
    now = datetime(2026, 11, 26, 9, tzinfo=UTC)
    cfg = ReconcileConfig(batch_deadline=timedelta(hours=6), lookback_days=7)
    published = {date(2026, 11, 22): "b", date(2026, 11, 24): "b"}
    data_days = {date(2026, 11, 10), date(2026, 11, 21), date(2026, 11, 25), date(2026, 11, 26)}
    # 23rd: gap after the first published day; 21st: has data; 25th: overdue at 06:00 on the
    # 26th; 26th: still today; 10th: outside the lookback.
    assert missing_batches(published, data_days, now, cfg) == [
        date(2026, 11, 21), date(2026, 11, 23), date(2026, 11, 25)]
    assert missing_batches(published, data_days, now.replace(hour=5), cfg) == [
        date(2026, 11, 21), date(2026, 11, 23)]


# ------------------------------------------------------------------ the API's fast paths
# series() and the query API sum histograms and take percentiles with their own loops (speed);
# these must agree exactly with lae.views' definitions.


HISTS = st.lists(st.one_of(st.none(), st.just(()),
                           st.lists(st.integers(0, 10**6), min_size=N_BUCKETS,
                                    max_size=N_BUCKETS)), max_size=8)


@settings(max_examples=300, deadline=None)
@given(HISTS, st.one_of(st.none(), st.floats(0.01, 1e6)))
def test_sum_hists_and_percentiles_equal_lae_views(hists, latency_max):
    total = sum_hists(hists)
    assert total == merge_hists(h or None for h in hists)
    expected = [percentile_from_hist(total, q, latency_max) for q in (0.5, 0.95, 0.99)]
    assert percentiles(total, latency_max) == expected


def test_point_json_is_the_as_json_dict():
    import json

    (point,) = series([vrow(0, [10.0, 30.0], ["u1"])])
    assert json.loads(point.json()) == point.as_json()
    assert point.as_json()["start"] == "2026-11-25T10:00:00Z"


def test_day_cache_computes_once_per_key_evicts_lru_and_retries_failures():
    import threading

    from lae.serving.cache import DayCache

    cache, calls, gate = DayCache(max_entries=2), [], threading.Event()

    def slow():
        calls.append(1)
        gate.wait(5)
        return "a"

    threads = [threading.Thread(target=cache.get, args=("k", slow)) for _ in range(8)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(5)
    assert len(calls) == 1 and cache.get("k", slow) == "a"  # concurrent misses computed once
    cache.get("x", lambda: 1)
    cache.get("y", lambda: 2)  # evicts "k", the least recently used
    assert cache.get("k", lambda: "again") == "again"

    def boom():
        raise RuntimeError("read timed out")

    try:
        cache.get("f", boom)
    except RuntimeError:
        pass
    assert cache.get("f", lambda: "ok") == "ok"  # a failure is not cached
