"""A 3-broker KRaft cluster (``lae stack up --kafka-brokers 3``) losing a broker to SIGKILL while
a log shipper pushes generator events through the API server's POST /v1/logs.

What must hold (issue 9, item 1):

- the topic is replicated 3 times with min.insync.replicas=2, so acks=all still succeeds on the
  two survivors, and an acknowledged record was on at least two brokers before its 202;
- every acknowledged event is in the topic, the same event as produced;
- no producer-level duplicates: an event whose request was answered 202 at the first attempt
  is in the topic exactly once (the idempotent producer's retries after the broker loss must
  not add copies); events of a request answered 503 were re-sent by the shipper (the
  documented at-least-once contract) and may be there once per attempt, never more;
- the archiver (``lae.archive.run_archive``, what the DAG's tasks call) runs on the two
  surviving brokers, and the master dataset holds every Kafka record exactly once and every
  generated event (the ground truth);
- the killed broker restarts from its data and rejoins every partition's ISR.

The cluster runs beside the test stack's single broker, on kafka_port + 10, + 20, + 30 (and
controller ports likewise), under ``$LAE_STATE_DIR/kafka-cluster``. Three more JVMs make this a
``cluster`` test (outside the default run):

    .venv/bin/pytest -m cluster tests/integration/test_kafka_cluster.py
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from dataclasses import replace
from datetime import datetime

import pytest

from lae import schema
from lae.archive import RunOptions, run_archive
from lae.kafka import ensure_topics
from lae.stack.kafka import KafkaClusterService, cluster_settings
from tests.integration.faults import (
    ApiServer,
    Shipper,
    event_id,
    generator_batches,
    kill9,
    master_event_ids,
    record_figures,
    topic_events,
)
from tests.integration.helpers import fresh_keyspace_and_bucket

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

BATCHES, BATCH_SIZE = 80, 100
DAY = datetime(2021, 6, 1)


@pytest.fixture(scope="module")
def cluster(settings):
    """The cluster's settings and service; stopped at the end unless LAE_KEEP_STACK=1."""
    cfg = cluster_settings(replace(
        settings, state_dir=settings.state_dir / "kafka-cluster",
        kafka_port=settings.kafka_port + 10,
        kafka_controller_port=settings.kafka_controller_port + 10,
        kafka_heap="384m", raw_topic=f"logs.raw.kc{uuid.uuid4().hex[:8]}",
        bucket="lae-kafka-cluster", keyspace="lae_kafka_cluster"), 3)
    service = KafkaClusterService(cfg)
    t0 = time.monotonic()
    started = service.start()
    service.wait_healthy()
    service.provision()
    startup_s = time.monotonic() - t0
    yield cfg, service, startup_s
    if started and os.environ.get("LAE_KEEP_STACK") != "1":
        service.down()


def _leaders(cfg) -> dict:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=cfg.kafka_bootstrap, request_timeout_ms=15_000)
    try:
        (topic,) = admin.describe_topics([cfg.raw_topic])
        return dict({p["partition_index"]: (p["leader_id"], tuple(p["isr_nodes"]),
                                              tuple(p["replica_nodes"]))
                        for p in topic["partitions"]})
    finally:
        admin.close()


def _archive_all(cfg, run_prefix: str) -> int:
    """Archive runs until one finds nothing new; returns how many runs archived something."""
    for i in range(10):
        totals = run_archive(cfg, RunOptions(run_id=f"{run_prefix}-{i}"))["totals"]
        if totals["valid"] + totals["quarantined"] == 0:
            return i
    raise AssertionError("the archive never caught up")


def test_broker_killed_mid_run_loses_and_duplicates_nothing(cluster, s3_service,
                                                            cassandra_service):
    cfg, service, startup_s = cluster
    ensure_topics(cfg)
    topic = _leaders(cfg)
    assert len(topic) == cfg.raw_partitions
    for _leader, isr, replicas in topic.values():
        assert len(replicas) == 3 and len(isr) == 3, topic
    s3, session = fresh_keyspace_and_bucket(cfg)
    session.cluster.shutdown()

    batches = generator_batches(91, BATCHES, BATCH_SIZE, DAY)
    truth = {event_id(p) for b in batches for p in b}
    produced = {event_id(p): p for b in batches for p in b}
    with ApiServer(cfg, ack_timeout_s=5.0, retry_after_s=1) as api:
        sink_config = api.app.state.ingest.sink.producer.config
        assert sink_config.get("enable.idempotence", sink_config.get("enable_idempotence"))
        shipper = Shipper(api.url, batches, threads=2).start()
        deadline = time.monotonic() + 120
        while shipper.done_batches < BATCHES // 3:
            assert time.monotonic() < deadline, shipper.stats.statuses
            time.sleep(0.1)
        # The broker leading most partitions: its loss moves the most leaderships.
        by_leader = Counter(leader for leader, _, _ in _leaders(cfg).values())
        victim = service.nodes[by_leader.most_common(1)[0][0] - 1]
        acked_before_kill = len(shipper.stats.acked)
        kill9(victim)
        killed_at = time.monotonic()
        stats = shipper.join(timeout=400)
    ship_s = time.monotonic() - killed_at
    assert not stats.errors, stats.errors[:5]
    assert stats.acked == truth, f"{len(truth - stats.acked)} events never acknowledged"
    assert stats.retry_after_missing == 0

    # Kafka: every acknowledged event, intact; copies only where the shipper re-sent.
    records = topic_events(cfg.kafka_bootstrap, cfg.raw_topic)
    in_topic = Counter(event_id(v) for _, _, v in records)
    # The API server's own access-log events (one per request, fire and forget) share the
    # topic; the shipped events are the rest.
    copies = Counter({e: n for e, n in in_topic.items() if e in produced})
    access_log = sum(in_topic.values()) - sum(copies.values())
    assert set(copies) == truth
    for _, _, value in records:
        if event_id(value) in produced:
            assert schema.validate(value) == schema.validate(produced[event_id(value)])
    first_try = {e for e in truth if stats.attempts[e] == 1}
    dup_first_try = [e for e in first_try if copies[e] != 1]
    assert not dup_first_try, f"{len(dup_first_try)} producer-level duplicates"
    over = [e for e in truth if copies[e] > stats.attempts[e]]
    assert not over, f"{len(over)} events have more copies than attempts"

    # The archive continues on the two survivors and holds every record exactly once.
    runs = _archive_all(cfg, f"kc-{uuid.uuid4().hex[:6]}")
    archived = master_event_ids(s3, cfg.bucket)
    assert archived == in_topic, "master dataset differs from the topic"
    assert truth <= set(archived)

    # The killed broker restarts from its data and catches up.
    victim.start()
    victim.wait_healthy()
    deadline = time.monotonic() + 120
    while any(len(isr) != 3 for _, isr, _ in _leaders(cfg).values()):
        assert time.monotonic() < deadline, _leaders(cfg)
        time.sleep(2)

    record_figures(
        "kafka_broker_kill", fault=f"SIGKILL of broker {victim.node_id} of 3 (leader of "
        f"{by_leader[victim.node_id]}/{cfg.raw_partitions} partitions) after "
        f"{acked_before_kill} acknowledged events",
        load=f"{len(truth)} events in {BATCHES} POST /v1/logs requests of {BATCH_SIZE}, "
             f"2 shipper threads", cluster_startup_s=round(startup_s, 1),
        shipping_after_kill_s=round(ship_s, 1), events_in=len(truth),
        acknowledged=len(stats.acked), http_statuses=dict(stats.statuses),
        kafka_records=sum(copies.values()), access_log_events=access_log,
        archived_rows=sum(archived[e] for e in truth), archived_distinct=len(truth & set(archived)),
        archive_runs=runs, lost=len(truth - set(archived)),
        producer_duplicates=len(dup_first_try),
        resent_copies=sum(copies.values()) - len(truth))
