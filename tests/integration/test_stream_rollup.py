"""The hour rollup's Cassandra side (lae.stream.rollup) on the real Cassandra and a local Spark.

Minute rows of three hours are upserted into ``rt_metrics_minute`` the way the minute sink
does; then what a restarted job does after a crash: ``catch_up_hours`` from the last rollup
heartbeat's watermark finds the hours that may be un-rolled (not the older one), and
``roll_hours`` writes their hour rows, which equal ``lae.views.metrics_hour`` of the same rows.
The whole job under kill -9 is tests/integration/test_stream_speed_layer.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from lae.scratch import fresh_keyspace_and_bucket
from lae.stream import store
from lae.stream.rollup import catch_up_hours, roll_hours
from lae.views import N_BUCKETS

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.timeout(900)]

DAY = date(2026, 11, 20)
H21, H22, H23 = (datetime(2026, 11, 20, h, tzinfo=UTC) for h in (21, 22, 23))


def _minute_rows() -> list[dict]:
    """Minute sink rows: the view's columns, the minute start as epoch millis in bucket_ms."""
    rows = []
    for hour in (H21, H22, H23):
        for m in (0, 17, 59):
            for path, requests in (("/v1/a", 3), ("/v1/b", 5)):
                hist = [0] * N_BUCKETS
                hist[m % N_BUCKETS] = requests
                rows.append(dict(
                    service="svc", day=DAY,
                    bucket_ms=int((hour + timedelta(minutes=m)).timestamp() * 1000),
                    path=path, status_class="2xx", requests=requests, errors=0,
                    client_errors=1, bytes=100 * requests, latency_sum=1.5 * requests,
                    latency_max=float(m), latency_hist=hist, users_hll=None))
    return rows


@pytest.fixture(scope="module")
def session(settings, s3_service, cassandra_service):
    cfg = replace(settings, keyspace="lae_rollup_it", bucket="lae-rollup-it")
    _, session = fresh_keyspace_and_bucket(cfg)
    insert = session.prepare(store.upsert_cql(cfg.keyspace, "minute"))
    store.execute_all(session, insert, [store.rt_values(r, "minute") for r in _minute_rows()])
    yield session
    session.cluster.shutdown()


def test_catch_up_finds_the_hours_from_the_watermark_and_roll_writes_their_hour_rows(
        session, spark):
    ks = "lae_rollup_it"
    # Later micro-batches drop events at or before W = 22:40, so hour 21 cannot change.
    hours = catch_up_hours(session, ks, H22 + timedelta(minutes=40))
    assert hours == {("svc", DAY, H22), ("svc", DAY, H23)}
    assert catch_up_hours(session, ks, None) == hours | {("svc", DAY, H21)}
    assert catch_up_hours(session, ks, H23 + timedelta(days=1)) == set()

    assert roll_hours(spark, session, ks, hours) == (12, 4)
    got = {(r.hour.replace(tzinfo=UTC), r.path): r for r in session.execute(
        f"SELECT * FROM {ks}.rt_metrics_hour WHERE service = %s AND day = %s",  # noqa: S608 - test keyspace name
        ("svc", DAY))}
    assert set(got) == {(h, p) for h in (H22, H23) for p in ("/v1/a", "/v1/b")}
    for (_, path), row in got.items():
        per_minute = 3 if path == "/v1/a" else 5
        assert (row.requests, row.client_errors, row.bytes) == (
            3 * per_minute, 3, 300 * per_minute)
        assert row.latency_sum == pytest.approx(4.5 * per_minute)
        assert row.latency_max == 59.0
        want = [0] * N_BUCKETS
        for m in (0, 17, 59):
            want[m % N_BUCKETS] += per_minute
        assert list(row.latency_hist) == want
    # Rolling again (a replayed micro-batch, a repeated pass) writes the same rows.
    assert roll_hours(spark, session, ks, hours) == (12, 4)
    again = {(r.hour.replace(tzinfo=UTC), r.path): r.requests for r in session.execute(
        f"SELECT * FROM {ks}.rt_metrics_hour WHERE service = %s AND day = %s",  # noqa: S608 - test keyspace name
        ("svc", DAY))}
    assert again == {k: r.requests for k, r in got.items()}
