"""Helpers shared by integration tests."""

from __future__ import annotations

import threading
import time


def fresh_keyspace_and_bucket(cfg):
    """Drop and re-migrate ``cfg.keyspace``, create ``cfg.bucket`` and empty it.

    Returns (s3 client, cassandra session) for that keyspace and bucket, so a test module
    starts from nothing whatever an earlier run left behind.
    """
    from lae.cassandra import connect
    from lae.cassandra_schema import migrate
    from lae.s3 import s3_client

    client, session = s3_client(cfg), connect(cfg)
    session.execute(f"DROP KEYSPACE IF EXISTS {cfg.keyspace}", timeout=60)
    migrate(session, cfg)
    try:
        client.create_bucket(Bucket=cfg.bucket)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=cfg.bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=cfg.bucket, Key=obj["Key"])
    return client, session


def restart_broker_mid_run(kafka_service, producer, worker: threading.Thread, count: int,
                           context, outage_s: float = 4.0):
    """Once a quarter of ``count`` is delivered, stop the broker for ``outage_s`` and start it
    again; then wait for ``worker`` (the thread sending) to finish. Returns the producer's
    stats at the moment the broker went down. ``context`` is shown if the run stalls."""
    deadline = time.monotonic() + 60
    while producer.stats().delivered < count // 4:
        assert time.monotonic() < deadline and worker.is_alive(), (producer.stats(), context)
        time.sleep(0.1)
    kafka_service.down()
    down_at = producer.stats()
    time.sleep(outage_s)
    kafka_service.up()
    worker.join(timeout=300)
    assert not worker.is_alive(), "sending did not finish after the broker came back"
    return down_at
