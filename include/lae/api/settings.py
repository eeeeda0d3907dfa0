"""Settings of the API server, read from ``LAE_API_*`` / ``LAE_INGEST_*`` environment variables.

They live here rather than in ``lae.config`` because only ``lae api`` uses them; the Kafka
addresses and topic names still come from ``lae.config.Settings``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from lae.schema.fields import FIELDS_BY_NAME

# The event schema's own `service` rule, so the server never emits events it would quarantine.
_SERVICE = FIELDS_BY_NAME["service"]
_SERVICE_RE = re.compile(_SERVICE.pattern)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


@dataclass(frozen=True)
class ApiSettings:
    port: int = 8000
    # `service` of the events the access-log middleware emits.
    service: str = "demo-api"
    # None disables POST /v1/logs (it answers 503): an ingest endpoint without a token would
    # let anyone write into the master dataset, so it fails closed.
    ingest_token: str | None = None
    ingest_max_bytes: int = 4 * 1024 * 1024
    # How long POST /v1/logs waits for Kafka to acknowledge every record before answering 503.
    ingest_ack_timeout_s: float = 10.0
    retry_after_s: int = 5
    # Demo behaviour: seed of the error/latency generator, share of random 500s, and a factor on
    # the simulated latency (0 turns it off, which the logging benchmark does).
    seed: int | None = None
    error_rate: float = 0.01
    latency_scale: float = 1.0
    # Events waiting for the Kafka producer; beyond this the middleware drops and counts.
    emit_queue_size: int = 10_000

    def __post_init__(self) -> None:
        if not (_SERVICE.min_len <= len(self.service) <= _SERVICE.max_len
                and _SERVICE_RE.fullmatch(self.service)):
            raise ValueError(f"service {self.service!r} must match {_SERVICE.pattern} "
                             f"with {_SERVICE.min_len}-{_SERVICE.max_len} characters")

    @classmethod
    def from_env(cls) -> ApiSettings:
        seed = os.environ.get("LAE_API_SEED", "")
        return cls(
            port=_int("LAE_API_PORT", cls.port),
            service=os.environ.get("LAE_API_SERVICE", "") or cls.service,
            ingest_token=os.environ.get("LAE_INGEST_TOKEN") or None,
            ingest_max_bytes=_int("LAE_INGEST_MAX_BYTES", cls.ingest_max_bytes),
            ingest_ack_timeout_s=_float("LAE_INGEST_ACK_TIMEOUT_S", cls.ingest_ack_timeout_s),
            seed=int(seed) if seed else None,
            error_rate=_float("LAE_API_ERROR_RATE", cls.error_rate),
            latency_scale=_float("LAE_API_LATENCY_SCALE", cls.latency_scale),
            emit_queue_size=_int("LAE_API_EMIT_QUEUE", cls.emit_queue_size),
        )
