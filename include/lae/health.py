"""Real round trips against the services, shared by `lae stack` and the health DAG.

Each probe raises with a message that names what failed; callers decide whether that is
"not ready yet" (the stack waiting for start-up) or a task failure (Airflow).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

HEALTH_TOPIC = "lae.health"


def ensure_health_topic(bootstrap: str) -> None:
    """One partition, an hour of retention: it only ever holds health-check markers."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000,
                             client_id="lae-health")
    try:
        if HEALTH_TOPIC in admin.list_topics():
            return
        try:
            admin.create_topics([NewTopic(HEALTH_TOPIC, 1, 1,
                                          topic_configs={"retention.ms": "3600000"})])
        except TopicAlreadyExistsError:
            pass  # created concurrently by another probe; that is fine
    finally:
        admin.close()


def missing_topics(bootstrap: str, topics: Iterable[str]) -> list[str]:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000,
                             client_id="lae-health")
    try:
        return sorted(set(topics) - set(admin.list_topics()))
    finally:
        admin.close()


def kafka_round_trip(bootstrap: str, timeout_s: float = 10.0) -> str:
    """Produce a unique marker to the health topic (acks=all) and read that record back."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    ensure_health_topic(bootstrap)
    marker = uuid.uuid4().hex.encode()
    timeout_ms = int(timeout_s * 1000)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all",
                             request_timeout_ms=timeout_ms, max_block_ms=timeout_ms)
    try:
        sent = producer.send(HEALTH_TOPIC, key=b"health", value=marker).get(timeout=timeout_s)
    finally:
        producer.close(timeout=5)
    partition = TopicPartition(HEALTH_TOPIC, sent.partition)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=timeout_ms,
                             request_timeout_ms=max(timeout_ms, 10000) + 1)
    try:
        consumer.assign([partition])
        consumer.seek(partition, sent.offset)
        for record in consumer:
            if record.value == marker:
                return f"{bootstrap}: round trip via {HEALTH_TOPIC}@{sent.partition}:{sent.offset}"
    finally:
        consumer.close()
    raise RuntimeError(f"record {HEALTH_TOPIC}@{sent.partition}:{sent.offset} was not read back")


def cassandra_release(session) -> str:
    row = session.execute("SELECT release_version FROM system.local").one()
    return f"Cassandra {row.release_version}"


def s3_put_get(client, bucket: str) -> str:
    """Write, read back and delete a unique object."""
    key = f"health/{uuid.uuid4().hex}"
    body = uuid.uuid4().bytes
    client.put_object(Bucket=bucket, Key=key, Body=body)
    try:
        got = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    finally:
        client.delete_object(Bucket=bucket, Key=key)
    if got != body:
        raise RuntimeError(f"s3://{bucket}/{key} read back different bytes")
    return f"s3://{bucket}: put/get/delete ok"
