"""`lae demo` (`make demo`): the main job on the local stack, end to end.

Until the pipeline DAGs exist this proves every part of the stack together, the way the
pipeline will use it: generated access logs -> Kafka `logs.raw` -> a Spark job reading
`format("kafka")` -> Parquet on `s3a://` -> checked back with pyarrow; the health DAG run by
the real Airflow scheduler reaches Kafka, Cassandra and S3 through its connections.
Re-running is safe: it adds a new generated batch and re-copies the whole topic.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from lae.config import Settings, get_settings

HEALTH_DAG = "lae_stack_health"


class _Steps:
    """Prints each step as it starts and ends, and keeps a summary table."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, float]] = []

    def run(self, title: str, fn: Callable[[], Any]) -> Any:
        print(f"==> {title} ...", flush=True)
        t0 = time.monotonic()
        result = fn()
        elapsed = time.monotonic() - t0
        self.rows.append((title, str(result), elapsed))
        print(f"    {result}  ({elapsed:.1f}s)", flush=True)
        return result

    def table(self) -> str:
        width = max(len(t) for t, _, _ in self.rows)
        lines = [f"{'step':<{width}}  {'seconds':>7}  result"]
        lines += [f"{t:<{width}}  {s:>7.1f}  {r}" for t, r, s in self.rows]
        return "\n".join(lines)


def _stack_up(settings: Settings) -> str:
    from lae.stack import commands

    if commands.up(argparse.Namespace(services=[])) != 0:
        raise SystemExit("the stack did not come up; see the errors above")
    return "s3, kafka, cassandra, airflow healthy"


def _generate(settings: Settings, count: int) -> str:
    from lae.generate import generate

    yesterday = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday -= timedelta(days=1)
    truth = settings.state_dir / "demo" / f"truth-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.parquet"
    summary = generate(seed=int(time.time()), count=count,
                       history=(yesterday, yesterday + timedelta(days=1)),
                       truth_path=truth, settings=settings, progress_interval=5.0)
    if summary.failed:
        raise SystemExit(f"{summary.failed} events were not delivered: {summary.last_error}")
    return f"{summary.line()}; ground truth {truth}"


def _topic_size(settings: Settings) -> int:
    from lae.kafka import topic_message_count

    return topic_message_count(settings, settings.raw_topic)


def _copy_topic_with_spark(settings: Settings, out_uri: str) -> int:
    from lae.smoke import kafka_to_parquet
    from lae.spark import build_session

    spark = build_session("lae-demo-kafka-to-s3", settings=settings)
    try:
        return kafka_to_parquet(spark, settings, settings.raw_topic, out_uri)
    finally:
        spark.stop()


def _count_parquet_rows(settings: Settings, prefix: str) -> int:
    import pyarrow.parquet as pq

    from lae.s3 import s3_client

    s3 = s3_client(settings)
    rows = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket,
                                                             Prefix=prefix):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(".parquet"):
                body = s3.get_object(Bucket=settings.bucket, Key=obj["Key"])["Body"].read()
                rows += pq.ParquetFile(io.BytesIO(body)).metadata.num_rows
    return rows


def _health_dag(settings: Settings) -> str:
    from lae.airflow_api import AirflowApi

    api = AirflowApi.login(settings)
    api.wait_for_dag(HEALTH_DAG, timeout=120)
    run_id = api.trigger(HEALTH_DAG, note="lae demo")
    state = api.wait_for_run(HEALTH_DAG, run_id, timeout=300)
    tasks = api.task_states(HEALTH_DAG, run_id)
    if state != "success":
        raise SystemExit(f"{HEALTH_DAG} run {run_id} {state}: {tasks}")
    return f"run {run_id}: {state} ({', '.join(sorted(tasks))})"


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    steps = _Steps()
    prefix = f"smoke/{settings.raw_topic}"
    steps.run("start the local stack", lambda: _stack_up(settings))
    steps.run(f"generate {args.events:,} events of yesterday into {settings.raw_topic}",
              lambda: _generate(settings, args.events))
    in_topic = steps.run(f"count messages in {settings.raw_topic}",
                         lambda: _topic_size(settings))
    copied = steps.run(f"Spark: {settings.raw_topic} -> s3a://{settings.bucket}/{prefix}",
                       lambda: _copy_topic_with_spark(settings,
                                                      f"s3a://{settings.bucket}/{prefix}"))
    on_s3 = steps.run("read the Parquet files back (pyarrow)",
                      lambda: _count_parquet_rows(settings, prefix + "/"))
    steps.run(f"Airflow: trigger {HEALTH_DAG} and wait", lambda: _health_dag(settings))

    print("\n" + steps.table())
    ok = in_topic == copied == on_s3
    print(f"\nKafka messages {in_topic:,} | copied by Spark {copied:,} | rows on S3 {on_s3:,}"
          f" -> {'MATCH' if ok else 'MISMATCH'}")
    from lae.stack.airflow import admin_credentials

    user, password = admin_credentials(settings)
    print(f"\nAirflow UI: {settings.airflow_url}  (user {user}, password {password})")
    print(f"S3 endpoint: {settings.s3_endpoint}  bucket {settings.bucket}")
    print("Stop everything with: .venv/bin/lae stack down")
    return 0 if ok else 1
