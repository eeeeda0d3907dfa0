"""One archive run outside Airflow (CLI, crash tests, benchmark): plan → partitions → manifest.

The DAG calls the same three functions as separate tasks; this module only wires them with
clients built from ``Settings``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from lae.archive.archiver import Timings, archive_partition
from lae.archive.lease import DEFAULT_TTL_S, CassandraLease
from lae.archive.manifest import write_manifest
from lae.archive.plan import (
    DEFAULT_MAX_RANGE,
    DEFAULT_MAX_ROWS,
    GROUP_ID,
    new_consumer,
    plan_partitions,
    planning_consumer,
    topic_retention_ms,
)
from lae.archive.reader import read_range_confluent
from lae.archive.retention import DEFAULT_SAFETY_MARGIN_MS
from lae.archive.upload import UploadConfig


@dataclass
class RunOptions:
    run_id: str
    topic: str | None = None
    group_id: str = GROUP_ID
    max_rows: int = DEFAULT_MAX_ROWS
    max_range: int = DEFAULT_MAX_RANGE
    upload: UploadConfig = field(default_factory=UploadConfig)
    lease_ttl_s: int = DEFAULT_TTL_S
    margin_ms: int = DEFAULT_SAFETY_MARGIN_MS
    # Partitions archived in parallel processes (the DAG gets the same from mapped tasks).
    workers: int = 1


def committed_offsets(consumer, topic: str) -> dict[tuple[str, int], int]:
    from kafka import TopicPartition

    out = {}
    for p in sorted(consumer.partitions_for_topic(topic) or ()):
        c = consumer.committed(TopicPartition(topic, p))
        if c is not None:
            out[(topic, p)] = c
    return out


def plan_run(bootstrap: str, topic: str, opts: RunOptions, settings=None) -> list[dict]:
    retention = topic_retention_ms(bootstrap, topic)
    if retention is None and settings is not None:
        retention = settings.raw_retention_ms
    consumer = planning_consumer(bootstrap, opts.group_id)
    try:
        plans = plan_partitions(consumer, topic, max_rows=opts.max_rows,
                                max_range=opts.max_range, retention_ms=retention,
                                margin_ms=opts.margin_ms)
    finally:
        consumer.close()
    return [p.to_dict() for p in plans]


def kafka_client() -> str:
    """The record reader's backend, chosen like the producer's (``LAE_KAFKA_CLIENT``)."""
    from lae.kafka import kafka_client as chosen

    return chosen()


def archive_one(bootstrap: str, s3, bucket: str, session, keyspace: str, topic: str,
                partition: int, opts: RunOptions, timings: Timings | None = None) -> dict:
    consumer = new_consumer(bootstrap, opts.group_id)
    try:
        lease = CassandraLease(session, keyspace, topic, partition, opts.lease_ttl_s)
        reader = None
        if kafka_client() == "confluent":
            reader = partial(read_range_confluent, bootstrap, group_id=opts.group_id)
        return archive_partition(consumer, s3, bucket, topic, partition, lease, opts.upload,
                                 opts.run_id, timings, reader)
    finally:
        consumer.close()


def finish_run(bootstrap: str, s3, bucket: str, topic: str, results: list[dict],
               opts: RunOptions) -> dict:
    consumer = planning_consumer(bootstrap, opts.group_id)
    try:
        committed = committed_offsets(consumer, topic)
    finally:
        consumer.close()
    skipped = [r for r in results if "skipped" in r]
    return write_manifest(s3, bucket, opts.run_id, committed, skipped, topic)


def _archive_partitions(settings, topic: str, partitions: list[int], opts: RunOptions,
                        timings: Timings | None = None) -> list[dict]:
    from lae.cassandra import connect
    from lae.s3 import s3_client

    s3 = s3_client(settings)
    session = connect(settings)
    try:
        return [archive_one(settings.kafka_bootstrap, s3, settings.bucket, session,
                            settings.keyspace, topic, p, opts, timings) for p in partitions]
    finally:
        session.cluster.shutdown()


def share_out(plans: list[dict], workers: int) -> list[list[int]]:
    """The plans' partitions dealt to ``workers`` lists, biggest range first to the least
    loaded list. Keyed records make partitions very unequal (the generator's services put
    51/36/13% of the events on three of six partitions), so dealing them round-robin can give
    one worker most of the work."""
    loads = [[0, []] for _ in range(max(1, workers))]
    for plan in sorted(plans, key=lambda p: (-(p["end"] - p["start"]), p["partition"])):
        least = min(loads, key=lambda load: load[0])
        least[0] += plan["end"] - plan["start"]
        least[1].append(plan["partition"])
    return [sorted(partitions) for _, partitions in loads if partitions]


# What an archive worker imports (reading, validating, encoding, uploading, the lease). The
# forkserver imports them once; each worker forked from it starts with them loaded, where a
# spawned worker imported them again (0.5-0.9 s each, measured). pandas is listed because
# pyarrow imports it on the first pa.array() of a numpy array. The last module warms boto3
# (see lae.archive.worker_warmup).
WORKER_MODULES = ("lae.archive.run", "lae.cassandra", "lae.s3", "lae.schema.fast", "kafka",
                  "confluent_kafka", "numpy", "pandas", "pyarrow", "pyarrow.compute",
                  "pyarrow.parquet", "lae.archive.worker_warmup")


def start_worker_server():
    """The context archive workers start from: a forkserver with WORKER_MODULES imported.

    Called before planning, so the server's imports overlap it. Not plain fork: this process
    may hold sockets and client threads (Kafka, Cassandra, boto3) that a forked child must
    not inherit; the forkserver is a fresh single-threaded interpreter, so children get only
    its imported modules (and boto3's loaded service models, which open no connection). The
    server lives until this process exits.
    """
    import multiprocessing
    import multiprocessing.forkserver

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(WORKER_MODULES))
    multiprocessing.forkserver.ensure_running()
    return ctx


def _worker(settings, topic: str, partitions: list[int], opts: RunOptions):
    timings = Timings()
    return _archive_partitions(settings, topic, partitions, opts, timings), timings


def run_archive(settings, opts: RunOptions, timings: Timings | None = None) -> dict:
    """Plan, archive every partition, write the manifest; returns the manifest."""
    from lae.s3 import s3_client

    topic = opts.topic or settings.raw_topic
    context = start_worker_server() if opts.workers > 1 else None
    plans = plan_run(settings.kafka_bootstrap, topic, opts, settings)
    # Made now, while the forkserver may still be importing: made after the workers, its
    # 0.3 s of loading boto3's models was the run's last step (measured: 11.43 -> 11.73 s).
    s3 = s3_client(settings)
    partitions = [p["partition"] for p in plans]
    if context is not None and len(partitions) > 1:
        from concurrent.futures import ProcessPoolExecutor

        shares = share_out(plans, opts.workers)
        n = len(shares)
        with ProcessPoolExecutor(n, mp_context=context) as pool:
            futures = [pool.submit(_worker, settings, topic, share, opts) for share in shares]
            results = []
            for f in futures:
                part_results, part_timings = f.result()
                results += part_results
                if timings is not None:
                    for name in ("read_validate", "encode", "upload", "commit"):
                        setattr(timings, name, getattr(timings, name)
                                + getattr(part_timings, name) / n)  # wall-clock share
                    for name, value in part_timings.extra.items():
                        timings.extra[name] = timings.extra.get(name, 0) + value
    else:
        results = _archive_partitions(settings, topic, partitions, opts, timings)
    return finish_run(settings.kafka_bootstrap, s3, settings.bucket, topic, results, opts)
