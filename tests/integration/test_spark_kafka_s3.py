"""A real PySpark job reads a Kafka topic with format("kafka") and writes Parquet to s3a://."""

from __future__ import annotations

import io
import json
import uuid

import pyarrow.parquet as pq
import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from lae.s3 import s3_client
from lae.smoke import kafka_to_parquet

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def test_spark_reads_kafka_and_writes_parquet_to_s3a(settings, kafka_service, s3_service, spark):
    # A topic of its own, so the expected set is exactly what this test produced.
    topic = f"lae.test.spark.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    admin.close()

    sent = {}
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for i in range(500):
        event_id = str(uuid.uuid4())
        payload = {"event_id": event_id, "service": f"svc{i % 4}", "status": 200 + i % 4}
        sent[event_id] = payload
        producer.send(topic, key=payload["service"].encode(), value=json.dumps(payload).encode())
    producer.flush()
    producer.close()

    prefix = f"tests/spark/{topic}"
    rows = kafka_to_parquet(spark, settings, topic, f"s3a://{settings.bucket}/{prefix}")
    assert rows == len(sent)

    # Read back with boto3 + pyarrow, independently of Spark.
    s3 = s3_client(settings)
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=settings.bucket, Prefix=prefix)["Contents"]
        if o["Key"].endswith(".parquet")
    ]
    assert keys, "Spark wrote no Parquet files"
    got = {}
    for key in keys:
        body = s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read()
        for rec in pq.read_table(io.BytesIO(body)).to_pylist():
            value = json.loads(rec["value"])
            assert rec["key"] == value["service"]
            assert rec["topic"] == topic
            got[value["event_id"]] = value
    assert got == sent


def test_a_local_session_uses_the_jars_in_place(spark):
    """With a local master the jars are on the JVM's classpath where they lie: no application
    copy of them (spark.jars made each local application fetch 670 MB of AWS SDK into its
    userFiles folder, left behind by every killed driver). The test above shows the Kafka
    source and S3A load from there."""
    import os

    from pyspark import SparkFiles

    assert spark.range(100).count() == 100  # a task: the executor has set up its files
    copies = [f for f in os.listdir(SparkFiles.getRootDirectory()) if f.endswith(".jar")]
    assert copies == []
    assert not spark.conf.get("spark.jars", "")
