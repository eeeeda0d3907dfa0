"""A human mistake and its documented recovery (issue 9, item 4; docs/RUNBOOK.md, "A bad view
definition was deployed").

The mistake: a deploy of ``lae.views`` whose ``metrics_minute`` counts 404s as 5xx server
errors. It is injected by replacing ``lae.views.metrics_minute`` in this process, which is the
Spark *driver* of ``lae.batch.job.recompute``: the view is a DataFrame → DataFrame function
that the driver calls to build the query plan (``lae.batch.compute.day_views`` looks it up in
``lae.views`` at call time), and the executors run only that JVM plan. So swapping the module
attribute in the driver is exactly what importing a different version of ``lae.views`` would
do, without building and installing a second package version. The broken function is a real
DataFrame transform (no Python UDF) and produces plausible rows: the request counts per
service are unchanged, so the DAG's own validation (requests per service against the master
dataset) passes — the kind of error that only a person notices.

The recovery, as the runbook says: fix the definition (here: undo the replacement), recompute
the affected days from the master dataset (what ``lae airflow backfill create --dag-id
batch_recompute ... --reprocess-behavior completed`` runs, one ``recompute`` per day), check.
What must hold: the wrong rows were published; after the recompute the published rows of every
affected day equal the ground truth (computed in plain Python from the events); the superseded
wrong batches are dropped; the watermark is unchanged; and the master dataset's objects — keys,
ETags, sizes — are identical before the mistake, after it, and after the recovery.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

import lae.views
from lae.batch import store
from lae.batch.checks import compare_counts, master_counts, published_counts
from lae.batch.job import recompute
from tests.integration.faults import master_objects, record_figures
from tests.integration.helpers import fresh_keyspace_and_bucket
from tests.integration.test_batch_recompute import _archive, _events, _truth

pytestmark = pytest.mark.integration

# One affected day keeps the test to two recomputes (CI time); the runbook's backfill
# does the same per day for any number of days.
DAYS = (date(2021, 10, 4),)


def _broken_metrics_minute(good):
    """The bad deploy: a 404 is classified as a server error (5xx)."""
    import pyspark.sql.functions as F

    def metrics_minute(events, *args, **kwargs):
        wrong = events.withColumn(
            "status", F.when(F.col("status") == 404, F.lit(500)).otherwise(F.col("status")))
        return good(wrong, *args, **kwargs)

    return metrics_minute


def _published(session, cfg, day: date, services) -> dict:
    rows = []
    for service in services:
        rows += store.read_published_minutes(session, service, day, keyspace=cfg.keyspace)
    return {(r.service, r.minute.replace(tzinfo=UTC), r.path, r.status_class):
            (r.requests, r.errors, r.bytes) for r in rows}


def test_bad_view_deploy_is_recovered_by_recomputing_from_the_master_dataset(
        settings, s3_service, cassandra_service, spark, monkeypatch):
    cfg = replace(settings, bucket="lae-bad-view", keyspace="lae_bad_view")
    client, session = fresh_keyspace_and_bucket(cfg)
    rng = random.Random(404)  # noqa: S311 - reproducible test data
    events = {day: _events(day, 400, rng) for day in DAYS}
    _archive(client, cfg.bucket, [(rng.randrange(2), e) for d in DAYS for e in events[d]])
    truth = {day: _truth(events[day]) for day in DAYS}
    services = {k[0] for t in truth.values() for k in t}
    master_before = master_objects(client, cfg.bucket)
    try:
        # The bad deploy runs the nightly recompute of both days.
        monkeypatch.setattr(lae.views, "metrics_minute",
                            _broken_metrics_minute(lae.views.metrics_minute))
        bad = {day: recompute(spark, cfg, day) for day in DAYS}
        monkeypatch.undo()  # the fix is deployed
        wrong_rows = 0
        for day in DAYS:
            published = _published(session, cfg, day, services)
            assert published != truth[day], "the broken view changed nothing"
            wrong_rows += len(set(published.items()) ^ set(truth[day].items()))
            # The DAG's validation compares requests per service: it cannot see this mistake.
            _, counts = published_counts(session, cfg.keyspace, day)
            assert compare_counts(master_counts(client, cfg.bucket, day), counts) == []
        assert master_objects(client, cfg.bucket) == master_before
        watermark = store.read_watermark(session, cfg.keyspace)

        # The recovery: recompute the affected days from the master dataset.
        fixed = {day: recompute(spark, cfg, day) for day in DAYS}
        after = {day: _published(session, cfg, day, services) for day in DAYS}
        for day in DAYS:
            assert fixed[day].published and fixed[day].dropped == [bad[day].batch_id]
            assert after[day] == truth[day]
            assert set(store.batches_of_day(session, cfg.keyspace, day)) == {
                fixed[day].batch_id}
        assert store.read_watermark(session, cfg.keyspace) == watermark == datetime(
            2021, 10, 5, tzinfo=UTC)
        assert master_objects(client, cfg.bucket) == master_before, "master dataset rewritten"
    finally:
        session.cluster.shutdown()

    served = sum(v[0] for d in DAYS for v in after[d].values())
    record_figures(
        "bad_view_deploy_recovery",
        fault=f"view definition deployed with 404 counted as 5xx; {len(DAYS)} day(s) "
              "recomputed with it",
        load=f"{sum(len(e) for e in events.values())} events over {len(DAYS)} days",
        events_in=sum(len(e) for e in events.values()), wrong_rows_published=wrong_rows,
        events_served_after_recovery=served, master_objects=len(master_before),
        master_objects_changed=0, lost=sum(len(e) for e in events.values()) - served)
