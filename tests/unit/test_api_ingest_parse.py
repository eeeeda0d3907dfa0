"""Splitting POST /v1/logs bodies: JSON array, NDJSON, combined-format text. Pure functions."""

from __future__ import annotations

import json
import uuid

import pytest

from lae import schema
from lae.api.ingest_parse import BadBody, parse_body


def event(**overrides) -> dict:
    e = {"event_id": str(uuid.uuid4()), "ts": "2026-11-26T10:00:00.123Z", "service": "shop",
         "host": "web-1", "method": "GET", "path": "/v1/orders/{id}", "status": 200,
         "latency_ms": 3.5, "bytes": 100}
    e.update(overrides)
    return e


COMBINED = ('10.1.2.3 - alice [26/Nov/2026:10:00:00 +0000] "GET /v1/orders/123?x=1 HTTP/1.1" '
            '200 2326 "-" "Mozilla/5.0" 0.012')


def test_json_array_valid_and_rejected():
    missing_ts = event()
    del missing_ts["ts"]
    items = [event(), event(service="billing"), missing_ts, event(status="200"), 42]
    batch = parse_body(json.dumps(items).encode(), "application/json; charset=utf-8")
    assert [key for key, _ in batch.records] == [b"shop", b"billing"]
    for (_, value), item in zip(batch.records, items, strict=False):
        assert schema.validate(value) == schema.validate(json.dumps(item).encode())
    assert batch.summary() == {"accepted": 2, "rejected": 3, "reasons": {
        "missing_field:ts": 1, "bad_type:status": 1, "not_an_object": 1}}
    # A rejected element keeps its content for logs.dlq.
    assert json.loads(batch.rejected[0][0]) == missing_ts


def test_json_single_object_is_a_batch_of_one():
    batch = parse_body(json.dumps(event()).encode(), "application/json")
    assert len(batch.records) == 1 and not batch.rejected


@pytest.mark.parametrize("body", [b"{not json", b'"a string"', b"", b"[1, 2"])
def test_json_body_that_cannot_be_split_is_bad(body):
    with pytest.raises(BadBody):
        parse_body(body, "application/json")


def test_ndjson_judges_each_line_and_keeps_its_raw_bytes():
    good = json.dumps(event()).encode()
    body = b"\n".join([good, b"", b"{broken", json.dumps(event(bytes=-1)).encode(), good]) + b"\r\n"
    batch = parse_body(body, "application/x-ndjson")
    assert len(batch.records) == 2
    assert batch.reasons() == {"invalid_json": 1, "out_of_range:bytes": 1}
    assert batch.rejected[0][0] == b"{broken"


def test_too_large_event_is_rejected_per_event():
    huge = event(user_agent="x" * 500, user_id="u" * 200)
    huge["host"] = "h" * 255
    big = json.dumps(event()).encode()[:-1] + b"," + b'"pad":"' + b"p" * 20000 + b'"}'
    batch = parse_body(b"\n".join([json.dumps(huge).encode(), big]), "application/x-ndjson")
    assert batch.reasons() == {"too_large": 1} and len(batch.records) == 1


def test_combined_lines_become_events_with_route_templates():
    body = f"{COMBINED}\nnot a log line\n{COMBINED.replace('alice', 'bob')}\n".encode()
    batch = parse_body(body, "text/plain", service="shop", host="web-1")
    assert batch.reasons() == {"bad_format:combined_log": 1}
    events = [schema.validate(value) for _, value in batch.records]
    assert [e.user_id for e in events] == ["alice", "bob"]
    assert {(e.path, e.status, e.service, e.host, e.ip) for e in events} == {
        ("/v1/orders/{id}", 200, "shop", "web-1", "10.1.2.3")}
    assert events[0].latency_ms == pytest.approx(12.0)


def test_combined_lines_need_service_and_host():
    with pytest.raises(BadBody):
        parse_body(COMBINED.encode(), "text/plain", service="shop")


def test_invalid_utf8_line_is_rejected_not_fatal():
    body = COMBINED.encode() + b"\n" + b"\xff\xfe bad"
    batch = parse_body(body, "text/plain", service="shop", host="web-1")
    assert batch.reasons() == {"invalid_utf8": 1} and len(batch.records) == 1
