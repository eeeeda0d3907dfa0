"""POST /v1/logs: the ingest endpoint for log shippers.

Order of checks, cheapest first and before the body is read: ingest enabled (a token is
configured; otherwise 503, fail closed), bearer token (401), media type and encoding (415),
declared size (413). The body is then read while counting (413 as soon as it passes the
limit, whatever Content-Length claimed), split and validated per event, and published.

The answer is 202 only when Kafka acknowledged *every* record of the request, valid ones on
logs.raw and rejected ones on logs.dlq (acks=all). If any record was not acknowledged in time
the answer is 503 with Retry-After, never a partial 202. That is at-least-once, not
exactly-once: some records of a failed request may already be on the topic, and the shipper's
retry sends them again with the same event_id; the batch layer de-duplicates on event_id.
That is the documented contract: a 202 means every record is durable, a 503 means "send all
of it again".
"""

from __future__ import annotations

import asyncio
import hmac
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Protocol

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from lae.api.ingest_parse import SUPPORTED_TYPES, BadBody, Batch, media_type, parse_body
from lae.api.settings import ApiSettings

router = APIRouter()


class SinkUnavailable(RuntimeError):
    """Kafka did not acknowledge every record of a request in time."""


class Sink(Protocol):
    def publish(self, batch: Batch, timeout: float) -> None:
        """Send every record and wait for all acks; raise SinkUnavailable otherwise. Blocks."""


class NullSink:
    """Publishes nothing: the benchmark's no-Kafka baseline (`lae api --ingest-sink null`)."""

    def publish(self, batch: Batch, timeout: float) -> None:
        pass


class Ingest:
    """Per-app ingest state: the sink, a bounded pool for the blocking work, counters."""

    def __init__(self, settings: ApiSettings, sink: Sink, workers: int = 4):
        self.settings = settings
        self.sink = sink
        # Parsing a large body and waiting for acks both block; a small fixed pool keeps them
        # off the event loop without letting a slow broker pile up one thread per request.
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lae-ingest")
        # The pool's own queue is unbounded: during a broker outage every request would wait
        # there holding its body. Past this many requests in flight, answer 503 at once.
        self.max_in_flight = workers * 4
        self.in_flight = 0  # only touched on the event loop, so no lock
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, **deltas: int) -> None:
        with self._lock:
            self.counts.update(deltas)

    def check_token(self, authorization: str | None) -> None:
        token = self.settings.ingest_token
        if token is None:
            raise HTTPException(503, "ingest disabled: LAE_INGEST_TOKEN is not set")
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise HTTPException(401, "bearer token required",
                                headers={"WWW-Authenticate": 'Bearer realm="lae-ingest"'})
        if not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise HTTPException(401, "invalid token", headers={
                "WWW-Authenticate": 'Bearer realm="lae-ingest", error="invalid_token"'})

    async def read_body(self, request: Request) -> bytes:
        limit = self.settings.ingest_max_bytes
        too_large = HTTPException(413, f"body larger than {limit} bytes")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large
        # Count while streaming: Content-Length may be absent (chunked) or wrong.
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    def parse_and_publish(self, body: bytes, content_type: str | None,
                          service: str | None, host: str | None) -> Batch:
        batch = parse_body(body, content_type, service, host)
        if batch.records or batch.rejected:
            self.sink.publish(batch, self.settings.ingest_ack_timeout_s)
        return batch

    def close(self) -> None:
        self.pool.shutdown(wait=True)


@router.post("/v1/logs", status_code=202)
async def ingest_logs(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    service: Annotated[str | None, Query(description="service of text/plain lines")] = None,
    host: Annotated[str | None, Query(description="host of text/plain lines")] = None,
    x_lae_service: Annotated[str | None, Header()] = None,
    x_lae_host: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    ingest: Ingest = request.app.state.ingest
    ingest.check_token(authorization)
    content_type = request.headers.get("content-type")
    if media_type(content_type) not in SUPPORTED_TYPES:
        raise HTTPException(415, f"use one of {', '.join(sorted(SUPPORTED_TYPES))}")
    # A compressed body read as text would turn into a flood of invalid_utf8 rejects.
    if request.headers.get("content-encoding", "identity").lower() not in ("identity", ""):
        raise HTTPException(415, "Content-Encoding is not supported; send the body uncompressed")
    retry_after = {"Retry-After": str(ingest.settings.retry_after_s)}
    if ingest.in_flight >= ingest.max_in_flight:
        ingest.count(busy=1)
        raise HTTPException(503, "too many ingest requests in flight", headers=retry_after)
    ingest.in_flight += 1
    try:
        body = await ingest.read_body(request)
        batch = await asyncio.get_running_loop().run_in_executor(
            ingest.pool, ingest.parse_and_publish, body, content_type,
            service or x_lae_service, host or x_lae_host)
    except BadBody as exc:
        ingest.count(bad_body=1)
        raise HTTPException(400, str(exc)) from None
    except SinkUnavailable as exc:
        ingest.count(unavailable=1)
        raise HTTPException(503, f"Kafka unavailable, nothing acknowledged: {exc}",
                            headers=retry_after) from None
    finally:
        ingest.in_flight -= 1
    ingest.count(requests=1, accepted=len(batch.records), rejected=len(batch.rejected))
    return JSONResponse(batch.summary(), status_code=202)
