"""Writing to Kafka: the one producer configuration, topic setup, and the dead-letter helper.

``LogProducer`` applies the DESIGN §4 contract (acks=all, idempotent, compressed, batched,
key = service) and makes delivery outcomes impossible to miss: every record is counted as
delivered or failed, and ``flush``/``close`` raise ``DeliveryError`` when anything failed since
the last check. Its buffer is bounded (``max_buffer_bytes``): a ``send`` that finds it full
waits up to ``max_block_ms`` and then raises ``BufferFullError`` without sending, like the Java
client's ``buffer.memory``.

Two clients implement it, chosen by ``LAE_KAFKA_CLIENT`` (or ``client=``):

- ``confluent`` (default): confluent-kafka, i.e. librdkafka (``lae.kafka_confluent``);
- ``kafka-python``: the pure-Python client (``KafkaPythonLogProducer`` below).

Why confluent is the default: the ingestion acceptance (issue 3) wants the Python producer path
at >= 30% of Kafka's Java ``ProducerPerformance``, and only confluent reaches it. Run of
2026-11-26 (bench/bench_producer.py: 150k events of ~380 bytes, zstd, acks=all, idempotent,
6 partitions, median of 3, 2 cores shared with other work): generator -> LogProducer made
55.9k records/s with confluent (71% of Java's 78.9k in the same run; 10.1 CPU µs per record,
about half of it the generator) against 12.1k with kafka-python (15%; 44.3 CPU µs per record:
its record batching, compression and protocol encoding run in Python); a second, less loaded
run: 128.2k (114% of Java's 112.3k) against 23.0k (21%). kafka-python stays a
dependency: admin, consumers and tests use it, and it is the pure-Python fallback
(LAE_KAFKA_CLIENT=kafka-python) where librdkafka wheels are unavailable. Both clients place a
key on the same partition (Java's murmur2), so switching does not re-map services.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient

    from lae.config import Settings

log = logging.getLogger(__name__)

# Chosen with `bench/bench_producer.py --sweep` for kafka-python (2026-11-26, 2 cores shared
# with other work, so only the ordering is meaningful): zstd beat gzip and none (lz4/snappy
# are not installed); kafka-python's cost is per request, so bigger batches won: 16 KiB/0 ms
# ~4k rec/s, 64 KiB/20 ms ~10k, 256 KiB/50 ms ~23k, 1 MiB ~23-27k. 256 KiB stays well under
# max_request_size (1 MiB). 50 ms of linger is invisible next to the speed layer's trigger
# interval. The confluent backend uses the same values, so both send alike batches.
DEFAULT_COMPRESSION = "zstd"
DEFAULT_LINGER_MS = 50
DEFAULT_BATCH_SIZE = 256 * 1024
DEFAULT_MAX_BUFFER_BYTES = 32 * 1024 * 1024  # Java's buffer.memory default
DEFAULT_MAX_BLOCK_MS = 60_000
DEFAULT_DELIVERY_TIMEOUT_MS = 120_000

CLIENT_ENV = "LAE_KAFKA_CLIENT"
CLIENTS = ("confluent", "kafka-python")
DEFAULT_CLIENT = "confluent"


# Header names on logs.dlq messages (values are UTF-8 bytes).
DLQ_REASON = "lae.reason"
DLQ_SOURCE_TOPIC = "lae.source.topic"
DLQ_SOURCE_PARTITION = "lae.source.partition"
DLQ_SOURCE_OFFSET = "lae.source.offset"
DLQ_SOURCE_TIMESTAMP = "lae.source.timestamp_ms"
DLQ_STAGE = "lae.stage"


class DeliveryError(RuntimeError):
    """Some records were not acknowledged by the broker; ``stats`` says how many and why."""

    def __init__(self, message: str, stats: DeliveryStats):
        super().__init__(message)
        self.stats = stats


class BufferFullError(DeliveryError):
    """``send`` waited ``max_block_ms`` for buffer space; the record was not sent."""


@dataclass(frozen=True)
class DeliveryStats:
    sent: int
    delivered: int
    failed: int
    buffered_bytes: int
    last_error: str | None = None
    errors: Mapping[str, int] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return self.sent - self.delivered - self.failed


def _key_partitioner():
    """kafka-python's DefaultPartitioner (Java-compatible murmur2 of the key), memoised.

    Profiling the generator showed the per-record pure-Python murmur2, a ``sorted`` of the
    partition list and an availability scan at ~20% of the main thread; our keys are a handful
    of service names, so the placement is computed once per (topic, key, partition count).
    Keying by the count keeps the answer right when a topic grows.
    """
    from kafka.partitioner import DefaultPartitioner

    class CachedKeyPartitioner(DefaultPartitioner):
        max_entries = 65_536  # keys of unbounded cardinality simply stop being cached

        def __init__(self):
            self._cache: dict[tuple[str, bytes, int], int] = {}

        def partition(self, topic, key, serialized_key, value, serialized_value, cluster):
            parts = cluster.partitions_for_topic(topic) if serialized_key is not None else None
            if not parts:  # no key (or unknown topic): the default's behaviour and errors
                return super().partition(topic, key, serialized_key, value, serialized_value,
                                         cluster)
            cache_key = (topic, serialized_key, len(parts))
            found = self._cache.get(cache_key)
            if found is None:
                found = super().partition(topic, key, serialized_key, value, serialized_value,
                                          cluster)
                if len(self._cache) < self.max_entries:
                    self._cache[cache_key] = found
            return found

    return CachedKeyPartitioner()


class LogProducer:
    """A keyed, idempotent, compressed producer that counts every delivery outcome.

    ``LogProducer(...)`` builds the backend that ``client`` (or ``LAE_KAFKA_CLIENT``) names:
    ``ConfluentLogProducer`` (``lae.kafka_confluent``) or ``KafkaPythonLogProducer``. Both take
    the same arguments (kafka-python spellings) and behave the same towards callers. One
    instance may be shared by threads. ``send`` returns a future whose ``value`` holds the
    record's partition and offset once ``is_done``; ``get(timeout)`` waits for it.

    Subclasses share the counters: they call ``_count_sent`` before handing a record over (and
    ``_uncount_sent`` if the hand-over raised) and ``_count_delivered`` / ``_count_failed`` from
    their delivery callbacks.
    """

    client = ""

    def __new__(cls, *args: Any, client: str | None = None, **kwargs: Any):
        if cls is LogProducer:
            cls = producer_class(client)
        return super().__new__(cls)

    def _init_counters(self, max_buffer_bytes: int, max_block_ms: int) -> None:
        self.max_buffer_bytes = max_buffer_bytes
        self.max_block_ms = max_block_ms
        self._cond = threading.Condition(threading.Lock())
        self._waiters = 0
        self._sent = 0
        self._delivered = 0
        self._failed = 0
        self._buffered = 0
        self._failed_reported = 0
        self._last_error: str | None = None
        self._errors: Counter[str] = Counter()

    # -- counting (called by the backends) -------------------------------------------------

    def _uncount_sent(self, size: int, exc: BaseException) -> None:
        # Not sent: the caller gets the exception now, so it is not also counted as failed.
        with self._cond:
            self._sent -= 1
            self._buffered -= size
            self._last_error = f"{type(exc).__name__}: {exc}"
            if self._waiters:
                self._cond.notify_all()

    def _count_delivered(self, size: int) -> None:
        with self._cond:
            self._delivered += 1
            self._buffered -= size
            if self._waiters:
                self._cond.notify_all()

    def _count_failed(self, size: int, name: str, message: str) -> None:
        with self._cond:
            self._failed += 1
            self._buffered -= size
            self._errors[name] += 1
            self._last_error = f"{name}: {message}"
            if self._waiters:
                self._cond.notify_all()
        log.warning("delivery failed: %s: %s", name, message)

    # -- outcome ---------------------------------------------------------------------------

    def _stats_locked(self) -> DeliveryStats:
        return DeliveryStats(self._sent, self._delivered, self._failed, self._buffered,
                             self._last_error, dict(self._errors))

    def stats(self) -> DeliveryStats:
        with self._cond:
            return self._stats_locked()

    def check(self) -> DeliveryStats:
        """Raise ``DeliveryError`` if records failed since the last check; else the stats."""
        with self._cond:
            stats = self._stats_locked()
            new_failures = self._failed - self._failed_reported
            self._failed_reported = self._failed
        if new_failures:
            raise DeliveryError(
                f"{new_failures} record(s) failed delivery ({stats.failed} of {stats.sent} in "
                f"total; by error: {stats.errors}); last error: {stats.last_error}", stats)
        return stats

    def _buffer_full(self) -> BufferFullError:
        with self._cond:
            stats = self._stats_locked()
        return BufferFullError(
            f"producer buffer full ({stats.buffered_bytes} of {self.max_buffer_bytes} bytes "
            f"awaiting acknowledgement) for {self.max_block_ms} ms; "
            f"last error: {stats.last_error}", stats)

    # -- the backend's part ------------------------------------------------------------------

    def send(self, value: bytes, key: bytes | None = None, *, topic: str | None = None,
             headers: list[tuple[str, bytes]] | None = None, partition: int | None = None,
             timestamp_ms: int | None = None):
        """Hand one record over; returns its future (``value``: metadata, once done).

        Raises ``BufferFullError`` if no buffer space freed up within ``max_block_ms`` and
        re-raises the client's synchronous errors; neither counts as a failed delivery.
        """
        raise NotImplementedError

    def flush(self, timeout: float | None = None, *,
              raise_on_failure: bool = True) -> DeliveryStats:
        """Send everything buffered and wait for the outcomes (``KafkaTimeoutError`` past
        ``timeout``); then ``check()``, or only the stats."""
        raise NotImplementedError

    def close(self, timeout: float | None = None, *,
              raise_on_failure: bool = True) -> DeliveryStats:
        """Flush for up to ``timeout``, then close; what is still unsent counts as failed."""
        raise NotImplementedError

    def __enter__(self) -> LogProducer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # On an exception already in flight, do not mask it with a DeliveryError.
        self.close(raise_on_failure=exc_type is None)


def kafka_client(client: str | None = None) -> str:
    """The producer backend's name: ``client`` if given, else ``LAE_KAFKA_CLIENT``, else the
    default (see the module docstring for why it is confluent)."""
    name = (client or os.environ.get(CLIENT_ENV) or DEFAULT_CLIENT).strip().lower()
    name = {"confluent-kafka": "confluent", "librdkafka": "confluent",
            "kafka_python": "kafka-python"}.get(name, name)
    if name not in CLIENTS:
        raise ValueError(f"unknown Kafka client {name!r} (from {CLIENT_ENV}?); "
                         f"choose one of {', '.join(CLIENTS)}")
    return name


def producer_class(client: str | None = None) -> type[LogProducer]:
    if kafka_client(client) == "confluent":
        from lae.kafka_confluent import ConfluentLogProducer

        return ConfluentLogProducer
    return KafkaPythonLogProducer


class KafkaPythonLogProducer(LogProducer):
    """The pure-Python backend: kafka-python's ``KafkaProducer``; ``send`` returns its future.

    kafka-python 3 has no ``buffer_memory``: its accumulator grows without limit while a broker
    is away. This class therefore bounds the bytes it has handed over and not yet seen
    completed (``max_buffer_bytes``) itself, like the Java client's ``buffer.memory``.
    """

    client = "kafka-python"

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        topic: str | None = None,
        bootstrap_servers: str | None = None,
        compression_type: str | None = DEFAULT_COMPRESSION,
        linger_ms: int = DEFAULT_LINGER_MS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES,
        max_block_ms: int = DEFAULT_MAX_BLOCK_MS,
        delivery_timeout_ms: int = DEFAULT_DELIVERY_TIMEOUT_MS,
        client_id: str = "lae-producer",
        client: str | None = None,
        **producer_configs: Any,
    ):
        from kafka import KafkaProducer

        if settings is None:
            from lae.config import get_settings

            settings = get_settings()
        self.topic = topic or settings.raw_topic
        self._init_counters(max_buffer_bytes, max_block_ms)
        configs: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers or settings.kafka_bootstrap,
            "client_id": client_id,
            "acks": "all",
            # Explicit, so kafka-python raises instead of silently dropping idempotence if a
            # conflicting override (acks=1, retries=0) sneaks in.
            "enable_idempotence": True,
            "compression_type": compression_type,
            "linger_ms": linger_ms,
            "batch_size": batch_size,
            "max_block_ms": max_block_ms,
            # Retries are bounded by time, not count: a record fails only after this long.
            "delivery_timeout_ms": delivery_timeout_ms,
            "request_timeout_ms": min(30_000, delivery_timeout_ms - linger_ms),
            "partitioner": _key_partitioner(),
        }
        configs.update(producer_configs)
        self._producer: KafkaProducer = KafkaProducer(**configs)
        self.config = configs

    def send(self, value, key=None, *, topic=None, headers=None, partition=None,
             timestamp_ms=None):
        size = len(value) + (len(key) if key else 0) + 64  # 64: record + batch overhead
        cond = self._cond
        with cond:
            if self._buffered + size > self.max_buffer_bytes and self._buffered > 0:
                self._wait_for_space(size)
            self._buffered += size
            self._sent += 1
        try:
            future = self._producer.send(topic or self.topic, value=value, key=key,
                                         headers=headers, partition=partition,
                                         timestamp_ms=timestamp_ms)
        except Exception as exc:
            self._uncount_sent(size, exc)
            raise
        future.add_callback(self._on_delivered, size)
        future.add_errback(self._on_error, size)
        return future

    def _wait_for_space(self, size: int) -> None:
        # Called with the condition held. Only a full buffer pays for this wait.
        deadline = time.monotonic() + self.max_block_ms / 1000
        self._waiters += 1
        try:
            while self._buffered + size > self.max_buffer_bytes and self._buffered > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    stats = self._stats_locked()
                    raise BufferFullError(
                        f"producer buffer full ({self._buffered} of {self.max_buffer_bytes} "
                        f"bytes awaiting acknowledgement) for {self.max_block_ms} ms; "
                        f"last error: {self._last_error}", stats)
                self._cond.wait(remaining)
        finally:
            self._waiters -= 1

    def _on_delivered(self, size: int, _metadata) -> None:
        self._count_delivered(size)

    def _on_error(self, size: int, exc: BaseException) -> None:
        self._count_failed(size, type(exc).__name__, str(exc))

    def flush(self, timeout=None, *, raise_on_failure=True):
        self._producer.flush(timeout=timeout)
        return self.check() if raise_on_failure else self.stats()

    def close(self, timeout=None, *, raise_on_failure=True):
        try:
            self._producer.flush(timeout=timeout)
        finally:
            self._producer.close(timeout=timeout)
        return self.check() if raise_on_failure else self.stats()

    def metrics(self) -> dict:
        return self._producer.metrics()


# -- dead letters ----------------------------------------------------------------------------

def dlq_headers(
    reason: str,
    *,
    source_topic: str | None = None,
    source_partition: int | None = None,
    source_offset: int | None = None,
    source_timestamp_ms: int | None = None,
    stage: str | None = None,
) -> list[tuple[str, bytes]]:
    """Headers that say why a message was quarantined and where it came from."""
    headers = [(DLQ_REASON, reason.encode("utf-8"))]
    for name, value in ((DLQ_SOURCE_TOPIC, source_topic),
                        (DLQ_SOURCE_PARTITION, source_partition),
                        (DLQ_SOURCE_OFFSET, source_offset),
                        (DLQ_SOURCE_TIMESTAMP, source_timestamp_ms),
                        (DLQ_STAGE, stage)):
        if value is not None:
            headers.append((name, str(value).encode("utf-8")))
    return headers


def parse_dlq_headers(headers) -> dict[str, str]:
    """The reverse of ``dlq_headers`` for a consumed record's ``headers`` list."""
    return {k: (v or b"").decode("utf-8", "replace") for k, v in headers or ()}


def send_dlq(
    producer: LogProducer,
    raw: bytes,
    reason: str,
    *,
    source_topic: str | None = None,
    source_partition: int | None = None,
    source_offset: int | None = None,
    source_timestamp_ms: int | None = None,
    key: bytes | None = None,
    stage: str | None = None,
    dlq_topic: str | None = None,
):
    """Quarantine a rejected message: the raw bytes untouched as value, the reason and the
    source coordinates as headers. Keeping the original key keeps one service's rejects in
    order. Returns the send future."""
    if dlq_topic is None:
        from lae.config import get_settings

        dlq_topic = get_settings().dlq_topic
    headers = dlq_headers(reason, source_topic=source_topic, source_partition=source_partition,
                          source_offset=source_offset, source_timestamp_ms=source_timestamp_ms,
                          stage=stage)
    # Kafka rejects a record whose key and value are both null; b"" keeps an empty input.
    return producer.send(bytes(raw or b""), key=key, topic=dlq_topic, headers=headers)


# -- topics ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str]


@dataclass
class TopicReport:
    name: str
    created: bool
    partitions: int
    expected_partitions: int
    warnings: list[str] = field(default_factory=list)


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """logs.raw and logs.dlq as the settings describe them.

    min.insync.replicas defaults to rf-1 (1 locally, 2 with rf=3) so acks=all survives one
    broker loss on a cluster without making a single local broker unwritable.
    """
    rf = settings.kafka_replication_factor
    min_isr = settings.kafka_min_insync_replicas or max(1, rf - 1)
    if min_isr > rf:
        raise ValueError(f"min.insync.replicas={min_isr} exceeds replication factor {rf}")
    raw_cfg = {"retention.ms": str(settings.raw_retention_ms),
               "min.insync.replicas": str(min_isr)}
    dlq_cfg = {"retention.ms": str(settings.dlq_retention_ms),
               "min.insync.replicas": str(min_isr)}
    return [
        TopicSpec(settings.raw_topic, settings.raw_partitions, rf, raw_cfg),
        TopicSpec(settings.dlq_topic, settings.dlq_partitions, rf,
                  dlq_cfg),
    ]


def ensure_topics(
    settings: Settings,
    admin: KafkaAdminClient | None = None,
    specs: list[TopicSpec] | None = None,
) -> list[TopicReport]:
    """Create the missing topics; leave existing ones alone and report how they differ.

    A topic with fewer partitions than configured is reported, not grown: adding partitions
    re-maps keys (services) to partitions and would break per-service order for consumers.
    """
    from kafka.admin import KafkaAdminClient
    from kafka.errors import TopicAlreadyExistsError

    specs = specs if specs is not None else topic_specs(settings)
    own_admin = admin is None
    if admin is None:
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap,
                                 request_timeout_ms=15_000, client_id="lae-ensure-topics")
    try:
        existing = set(admin.list_topics())
        reports = []
        for spec in specs:
            created = False
            if spec.name not in existing:
                try:
                    admin.create_topics(
                        {spec.name: {"num_partitions": spec.partitions,
                                     "replication_factor": spec.replication_factor,
                                     "configs": dict(spec.configs)}},
                        wait_for_metadata=True)
                    created = True
                except TopicAlreadyExistsError:
                    pass  # created concurrently by another process: fine
            reports.append(_report(admin, spec, created))
        for report in reports:
            for warning in report.warnings:
                log.warning("topic %s: %s", report.name, warning)
        return reports
    finally:
        if own_admin:
            admin.close()


def _report(admin: KafkaAdminClient, spec: TopicSpec, created: bool) -> TopicReport:
    (described,) = admin.describe_topics([spec.name])
    partitions = len(described.get("partitions") or ())
    report = TopicReport(spec.name, created, partitions, spec.partitions)
    if partitions < spec.partitions:
        report.warnings.append(
            f"has {partitions} partitions, configured {spec.partitions}; not growing it "
            "automatically (that re-maps keys); use kafka-topics --alter if intended")
    elif partitions > spec.partitions:
        report.warnings.append(f"has {partitions} partitions, more than configured "
                               f"{spec.partitions}")
    return report


def topic_message_count(settings_or_bootstrap, topic: str) -> int:
    """Messages currently in ``topic`` (sum of end minus beginning offsets)."""
    from kafka import KafkaConsumer, TopicPartition

    bootstrap = getattr(settings_or_bootstrap, "kafka_bootstrap", settings_or_bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        end = consumer.end_offsets(parts)
        begin = consumer.beginning_offsets(parts)
        return sum(end[tp] - begin[tp] for tp in parts)
    finally:
        consumer.close()


def topic_end_offsets(settings_or_bootstrap, topic: str) -> dict[int, int]:
    """partition → the offset the next message will get (what "caught up" has to reach)."""
    from kafka import KafkaConsumer, TopicPartition

    bootstrap = getattr(settings_or_bootstrap, "kafka_bootstrap", settings_or_bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: end for tp, end in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()
