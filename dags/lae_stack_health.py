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

# The probes live in lae.health (shared with `lae stack`); hooks, clients and connections are
# imported/read inside the tasks so that parsing this file stays cheap and offline.


@task
def kafka_round_trip() -> str:
    from airflow.sdk import BaseHook

    from lae.config import get_settings
    from lae.health import kafka_round_trip, missing_topics

    settings = get_settings()
    servers = BaseHook.get_connection("kafka_default").extra_dejson["bootstrap.servers"]
    missing = missing_topics(servers, [settings.raw_topic, settings.dlq_topic])
    if missing:
        raise RuntimeError(f"Kafka topics missing: {missing}")
    return kafka_round_trip(servers)


@task
def cassandra_release() -> str:
    from airflow.providers.apache.cassandra.hooks.cassandra import CassandraHook

    from lae.health import cassandra_release

    hook = CassandraHook(cassandra_conn_id="cassandra_default")
    try:
        return cassandra_release(hook.get_conn())
    finally:
        hook.shutdown_cluster()


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
