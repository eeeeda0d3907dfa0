"""
### lae_stack_health

Hourly check that the services the pipeline depends on answer, reached the way every other
DAG reaches them: through the Airflow connections `kafka_default`, `cassandra_default` and
`aws_default`. A failure here points at a connection or a service, not at pipeline code.

| task | proves |
|---|---|
| `kafka_round_trip` | a record produced to `lae.health` is read back; `logs.raw`/`logs.dlq` exist |
| `cassandra_release` | a CQL session on the LAE keyspace answers `SELECT release_version` |
| `s3_bucket` | the master-dataset bucket exists and is reachable (`head_bucket`) |

Safe to trigger at any time; it writes only to the `lae.health` topic.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG, task
from lae.dag_defaults import default_args
from lae.tags import Tag

# Provider hooks, kafka-python and the connections are imported/read inside the tasks so
# that parsing this file stays cheap and never touches the network.


@task
def kafka_round_trip() -> str:
    import uuid

    from airflow.sdk import BaseHook
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient
    from lae.config import get_settings

    settings = get_settings()
    servers = BaseHook.get_connection("kafka_default").extra_dejson["bootstrap.servers"]
    admin = KafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=10000)
    try:
        missing = {settings.raw_topic, settings.dlq_topic} - set(admin.list_topics())
    finally:
        admin.close()
    if missing:
        raise RuntimeError(f"Kafka topics missing: {sorted(missing)}")

    marker = uuid.uuid4().hex.encode()
    producer = KafkaProducer(bootstrap_servers=servers, acks="all", max_block_ms=10000)
    try:
        sent = producer.send("lae.health", key=b"airflow", value=marker).get(timeout=10)
    finally:
        producer.close(timeout=5)
    partition = TopicPartition("lae.health", sent.partition)
    consumer = KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False,
                             consumer_timeout_ms=10000)
    try:
        consumer.assign([partition])
        consumer.seek(partition, sent.offset)
        if not any(record.value == marker for record in consumer):
            raise RuntimeError(f"record {sent.partition}@{sent.offset} was not read back")
    finally:
        consumer.close()
    return f"{servers}: round trip via lae.health partition {sent.partition} offset {sent.offset}"


@task
def cassandra_release() -> str:
    from airflow.providers.apache.cassandra.hooks.cassandra import CassandraHook

    hook = CassandraHook(cassandra_conn_id="cassandra_default")
    try:
        row = hook.get_conn().execute("SELECT release_version FROM system.local").one()
    finally:
        hook.shutdown_cluster()
    return f"Cassandra {row.release_version}"


@task
def s3_bucket() -> str:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from lae.config import get_settings

    bucket = get_settings().bucket
    S3Hook(aws_conn_id="aws_default").get_conn().head_bucket(Bucket=bucket)
    return f"bucket {bucket} reachable"


with DAG(
    dag_id="lae_stack_health",
    doc_md=__doc__,
    schedule="@hourly",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=[Tag.HEALTH, Tag.OPS],
):
    # Independent checks: one broken service must not hide the state of the others.
    kafka_round_trip()
    cassandra_release()
    s3_bucket()
