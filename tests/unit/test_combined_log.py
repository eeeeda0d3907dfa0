"""parse_combined and RouteRule against hand-written lines and expectations."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from lae.schema import Event, Rejection, RouteRule, parse_combined

APACHE = (
    '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
    '"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)" 1500'
)
NGINX = (
    '203.0.113.9 - - [26/Nov/2026:10:15:30 +0100] "POST /v1/orders/12345/items?debug=1 HTTP/1.1" '
    '201 - "-" "curl/8.5.0" 0.123'
)
# The namespace is part of the contract (ids must stay stable across releases).
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://lae.invalid/combined-log/v1")


def test_apache_line_with_microseconds() -> None:
    assert parse_combined(APACHE, "web", "www-1") == Event(
        event_id=str(uuid.uuid5(NAMESPACE, "web\nwww-1\n" + APACHE)),
        ts=datetime(2000, 10, 10, 20, 55, 36, tzinfo=UTC),
        service="web",
        host="www-1",
        method="GET",
        path="/apache_pb.gif",
        status=200,
        latency_ms=1.5,
        bytes=2326,
        user_id="frank",
        ip="127.0.0.1",
        user_agent="Mozilla/4.08 [en] (Win98; I ;Nav)",
    )


def test_nginx_line_with_seconds_dash_bytes_and_templated_path() -> None:
    event = parse_combined(NGINX.encode() + b"\n", "orders", "api-1")
    assert event == Event(
        event_id=str(uuid.uuid5(NAMESPACE, "orders\napi-1\n" + NGINX)),
        ts=datetime(2026, 11, 26, 9, 15, 30, tzinfo=UTC),
        service="orders",
        host="api-1",
        method="POST",
        path="/v1/orders/{id}/items",
        status=201,
        latency_ms=123.0,
        bytes=0,
        user_id=None,
        ip="203.0.113.9",
        user_agent="curl/8.5.0",
    )


def test_event_id_is_deterministic_and_depends_on_source() -> None:
    a = parse_combined(NGINX, "orders", "api-1")
    assert a.event_id == parse_combined(NGINX + "\r\n", "orders", "api-1").event_id
    assert a.event_id != parse_combined(NGINX, "orders", "api-2").event_id
    assert a.event_id != parse_combined(NGINX, "billing", "api-1").event_id
    assert a.event_id != parse_combined(NGINX.replace("0.123", "0.124"), "orders", "api-1").event_id


def test_missing_request_time_is_rejected_unless_a_default_is_given() -> None:
    line = NGINX.rsplit(" ", 1)[0]
    assert parse_combined(line, "orders", "api-1").reason == "missing_field:latency_ms"
    assert parse_combined(line + " -", "orders", "api-1").reason == "missing_field:latency_ms"
    event = parse_combined(line, "orders", "api-1", default_latency_ms=0.0)
    assert isinstance(event, Event) and event.latency_ms == 0.0


def test_escaped_quotes_and_hostname_client() -> None:
    line = (
        'client.example.com - - [26/Nov/2026:10:15:30 +0000] "GET /a HTTP/1.1" 200 5 '
        '"-" "say \\"hi\\" \\\\ \\x01" 0.001'
    )
    event = parse_combined(line, "web", "h")
    assert isinstance(event, Event), event
    assert event.ip is None  # a hostname is not an IP; the field is optional
    assert event.user_agent == 'say "hi" \\ \\x01'
    assert event.latency_ms == 1.0


def test_long_user_agent_is_cut_to_512() -> None:
    line = NGINX.replace("curl/8.5.0", "U" * 2000)
    event = parse_combined(line, "orders", "api-1")
    assert isinstance(event, Event) and event.user_agent == "U" * 512


def test_http09_request_line_and_ipv6_client() -> None:
    line = '2001:db8::7 - - [26/Nov/2026:10:15:30 +0000] "GET /" 200 10 "-" "-" 0.010'
    event = parse_combined(line, "web", "h")
    assert isinstance(event, Event), event
    assert (event.ip, event.path, event.user_agent, event.latency_ms) == (
        "2001:db8::7",
        "/",
        None,
        10.0,
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "bad_format:combined_log"),
        ("garbage", "bad_format:combined_log"),
        ('{"event_id": "x"}', "bad_format:combined_log"),
        (NGINX.replace("[26/Nov/2026:10:15:30 +0100]", "[26/Nov/2026:10:15:30]"), "bad_format:ts"),
        (NGINX.replace("Nov", "Foo"), "bad_format:ts"),
        (NGINX.replace("26/Nov", "31/Feb"), "bad_format:ts"),
        (NGINX.replace("2026", "1969"), "out_of_range:ts"),
        (
            NGINX.replace('"POST /v1/orders/12345/items?debug=1 HTTP/1.1"', '"-"'),
            "bad_format:request",
        ),
        (NGINX.replace("POST", "\\x16\\x03\\x01"), "bad_format:method"),
        (NGINX.replace("POST", "PROPFIND"), "bad_format:method"),
        (NGINX.replace("POST", "post"), "bad_format:method"),
        (NGINX.replace("/v1/orders/12345/items?debug=1", "*"), "bad_format:path"),
        (NGINX.replace(" 201 ", " 999 "), "out_of_range:status"),
        (NGINX.replace(" 201 ", " 2O1 "), "bad_format:combined_log"),
        (NGINX.replace(' - "-"', ' 99999999999999999999999 "-"'), "out_of_range:bytes"),
        (NGINX.replace("0.123", "fast"), "bad_format:request_time"),
        (NGINX.replace("0.123", "1e3"), "bad_format:request_time"),
        (NGINX + " extra", "bad_format:combined_log"),
        (NGINX.replace("- - [", "- '; DROP TABLE users;-- ["), "bad_format:combined_log"),
        (NGINX.replace("- - [", "- \x00 ["), "bad_format:user_id"),
        (NGINX.replace("curl/8.5.0", "a\tb"), "bad_format:user_agent"),
        (NGINX.replace("2026", "２０２６"), "bad_format:ts"),
        (NGINX.replace(" 201 ", " ２０１ "), "bad_format:combined_log"),
        (NGINX + "\n" + NGINX, "bad_format:combined_log"),
        (NGINX + " " * 17000, "too_large"),
    ],
)
def test_rejections(line: str, reason: str) -> None:
    result = parse_combined(line, "orders", "api-1")
    assert isinstance(result, Rejection), result
    assert result.reason == reason, result


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"\xff" + NGINX.encode(), "invalid_utf8"),
        (NGINX.encode() + b" " * 17000, "too_large"),
        (NGINX.replace("curl", "\ud800"), "invalid_utf8"),
        (None, "bad_type:combined_log"),
    ],
)
def test_encoding_rejections(line: object, reason: str) -> None:
    assert parse_combined(line, "orders", "api-1").reason == reason  # type: ignore[arg-type]


def test_bad_service_or_host_uses_the_schema_rules() -> None:
    assert parse_combined(NGINX, "Orders!", "api-1").reason == "bad_format:service"
    assert parse_combined(NGINX, "orders", "").reason == "out_of_range:host"


@pytest.mark.parametrize(
    ("url", "template"),
    [
        ("/", "/"),
        ("", ""),
        ("/v1/orders", "/v1/orders"),
        ("/v1/orders/42", "/v1/orders/{id}"),
        ("/v1/orders/42/", "/v1/orders/{id}/"),
        ("/v1/orders/42?x=1&y=2", "/v1/orders/{id}"),
        ("/v1/orders/42#frag", "/v1/orders/{id}"),
        ("/v1/users/0B7E2C1A-4F5D-4E8A-9C3B-2D1E0F9A8B7C/orders/7", "/v1/users/{id}/orders/{id}"),
        ("/v1/orders/42abc", "/v1/orders/42abc"),
        ("/v2/x", "/v2/x"),
        ("http://example.com/v1/orders/9?q", "/v1/orders/{id}"),
        ("https://example.com", "/"),
    ],
)
def test_default_route_rule(url: str, template: str) -> None:
    assert RouteRule().template(url) == template


def test_extra_route_rules_run_before_id_replacement() -> None:
    rule = RouteRule(
        [(r"^/users/[^/]+/avatar$", "/users/{name}/avatar"), (r"[0-9a-f]{24}", "{oid}")]
    )
    assert rule.template("/users/alice/avatar?size=2") == "/users/{name}/avatar"
    assert rule.template("/docs/5f1d7a3b9c8e7d6f5a4b3c2d/v/3") == "/docs/{oid}/v/{id}"
    assert RouteRule(ids=False).template("/v1/orders/42") == "/v1/orders/42"


def test_route_rule_is_used_by_parse_combined() -> None:
    rule = RouteRule([(r"^/v1/orders/[0-9]+/items$", "/v1/orders/{order}/items")])
    event = parse_combined(NGINX, "orders", "api-1", rule)
    assert isinstance(event, Event) and event.path == "/v1/orders/{order}/items"
