"""Access-log middleware: one schema-v1 event per request, with the route template.

The Kafka side is replaced by an in-memory emitter here: what is tested is how a request becomes
an event (template, status, bytes, latency, headers), which needs no broker; delivery to the
real logs.raw is tested in tests/integration/test_api_kafka.py.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lae import schema
from lae.api.app import create_app
from lae.api.middleware import MAX_USER_AGENT, UNMATCHED_PATH, AccessLogMiddleware
from lae.api.settings import ApiSettings


class ListEmitter:
    def __init__(self):
        self.events = []

    def emit(self, event):
        self.events.append(event)

    def stats(self):
        return {"emitted": len(self.events)}

    def close(self, timeout=10.0):
        pass


class NoSink:
    def publish(self, batch, timeout):
        raise AssertionError("not used here")


@pytest.fixture
def emitter():
    return ListEmitter()


@pytest.fixture
def client(emitter):
    app = create_app(ApiSettings(service="unit-api", latency_scale=0, error_rate=0),
                     emitter=emitter, sink=NoSink())
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize(("method", "url", "template", "status"), [
    ("GET", "/v1/orders/42", "/v1/orders/{id}", 200),
    ("GET", "/v1/orders/40", "/v1/orders/{id}", 404),
    ("GET", "/v1/users/7", "/v1/users/{id}", 200),
    ("GET", "/v1/users/abc", "/v1/users/{id}", 422),
    ("GET", "/v1/search?q=shoes", "/v1/search", 200),
    ("DELETE", "/v1/orders/1", "/v1/orders/{id}", 405),
    ("GET", "/no/such/path/123", UNMATCHED_PATH, 404),
    ("GET", "/health", "/health", 200),
])
def test_one_event_per_request_with_route_template(client, emitter, method, url, template,
                                                   status):
    response = client.request(method, url)
    assert response.status_code == status
    (event,) = emitter.events
    assert (event["method"], event["path"], event["status"]) == (method, template, status)
    assert event["bytes"] == len(response.content)


def test_event_passes_the_schema(client, emitter):
    long_agent = "x" * (MAX_USER_AGENT + 100)
    client.post("/v1/orders", json={"items": ["sku-9"]},
                headers={"X-User-Id": "user-1", "User-Agent": long_agent})
    (event,) = emitter.events
    result = schema.validate(json.dumps(event).encode())
    assert not isinstance(result, schema.Rejection), result
    assert event["user_id"] == "user-1"
    assert event["user_agent"] == "x" * MAX_USER_AGENT
    assert event["service"] == "unit-api" and event["status"] == 201
    assert "ip" not in event  # TestClient's client is "testclient", not an IP address


def test_ts_is_request_start_and_latency_covers_the_handler(emitter):
    app = FastAPI()

    @app.get("/slow/{id}")
    async def slow(id: int):
        time.sleep(0.05)
        return {"id": id}

    wrapped = AccessLogMiddleware(app, emitter=emitter, service="unit-api", host="h1")
    before = time.time()
    with TestClient(wrapped) as c:
        c.get("/slow/1")
    (event,) = emitter.events
    ts = datetime.fromisoformat(event["ts"])
    assert ts.utcoffset().total_seconds() == 0
    assert before - 0.01 <= ts.timestamp() <= before + 0.04  # the start, not the end
    assert event["latency_ms"] >= 50
    assert event["path"] == "/slow/{id}" and event["host"] == "h1"


def test_unhandled_exception_is_logged_as_500(emitter):
    app = FastAPI()

    @app.get("/boom")
    async def boom():
        raise RuntimeError("bug")

    app.add_middleware(AccessLogMiddleware, emitter=emitter, service="unit-api")
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.get("/boom").status_code == 500
    (event,) = emitter.events
    assert (event["path"], event["status"]) == ("/boom", 500)


def test_missing_or_blank_user_id_is_null(client, emitter):
    client.get("/v1/users/1")
    client.get("/v1/users/1", headers={"X-User-Id": "  "})
    assert [e["user_id"] for e in emitter.events] == [None, None]


def test_header_text_is_made_schema_safe(client, emitter):
    client.get("/v1/users/1", headers={"X-User-Id": "a\tb" + "x" * 300})
    (event,) = emitter.events
    assert event["user_id"] == ("a b" + "x" * 300)[:256]
    assert not isinstance(schema.validate(json.dumps(event).encode()), schema.Rejection)
