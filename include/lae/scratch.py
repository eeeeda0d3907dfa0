"""A clean keyspace and bucket for one run: integration tests and benchmarks start from nothing."""

from __future__ import annotations


def fresh_keyspace_and_bucket(cfg, drop_timeout: float = 60):
    """Drop and re-migrate ``cfg.keyspace``, create ``cfg.bucket`` and empty it.

    Returns (s3 client, cassandra session) for that keyspace and bucket, whatever an earlier
    run left behind.
    """
    from lae.cassandra import connect
    from lae.cassandra_schema import migrate
    from lae.s3 import s3_client

    client, session = s3_client(cfg), connect(cfg)
    session.execute(f"DROP KEYSPACE IF EXISTS {cfg.keyspace}", timeout=drop_timeout)
    migrate(session, cfg)
    try:
        client.create_bucket(Bucket=cfg.bucket)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=cfg.bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=cfg.bucket, Key=obj["Key"])
    return client, session
