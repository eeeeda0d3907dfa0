"""The API server's two ways into Kafka, each with its own ``lae.kafka.LogProducer``.

- access-log events: fire and forget through ``QueueEmitter`` (the request never waits);
- POST /v1/logs batches: ``KafkaSink.publish`` sends every record, then waits on every future
  so that the endpoint answers 202 only for a fully acknowledged batch.

Two producers because the two paths want different lingers: kafka-python spends ~1-2 ms of
Python per produce request, so the access log, where nobody waits, lingers long and sends few
large requests; the ingest path waits for its acks, so it keeps the short default.
"""

from __future__ import annotations

import json
import logging
import os
import time

from lae.api.emitter import Event, QueueEmitter
from lae.api.ingest import SinkUnavailable
from lae.api.ingest_parse import Batch
from lae.config import Settings
from lae.kafka import LogProducer, kafka_client, send_dlq

# A send() without topic metadata (broker away since start) blocks this long in the ingest
# pool or the emitter thread, never on the event loop. A POST /v1/logs against a missing broker
# therefore answers 503 after at most max(ack timeout, this), instead of hanging.
MAX_BLOCK_MS = 5_000
DLQ_STAGE = "api.ingest"

log = logging.getLogger(__name__)


# kafka-python probes the broker version in the producer's constructor and raises after
# bootstrap_timeout_ms if no broker answers. An API server must start (and serve) while Kafka is
# away, so after a short probe it starts with the version pinned to the contract's Kafka 4 and
# connects whenever the broker comes (meanwhile: dropped access logs, 503 on POST /v1/logs).
BOOTSTRAP_TIMEOUT_MS = 3_000
ASSUMED_BROKER_VERSION = (4, 0)
# Producer alone, 1000 paced sends/s on this 2-core machine: 100 ms instead of 20 ms took the
# CPU per event from ~235 to ~141 us (fewer, larger produce requests). End to end the
# difference drowned in the machine's noise. Events reach Kafka <= 0.1 s later; nobody waits.
# LAE_API_LOG_LINGER_MS overrides it (for such comparisons).
ACCESS_LOG_LINGER_MS = int(os.environ.get("LAE_API_LOG_LINGER_MS", "") or 100)


def open_producer(settings: Settings, **overrides) -> LogProducer:
    from kafka.errors import KafkaTimeoutError

    common = {"client_id": "lae-api", "max_block_ms": MAX_BLOCK_MS, **overrides}
    if kafka_client() == "confluent":
        # librdkafka connects in the background and its send never waits for metadata:
        # nothing to probe, no version to pin.
        return LogProducer(settings, **common)
    try:
        return LogProducer(settings, bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS, **common)
    except KafkaTimeoutError as exc:
        log.warning("Kafka at %s unreachable (%s); starting anyway, assuming Kafka %s",
                    settings.kafka_bootstrap, exc, ASSUMED_BROKER_VERSION)
        return LogProducer(settings, api_version=ASSUMED_BROKER_VERSION, **common)


def kafka_emitter(settings: Settings, maxsize: int) -> QueueEmitter:
    producer = open_producer(settings, client_id="lae-api-access-log",
                             linger_ms=ACCESS_LOG_LINGER_MS)
    topic = settings.raw_topic

    def deliver(event: Event) -> None:
        # Serialised here, in the emitter thread, not on the request path. The middleware builds
        # the dict field by field per DESIGN §3; tests check it passes lae.schema.validate.
        value = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
        producer.send(value, key=event["service"].encode(), topic=topic)

    def producer_stats() -> dict[str, int]:
        s = producer.stats()
        return {"producer_sent": s.sent, "producer_delivered": s.delivered,
                "producer_failed": s.failed, "producer_buffered_bytes": s.buffered_bytes}

    def close_producer(timeout: float) -> None:
        # Failures were already counted in the stats; shutdown must not raise over them.
        producer.close(timeout=timeout, raise_on_failure=False)

    return QueueEmitter(deliver, maxsize=maxsize, extra_stats=producer_stats,
                        on_close=close_producer)


class KafkaSink:
    def __init__(self, settings: Settings):
        self.producer = open_producer(settings, client_id="lae-api-ingest")
        self.raw_topic = settings.raw_topic
        self.dlq_topic = settings.dlq_topic

    def publish(self, batch: Batch, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        futures = []
        try:
            # Everything is sent before anything is awaited, so the producer batches the whole
            # request instead of paying one round trip per record.
            for key, value in batch.records:
                futures.append(self.producer.send(value, key=key, topic=self.raw_topic))
                self._check(deadline)
            for raw, reason in batch.rejected:
                futures.append(send_dlq(self.producer, raw, reason, stage=DLQ_STAGE,
                                        dlq_topic=self.dlq_topic))
                self._check(deadline)
            for future in futures:
                future.get(timeout=max(deadline - time.monotonic(), 0.001))
        except Exception as exc:  # timeout, buffer full, broker error: all mean "not durable"
            # Records already sent stay in the producer and may still land; see lae.api.ingest
            # for why that is the at-least-once contract and not a partial acknowledgement.
            raise SinkUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def close(self, timeout: float = 10.0) -> None:
        self.producer.close(timeout=timeout, raise_on_failure=False)

    @staticmethod
    def _check(deadline: float) -> None:
        # A send() may block (up to MAX_BLOCK_MS) and still succeed; many of them must not add
        # up past the request's deadline.
        if time.monotonic() > deadline:
            raise TimeoutError("sending the batch took longer than the ack timeout")
