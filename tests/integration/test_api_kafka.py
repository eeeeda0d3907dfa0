"""The API server against the real broker: access-log events and POST /v1/logs on the topics.

The app runs under a real uvicorn server (in a thread, on a free 127.0.0.1 port) with its
default Kafka emitter and sink; the tests read logs.raw / logs.dlq back with kafka-python and
find their own records by event_id (or by a unique user_id for server-generated events).
The broker-restart test comes last in this module because it stops the shared broker.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
import uvicorn
from kafka import KafkaConsumer, TopicPartition

from lae import schema
from lae.api.app import create_app
from lae.api.settings import ApiSettings
from lae.kafka import DLQ_REASON, parse_dlq_headers

pytestmark = pytest.mark.integration

TOKEN = "integration-token"  # noqa: S105 - a test-only bearer token
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def api_url(settings, kafka_service):
    api_settings = ApiSettings(service="itest-api", ingest_token=TOKEN, latency_scale=0,
                               error_rate=0, ingest_ack_timeout_s=3.0, retry_after_s=2)
    app = create_app(api_settings, settings=settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


class TopicReader:
    """Reads a topic from the offsets it had when created, i.e. only what came after."""

    def __init__(self, bootstrap: str, topic: str):
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        parts = [TopicPartition(topic, p) for p in self.consumer.partitions_for_topic(topic)]
        self.consumer.assign(parts)
        for tp, offset in self.consumer.end_offsets(parts).items():
            self.consumer.seek(tp, offset)

    def until(self, done, timeout: float = 20.0) -> list:
        """Poll records until ``done(records)`` holds; returns all records read."""
        records = []
        deadline = time.monotonic() + timeout
        while not done(records):
            assert time.monotonic() < deadline, f"timed out; read {len(records)} records"
            for batch in self.consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture
def raw_reader(settings, kafka_service):
    reader = TopicReader(settings.kafka_bootstrap, settings.raw_topic)
    yield reader
    reader.close()


@pytest.fixture
def dlq_reader(settings, kafka_service):
    reader = TopicReader(settings.kafka_bootstrap, settings.dlq_topic)
    yield reader
    reader.close()


def _json(value: bytes) -> dict:
    """A record's JSON object; other tests also write to these topics, garbage included."""
    try:
        obj = json.loads(value)
    except ValueError:
        return {}
    return obj if isinstance(obj, dict) else {}


def _event(**overrides) -> dict:
    event = {"event_id": str(uuid.uuid4()),
             "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
             "service": "itest-shipper", "host": "web-1", "method": "GET",
             "path": "/v1/items/{id}", "status": 200, "latency_ms": 12.5, "bytes": 512,
             "user_id": "u-7", "ip": "10.0.0.7", "user_agent": "curl/8", "schema": 1}
    event.update(overrides)
    return event


def test_middleware_events_arrive_on_logs_raw_intact(api_url, raw_reader):
    user = f"itest-{uuid.uuid4().hex[:12]}"
    with httpx.Client(base_url=api_url, headers={"X-User-Id": user}) as client:
        assert client.get("/v1/orders/7").status_code == 200
        assert client.get("/v1/orders/20").status_code == 404
        assert client.get("/v1/users/3", params={"force_status": 500}).status_code == 500
        assert client.post("/v1/orders", json={"items": ["a"]}).status_code == 201

    def mine(records):
        return [_json(r.value) for r in records if _json(r.value).get("user_id") == user]

    events = mine(raw_reader.until(lambda recs: len(mine(recs)) >= 4))
    got = sorted((e["method"], e["path"], e["status"]) for e in events)
    assert got == [("GET", "/v1/orders/{id}", 200), ("GET", "/v1/orders/{id}", 404),
                   ("GET", "/v1/users/{id}", 500), ("POST", "/v1/orders", 201)]
    for e in events:
        assert not isinstance(schema.validate(json.dumps(e).encode()), schema.Rejection)
        assert e["service"] == "itest-api" and e["ip"] == "127.0.0.1"
        assert e["latency_ms"] > 0 and e["bytes"] > 0


def test_ingest_valid_to_raw_invalid_to_dlq(api_url, raw_reader, dlq_reader):
    valid = [_event() for _ in range(20)]
    marker = uuid.uuid4().hex
    missing_ts = _event(user_id=marker)
    del missing_ts["ts"]
    bad_status = _event(user_id=marker, status="teapot")
    body = "\n".join(json.dumps(e) for e in [*valid, missing_ts, bad_status]) + "\n{oops\n"
    r = httpx.post(f"{api_url}/v1/logs", content=body,
                   headers={**AUTH, "Content-Type": "application/x-ndjson"})
    assert r.status_code == 202, r.text
    summary = r.json()
    assert summary["accepted"] == 20 and summary["rejected"] == 3
    assert summary["reasons"] == {"missing_field:ts": 1, "bad_type:status": 1, "invalid_json": 1}

    wanted = {e["event_id"] for e in valid}

    def found(records):
        return {_json(r.value).get("event_id") for r in records} & wanted

    records = raw_reader.until(lambda recs: found(recs) == wanted)
    by_id = {_json(r.value).get("event_id"): r for r in records}
    for e in valid:
        record = by_id[e["event_id"]]
        assert record.key == b"itest-shipper"
        # Intact = the same event; the endpoint writes the schema's canonical spelling.
        assert schema.validate(record.value) == schema.validate(json.dumps(e).encode())

    def dead(records):
        return [r for r in records if marker.encode() in r.value or r.value == b"{oops"]

    dlq = dead(dlq_reader.until(lambda recs: len(dead(recs)) >= 3))
    reasons = sorted(parse_dlq_headers(r.headers)[DLQ_REASON] for r in dlq)
    assert reasons == ["bad_type:status", "invalid_json", "missing_field:ts"]


def test_broker_down_503_then_retry_succeeds(api_url, kafka_service, raw_reader):
    events = [_event() for _ in range(10)]
    post = dict(url=f"{api_url}/v1/logs", json=events, headers=AUTH, timeout=30)
    kafka_service.down()
    try:
        r = httpx.post(**post)
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "2"
    finally:
        kafka_service.up()
    # The shipper's retry: the same body, same event_ids. Right after the restart the producer
    # may still be reconnecting, so retry like a shipper would, honouring Retry-After.
    deadline = time.monotonic() + 60
    while (r := httpx.post(**post)).status_code == 503:
        assert time.monotonic() < deadline, r.text
        time.sleep(int(r.headers["Retry-After"]))
    assert r.status_code == 202 and r.json()["accepted"] == 10

    wanted = {e["event_id"] for e in events}
    records = raw_reader.until(
        lambda recs: wanted <= {_json(r.value).get("event_id") for r in recs}, timeout=60)
    # At least once: records of the failed attempt may also have landed (same event_id).
    assert {_json(r.value).get("event_id") for r in records} >= wanted
