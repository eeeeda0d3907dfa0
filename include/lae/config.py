"""One settings object for LAE, read from ``LAE_*`` environment variables with local defaults.

Everything that differs between a laptop, CI and a cluster is here (addresses, ports,
directories, names); code never hard-codes them. Inside Airflow, tasks reach services through
Airflow connections instead, which the local stack creates from these same settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

# include/lae/config.py -> repo root; overridable for installs outside a checkout (Docker).
_REPO_ROOT = Path(__file__).resolve().parents[2]
# Port distance between the brokers of a local multi-broker Kafka (see Settings.kafka_brokers).
KAFKA_PORT_STEP = 10


def _env(name: str, default: str) -> str:
    return os.environ.get(f"LAE_{name}", default)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(f"LAE_{name}")
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"LAE_{name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    home: Path
    state_dir: Path
    jars_dir: Path
    host: str = "127.0.0.1"
    # Where clients reach each service; empty = ``host``. One host locally, one name per
    # service on Docker (kafka, cassandra, minio). Local services still bind ``host``.
    kafka_host: str = ""
    cassandra_host: str = ""
    s3_host: str = ""

    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    # Brokers of the local KRaft cluster (``lae stack up --kafka-brokers 3``). Broker i (from 0)
    # listens on kafka_port + KAFKA_PORT_STEP * i and its controller on
    # kafka_controller_port + KAFKA_PORT_STEP * i; 1 = the single combined-mode broker.
    kafka_brokers: int = 1
    raw_topic: str = "logs.raw"
    dlq_topic: str = "logs.dlq"
    raw_partitions: int = 6
    dlq_partitions: int = 1
    kafka_replication_factor: int = 1
    # 0 = derive: replication factor - 1, at least 1 (survives one broker loss with acks=all).
    kafka_min_insync_replicas: int = 0
    raw_retention_ms: int = 7 * 24 * 3600 * 1000
    # Quarantined messages are evidence someone has to look at: kept longer than raw.
    dlq_retention_ms: int = 30 * 24 * 3600 * 1000

    cassandra_port: int = 9042
    cassandra_storage_port: int = 7000
    cassandra_jmx_port: int = 7199
    cassandra_heap: str = "1G"
    keyspace: str = "lae"
    cassandra_replication_factor: int = 1

    s3_port: int = 9000
    bucket: str = "lae-lake"
    # The local S3 endpoint runs without authentication; these are placeholders that
    # boto3 needs to sign requests, not secrets. Production uses aws_default.
    s3_access_key: str = "lae-local"
    s3_secret_key: str = "lae-local"  # noqa: S105 - placeholder for an auth-less local endpoint
    s3_region: str = "us-east-1"

    airflow_port: int = 8080
    airflow_parallelism: int = 4

    # Serving layer (lae.serving): the query API's port, and reconcile_views' defaults.
    serve_port: int = 8001
    # Published days cached by the query API (their rows never change under one batch_id);
    # 0 turns the cache off (bench/bench_query.py measures both).
    serve_day_cache: int = 64
    # Unexplained batch-vs-realtime drift above this share of a day's requests alerts (0.5 %).
    drift_threshold: str = "0.005"
    # Realtime rows stay this long below W before reconcile deletes them.
    rt_grace_minutes: int = 60

    # Speed layer (lae.stream). Durations are Spark interval strings.
    # The minute view's trigger: it is the freshness path (event → served minute row).
    stream_trigger: str = "2 seconds"
    # The hour view's and the intake query's (DLQ, late counts): each micro-batch of each query
    # costs fixed driver and state-store work, so on a small machine the queries that nobody
    # reads by the second run less often and leave the cores to the minute view.
    stream_rollup_trigger: str = "10 seconds"
    stream_watermark: str = "10 minutes"
    stream_max_offsets_per_trigger: int = 100_000
    # Where a query starts when it has no checkpoint yet: "latest" (deploying next to a batch
    # layer that already covers the past) or "earliest".
    stream_starting_offsets: str = "latest"
    # Empty = <state_dir>/stream/checkpoint; a deployment sets s3a://bucket/checkpoints/speed.
    stream_checkpoint: str = ""
    stream_lease_ttl_s: int = 60
    # A live process whose heartbeat is older than this (after the start-up grace) is hung.
    stream_stale_after_s: int = 120
    stream_startup_grace_s: int = 240
    stream_lag_alert: int = 500_000
    stream_max_restarts_per_hour: int = 3
    # State partitions of the aggregations (0 = the session's spark.sql.shuffle.partitions);
    # few on a small machine keep a micro-batch's fixed cost down.
    stream_shuffle_partitions: int = 0
    # State of the de-duplication and the aggregations: "rocksdb" keeps it off the JVM heap
    # (a 10-minute watermark at 5,000 events/s is ~3M event ids per query; in the default
    # "hdfs" store, which holds it on the heap, that ran a 1 GB driver out of memory). A
    # checkpoint keeps the store it was started with.
    stream_state_store: str = "rocksdb"
    stream_driver_memory: str = "2g"
    # The batch job's driver heap (in local mode its tasks run in it). A 10M-event day's
    # read+aggregate (2026-11-27, 2 cores): bench_batch --driver-memory 1g 96.4 s, 2g 83.7 s;
    # one cold JVM per run: 1g 120.5-128.3 s, 2g 99.2-114.5 s, 4g no faster than 2g. Its de-dup
    # stage spills ~1.2 GB with either heap, so the gain is not from avoiding spill.
    batch_driver_memory: str = "2g"

    extra: dict[str, str] = field(default_factory=dict)

    @property
    def kafka_broker_ports(self) -> list[int]:
        return [self.kafka_port + KAFKA_PORT_STEP * i for i in range(max(1, self.kafka_brokers))]

    @property
    def kafka_bootstrap(self) -> str:
        # Every broker, so a client can still bootstrap while any one of them is down.
        host = self.kafka_host or self.host
        return ",".join(f"{host}:{port}" for port in self.kafka_broker_ports)

    @property
    def s3_endpoint(self) -> str:
        return f"http://{self.s3_host or self.host}:{self.s3_port}"

    @property
    def airflow_url(self) -> str:
        return f"http://{self.host}:{self.airflow_port}"

    @property
    def cassandra_contact_point(self) -> str:
        return self.cassandra_host or self.host

    def service_dir(self, service: str) -> Path:
        """Data, pid and log files of one local service live under here."""
        return self.state_dir / service

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(_env("HOME", str(_REPO_ROOT))).resolve()
        state_dir = Path(_env("STATE_DIR", str(home / ".lae"))).resolve()
        # Jars are shared between stacks (a test stack reuses them) so they sit apart from state.
        jars_dir = Path(_env("JARS_DIR", str(home / ".lae" / "jars"))).resolve()
        defaults = {f.name: f.default for f in fields(cls) if f.name not in ("home", "state_dir",
                                                                             "jars_dir", "extra")}
        values: dict[str, object] = {}
        for name, default in defaults.items():
            key = name.upper()
            if isinstance(default, int):
                values[name] = _env_int(key, default)
            else:
                values[name] = _env(key, str(default))
        return cls(home=home, state_dir=state_dir, jars_dir=jars_dir, **values)


def get_settings() -> Settings:
    return Settings.from_env()
