"""The S3 endpoint goes away in the middle of an archive run (issue 9, item 3b).

The fault is real and placed deterministically: the archiver's upload function is wrapped so
that, just before the third partition's first object is put, the test stops the local S3
process (``lae.stack`` service, SIGTERM); the real ``put`` then fails against the dead
endpoint after boto3's own retries (``lae.s3``: standard mode, 3 attempts). What must hold:

- the run fails (the task fails, and Airflow's retries — ``retries=2`` in every DAG's
  default_args, checked by tests/dags — run it again);
- no offset is committed for data that is not in S3: for every partition, every offset below
  the group's committed offset is in the master dataset;
- once S3 is back, the re-run succeeds and the master dataset holds every Kafka record exactly
  once (one row per offset), the objects written before the outage unchanged.
"""

from __future__ import annotations

import io
import time
import uuid
from collections import Counter
from dataclasses import replace
from datetime import datetime

import pyarrow.parquet as pq
import pytest

from lae.archive import GROUP_ID, RunOptions, run_archive
from lae.archive import archiver as archiver_module
from lae.kafka import LogProducer, TopicSpec, ensure_topics
from tests.integration.faults import (
    event_id,
    generator_batches,
    master_objects,
    record_figures,
)
from tests.integration.helpers import fresh_keyspace_and_bucket

pytestmark = pytest.mark.integration

PARTITIONS = 4
EVENTS = 2000


def _committed(cfg, topic: str) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=cfg.kafka_bootstrap, group_id=GROUP_ID,
                             enable_auto_commit=False)
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) or 0 for p in range(PARTITIONS)}
    finally:
        consumer.close()


def _master_rows(s3, bucket: str) -> tuple[Counter, Counter]:
    """Rows of the master dataset: by (partition, offset) and by event_id."""
    offsets: Counter = Counter()
    ids: Counter = Counter()
    for key in master_objects(s3, bucket, "master/"):
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()),
                              columns=["partition", "offset", "event_id"])
        offsets.update(zip(table.column("partition").to_pylist(),
                           table.column("offset").to_pylist(), strict=True))
        ids.update(table.column("event_id").to_pylist())
    return offsets, ids


def test_s3_outage_mid_archive_commits_nothing_unuploaded(settings, kafka_service, s3_service,
                                                          cassandra_service, monkeypatch):
    topic = f"lae.test.s3outage.{uuid.uuid4().hex[:8]}"
    cfg = replace(settings, raw_topic=topic, bucket="lae-outage-s3", keyspace="lae_outage_s3")
    ensure_topics(cfg, specs=[TopicSpec(topic, PARTITIONS, 1, {})])
    s3, session = fresh_keyspace_and_bucket(cfg)
    session.cluster.shutdown()
    payloads = generator_batches(33, 1, EVENTS, datetime(2021, 7, 1))[0]
    with LogProducer(cfg, topic=topic) as producer:
        for i, p in enumerate(payloads):
            # Spread over the partitions explicitly: a handful of service keys could leave one
            # partition empty, and the outage must hit a partition with data.
            producer.send(p, key=b"k", partition=i % PARTITIONS)
    truth = {event_id(p) for p in payloads}

    real_put, puts, outage = archiver_module.put, [], {}

    def put_with_outage(client, bucket, key, data, config):
        puts.append(key)
        partitions_seen = {k.rsplit("/", 1)[1].split("+")[1] for k in puts}
        if len(partitions_seen) == 3 and not outage:
            outage["at_key"] = key
            outage["t0"] = time.monotonic()
            s3_service.down()
        return real_put(client, bucket, key, data, config)

    monkeypatch.setattr(archiver_module, "put", put_with_outage)
    try:
        with pytest.raises(Exception) as failed:  # noqa: B017 - whatever boto3 raises
            run_archive(cfg, RunOptions(run_id="s3-outage-1"))
        failed_after_s = time.monotonic() - outage["t0"]
        assert outage, "the outage was never injected"
    finally:
        monkeypatch.undo()
        s3_service.up()
    restored_s = time.monotonic() - outage["t0"]

    # Nothing committed past what is in S3: offsets below each committed offset are archived.
    committed = _committed(cfg, topic)
    archived, _ = _master_rows(s3, cfg.bucket)
    for p, c in committed.items():
        missing = [o for o in range(c) if (p, o) not in archived]
        assert not missing, f"partition {p}: committed {c} but {len(missing)} offsets not in S3"
    assert sum(committed.values()) < EVENTS, "the outage did not stop the run"
    before = master_objects(s3, cfg.bucket)

    manifest = run_archive(cfg, RunOptions(run_id="s3-outage-2"))
    assert manifest["totals"]["quarantined"] == 0
    archived, ids = _master_rows(s3, cfg.bucket)
    assert set(archived.values()) == {1}, "an offset archived twice"
    assert len(archived) == EVENTS and _committed(cfg, topic) == {
        p: EVENTS // PARTITIONS for p in range(PARTITIONS)}
    after = master_objects(s3, cfg.bucket)
    assert {k: after[k] for k in before} == before, "objects from before the outage changed"

    assert set(ids) == truth and set(ids.values()) == {1}

    record_figures(
        "s3_outage_mid_archive",
        fault=f"S3 endpoint stopped before the first upload of the 3rd of {PARTITIONS} "
              f"partitions; restarted after the run failed",
        load=f"{EVENTS} events in Kafka to archive", events_in=EVENTS,
        run_failed_after_s=round(failed_after_s, 1), outage_s=round(restored_s, 1),
        failure=type(failed.value).__name__,
        committed_before_retry=sum(committed.values()),
        archived_rows=sum(ids.values()), archived_distinct=len(ids),
        lost=len(truth - set(ids)), duplicated=sum(ids.values()) - len(ids))
