"""POST /v1/logs over HTTP: auth, size limit, media types, summary, and the 503 contract.

The Kafka side is replaced by an in-memory sink here, so that each HTTP rule can be checked in
isolation and the "Kafka failed" branch can be forced deterministically; the same endpoint
against the real broker (including a stopped one) is tested in
tests/integration/test_api_kafka.py.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid

import httpx
import pytest
from fastapi.testclient import TestClient

from lae.api.app import create_app
from lae.api.emitter import NullEmitter
from lae.api.ingest import SinkUnavailable
from lae.api.settings import ApiSettings

TOKEN = "s3cret-token"  # noqa: S105 - a test-only bearer token
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class MemorySink:
    def __init__(self, fail: bool = False):
        self.fail = fail
        self.batches = []

    def publish(self, batch, timeout):
        if self.fail:
            raise SinkUnavailable("broker away")
        self.batches.append(batch)


def event(**overrides) -> dict:
    e = {"event_id": str(uuid.uuid4()), "ts": "2026-11-26T10:00:00Z", "service": "shop",
         "host": "web-1", "method": "GET", "path": "/x", "status": 200, "latency_ms": 1.0,
         "bytes": 1}
    e.update(overrides)
    return e


def client(sink=None, token=TOKEN, max_bytes=64 * 1024) -> TestClient:
    settings = ApiSettings(ingest_token=token, ingest_max_bytes=max_bytes, retry_after_s=7,
                           latency_scale=0, error_rate=0)
    return TestClient(create_app(settings, emitter=NullEmitter(), sink=sink or MemorySink()))


def test_no_token_configured_means_disabled():
    with client(token=None) as c:
        r = c.post("/v1/logs", json=[event()], headers=AUTH)
    assert r.status_code == 503 and "LAE_INGEST_TOKEN" in r.json()["detail"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer"},
                                     {"Authorization": "Bearer wrong-token"}])
def test_missing_or_wrong_token_is_401_with_challenge(headers):
    sink = MemorySink()
    with client(sink) as c:
        r = c.post("/v1/logs", json=[event()], headers=headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert not sink.batches


def test_declared_too_large_is_413_before_reading():
    with client(max_bytes=100) as c:
        r = c.post("/v1/logs", content=b"x" * 101,
                   headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413


def test_streamed_too_large_is_413_without_content_length():
    def chunks():  # a generator body is sent chunked: no Content-Length to trust
        for _ in range(10):
            yield b"[" + b" " * 30

    with client(max_bytes=100) as c:
        r = c.post("/v1/logs", content=chunks(),
                   headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413


def test_unsupported_media_type_is_415():
    with client() as c:
        r = c.post("/v1/logs", content=b"<xml/>", headers={**AUTH, "Content-Type": "text/xml"})
    assert r.status_code == 415


def test_compressed_body_is_415():
    with client() as c:
        r = c.post("/v1/logs", content=b"\x1f\x8b...", headers={
            **AUTH, "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"})
    assert r.status_code == 415


def test_accepted_and_rejected_are_summarised_and_published():
    sink = MemorySink()
    bad = event(status=700)
    with client(sink) as c:
        r = c.post("/v1/logs", json=[event(), event(service="billing"), bad], headers=AUTH)
    assert r.status_code == 202
    assert r.json() == {"accepted": 2, "rejected": 1, "reasons": {"out_of_range:status": 1}}
    (batch,) = sink.batches
    assert [key for key, _ in batch.records] == [b"shop", b"billing"]
    assert [reason for _, reason in batch.rejected] == ["out_of_range:status"]


def test_ndjson_and_text_bodies():
    sink = MemorySink()
    line = ('10.0.0.1 - - [26/Nov/2026:10:00:00 +0000] "GET /v1/users/42 HTTP/1.1" 404 12 "-" '
            '"curl/8" 0.004')
    with client(sink) as c:
        r1 = c.post("/v1/logs", content="\n".join(json.dumps(event()) for _ in range(3)),
                    headers={**AUTH, "Content-Type": "application/x-ndjson"})
        r2 = c.post("/v1/logs?service=shop&host=web-2", content=line,
                    headers={**AUTH, "Content-Type": "text/plain"})
        r3 = c.post("/v1/logs", content=line, headers={
            **AUTH, "Content-Type": "text/plain", "X-LAE-Service": "shop", "X-LAE-Host": "h"})
        r4 = c.post("/v1/logs", content=line, headers={**AUTH, "Content-Type": "text/plain"})
    assert (r1.status_code, r1.json()["accepted"]) == (202, 3)
    assert (r2.status_code, r2.json()["accepted"]) == (202, 1)
    assert (r3.status_code, r3.json()["accepted"]) == (202, 1)
    assert r4.status_code == 400  # text lines without service/host cannot become events


def test_unsplittable_body_is_400():
    with client() as c:
        r = c.post("/v1/logs", content=b"[{", headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400


def test_sink_failure_is_503_with_retry_after_and_no_summary():
    with client(MemorySink(fail=True)) as c:
        r = c.post("/v1/logs", json=[event()], headers=AUTH)
        metrics = c.get("/metrics").json()
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "7"
    assert "accepted" not in r.json()
    assert metrics["ingest"] == {"unavailable": 1}


def test_requests_beyond_the_in_flight_bound_get_503_at_once():
    release = threading.Event()

    class BlockedSink:
        def publish(self, batch, timeout):
            release.wait(10)

    app = create_app(ApiSettings(ingest_token=TOKEN, latency_scale=0, error_rate=0),
                     emitter=NullEmitter(), sink=BlockedSink())
    bound = app.state.ingest.max_in_flight

    async def post_all():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            posts = [asyncio.create_task(c.post("/v1/logs", json=[event()], headers=AUTH))
                     for _ in range(bound + 3)]
            await asyncio.sleep(0.5)
            release.set()  # the first `bound` were waiting on the sink; now let them finish
            return [r.status_code for r in await asyncio.gather(*posts)]

    statuses = asyncio.run(post_all())
    assert sorted(statuses) == [202] * bound + [503] * 3
    app.state.ingest.close()
