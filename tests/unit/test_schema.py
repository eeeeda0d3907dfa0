"""lae.schema.validate / to_json_bytes / column schemas against hand-written expectations.

CASES is shared with test_schema_spark.py: the Spark validation must give the same reasons.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from lae.schema import (
    FIELD_NAMES,
    MAX_EVENT_BYTES,
    Event,
    Rejection,
    archive_arrow_schema,
    arrow_schema,
    to_json_bytes,
    validate,
)

BASE = {
    "event_id": "0b7e2c1a-4f5d-4e8a-9c3b-2d1e0f9a8b7c",
    "ts": "2026-11-26T10:15:30.250+01:00",
    "service": "orders",
    "host": "api-1",
    "method": "GET",
    "path": "/v1/orders/{id}",
    "status": 200,
    "latency_ms": 12.5,
    "bytes": 512,
    "user_id": "u-42",
    "ip": "203.0.113.7",
    "user_agent": "curl/8.5.0",
}
BASE_EVENT = Event(
    event_id="0b7e2c1a-4f5d-4e8a-9c3b-2d1e0f9a8b7c",
    ts=datetime(2026, 11, 26, 9, 15, 30, 250000, tzinfo=UTC),
    service="orders",
    host="api-1",
    method="GET",
    path="/v1/orders/{id}",
    status=200,
    latency_ms=12.5,
    bytes=512,
    user_id="u-42",
    ip="203.0.113.7",
    user_agent="curl/8.5.0",
    schema=1,
)
DROP = object()


def msg(**changes: object) -> bytes:
    """BASE with fields replaced (or removed with DROP), as compact JSON."""
    event = {**BASE, **changes}
    return json.dumps({k: v for k, v in event.items() if v is not DROP}).encode()


def raw_msg(fragment: str) -> bytes:
    """BASE with one raw JSON text spliced in as the last member (for non-Python JSON)."""
    return msg()[:-1] + b"," + fragment.encode() + b"}"


def without(name: str) -> bytes:
    return msg(**{name: DROP})


# (id, raw message, expected reason); None means valid.
CASES: list[tuple[str, bytes, str | None]] = [
    ("valid", msg(), None),
    ("valid_minimal", msg(user_id=DROP, ip=DROP, user_agent=DROP), None),
    ("valid_nulls", msg(user_id=None, ip=None, user_agent=None, schema=None), None),
    ("valid_schema_1", msg(schema=1), None),
    ("valid_padded_to_limit", msg() + b" " * (MAX_EVENT_BYTES - len(msg())), None),
    (
        "valid_injection_looking",
        msg(
            user_id="'; DROP TABLE users;--",
            user_agent="<script>alert(1)</script>",
            path="/<script>/{id}",
        ),
        None,
    ),
    # size and encoding
    ("too_large", msg() + b" " * (MAX_EVENT_BYTES - len(msg()) + 1), "too_large"),
    ("too_large_garbage", b"\xff" * (MAX_EVENT_BYTES + 1), "too_large"),
    ("invalid_utf8_ff", b"\xff" + msg(), "invalid_utf8"),
    ("invalid_utf8_overlong", msg(host="X").replace(b"X", b"\xc0\xaf"), "invalid_utf8"),
    ("invalid_utf8_surrogate", msg(host="X").replace(b"X", b"\xed\xa0\x80"), "invalid_utf8"),
    ("invalid_utf8_truncated", msg(host="X").replace(b"X", b"\xe2\x82"), "invalid_utf8"),
    ("invalid_utf8_utf16", msg().decode().encode("utf-16"), "invalid_utf8"),
    # JSON syntax
    ("empty", b"", "invalid_json"),
    ("blank", b" \n\t", "invalid_json"),
    ("truncated", msg()[:40], "invalid_json"),
    ("trailing_text", msg() + b" x", "invalid_json"),
    ("two_objects", msg() + msg(), "invalid_json"),
    ("trailing_comma", msg()[:-1] + b",}", "invalid_json"),
    ("single_quotes", msg().replace(b'"', b"'"), "invalid_json"),
    ("nan", msg(latency_ms=0.5).replace(b"0.5", b"NaN"), "invalid_json"),
    ("infinity", msg(latency_ms=0.5).replace(b"0.5", b"Infinity"), "invalid_json"),
    ("minus_infinity", msg(latency_ms=0.5).replace(b"0.5", b"-Infinity"), "invalid_json"),
    ("bom", b"\xef\xbb\xbf" + msg(), "invalid_json"),
    ("duplicate_key", raw_msg('"status":201'), "invalid_json"),
    ("duplicate_nested_key", raw_msg('"x":{"a":1,"a":2}'), "invalid_json"),
    ("lone_high_surrogate", msg(host="X").replace(b"X", b"\\ud800"), "invalid_json"),
    ("lone_low_surrogate", msg(user_agent="X").replace(b"X", b"a\\udc00b"), "invalid_json"),
    ("lone_surrogate_in_key", raw_msg('"\\ud800":1'), "invalid_json"),
    ("raw_nul_in_string", msg(host="X").replace(b"X", b"a\x00b"), "invalid_json"),
    ("raw_newline_in_string", msg(host="X").replace(b"X", b"a\nb"), "invalid_json"),
    ("comment", b"// hi\n" + msg(), "invalid_json"),
    ("number_1500_digits", msg(latency_ms=0.5).replace(b"0.5", b"1" * 1500), "invalid_json"),
    (
        "fraction_1500_digits",
        msg(latency_ms=0.5).replace(b"0.5", b"0." + b"1" * 1500),
        "invalid_json",
    ),
    ("deep_nesting", b'{"x":' + b"[" * 5000 + b"]" * 5000 + b"}", "invalid_json"),
    # shape
    ("array", b"[" + msg() + b"]", "not_an_object"),
    ("empty_array", b"[]", "not_an_object"),
    ("string", b'"orders"', "not_an_object"),
    ("number", b"42", "not_an_object"),
    ("null", b"null", "not_an_object"),
    ("true", b"true", "not_an_object"),
    ("empty_object", b"{}", "missing_field:event_id"),
    # version and unknown fields (checked before the fields)
    ("schema_2", msg(schema=2), "unknown_schema_version"),
    ("schema_0", msg(schema=0), "unknown_schema_version"),
    ("schema_string", msg(schema="1"), "unknown_schema_version"),
    ("schema_float", msg(schema=1.0), "unknown_schema_version"),
    ("schema_bool", msg(schema=True), "unknown_schema_version"),
    ("schema_2_missing_fields", b'{"schema":2}', "unknown_schema_version"),
    ("unknown_field", msg(debug=True), "unknown_field"),
    ("unknown_field_case", msg(Status=200), "unknown_field"),
    ("unknown_field_empty_key", msg(**{"": 1}), "unknown_field"),
    ("unknown_field_nested", msg(extra={"a": [1, {"b": None}]}), "unknown_field"),
    ("unknown_before_missing", b'{"debug":1}', "unknown_field"),
    # missing / null required fields, in FIELDS order
    *[(f"missing_{n}", without(n), f"missing_field:{n}") for n in FIELD_NAMES[:9]],
    ("null_status", msg(status=None), "missing_field:status"),
    ("missing_first_wins", msg(event_id=DROP, status=DROP), "missing_field:event_id"),
    # types
    ("status_string", msg(status="200"), "bad_type:status"),
    ("status_float", msg(status=200.0), "bad_type:status"),
    ("status_exponent", msg(status=0).replace(b'"status": 0', b'"status": 2e2'), "bad_type:status"),
    ("status_bool", msg(status=True), "bad_type:status"),
    ("status_array", msg(status=[200]), "bad_type:status"),
    ("status_object", msg(status={"code": 200}), "bad_type:status"),
    ("status_1e309", msg(status=0).replace(b'"status": 0', b'"status": 1e309'), "bad_type:status"),
    ("latency_string", msg(latency_ms="12"), "bad_type:latency_ms"),
    ("latency_bool", msg(latency_ms=False), "bad_type:latency_ms"),
    ("bytes_fraction", msg(bytes=1.5), "bad_type:bytes"),
    ("bytes_whole_float", msg(bytes=512.0), "bad_type:bytes"),
    ("event_id_number", msg(event_id=12345), "bad_type:event_id"),
    ("ts_epoch_number", msg(ts=1764148530), "bad_type:ts"),
    ("service_array", msg(service=["orders"]), "bad_type:service"),
    ("host_object", msg(host={}), "bad_type:host"),
    ("method_number", msg(method=1), "bad_type:method"),
    ("path_bool", msg(path=True), "bad_type:path"),
    ("user_id_number", msg(user_id=42), "bad_type:user_id"),
    ("ip_number", msg(ip=3232235777), "bad_type:ip"),
    ("user_agent_bool", msg(user_agent=False), "bad_type:user_agent"),
    # ranges (numbers) and lengths (strings)
    ("status_99", msg(status=99), "out_of_range:status"),
    ("status_600", msg(status=600), "out_of_range:status"),
    ("status_negative", msg(status=-200), "out_of_range:status"),
    ("status_huge", msg(status=10**20), "out_of_range:status"),
    ("latency_negative", msg(latency_ms=-0.001), "out_of_range:latency_ms"),
    ("latency_1e309", msg(latency_ms=0.5).replace(b"0.5", b"1e309"), "out_of_range:latency_ms"),
    ("latency_400_digits", msg(latency_ms=10**399), "out_of_range:latency_ms"),
    ("bytes_negative", msg(bytes=-1), "out_of_range:bytes"),
    ("bytes_2_63", msg(bytes=2**63), "out_of_range:bytes"),
    ("service_empty", msg(service=""), "out_of_range:service"),
    ("service_65", msg(service="a" * 65), "out_of_range:service"),
    ("host_empty", msg(host=""), "out_of_range:host"),
    ("host_256", msg(host="h" * 256), "out_of_range:host"),
    ("path_513", msg(path="/" + "p" * 512), "out_of_range:path"),
    ("user_id_empty", msg(user_id=""), "out_of_range:user_id"),
    ("user_id_257", msg(user_id="u" * 257), "out_of_range:user_id"),
    ("user_agent_513", msg(user_agent="a" * 513), "out_of_range:user_agent"),
    ("user_agent_513_astral", msg(user_agent="\U0001f600" * 513), "out_of_range:user_agent"),
    ("ts_before_1970", msg(ts="1969-12-31T23:59:59.999999Z"), "out_of_range:ts"),
    ("ts_before_1970_by_offset", msg(ts="1970-01-01T00:30:00+01:00"), "out_of_range:ts"),
    ("ts_2100", msg(ts="2100-01-01T00:00:00Z"), "out_of_range:ts"),
    ("ts_year_1", msg(ts="0001-01-01T00:00:00+01:00"), "out_of_range:ts"),
    ("ts_year_0", msg(ts="0000-01-01T00:00:00Z"), "bad_format:ts"),
    ("ts_year_9999", msg(ts="9999-12-31T23:59:59-01:00"), "out_of_range:ts"),
    # formats
    ("event_id_not_uuid", msg(event_id="not-a-uuid"), "bad_format:event_id"),
    (
        "event_id_no_hyphens",
        msg(event_id="0b7e2c1a4f5d4e8a9c3b2d1e0f9a8b7c"),
        "bad_format:event_id",
    ),
    (
        "event_id_braces",
        msg(event_id="{0b7e2c1a-4f5d-4e8a-9c3b-2d1e0f9a8b7c}"),
        "bad_format:event_id",
    ),
    ("ts_naive", msg(ts="2026-11-26T10:15:30"), "bad_format:ts"),
    ("ts_date_only", msg(ts="2026-11-26"), "bad_format:ts"),
    ("ts_space", msg(ts="2026-11-26 10:15:30Z"), "bad_format:ts"),
    ("ts_basic_offset", msg(ts="2026-11-26T10:15:30+0100"), "bad_format:ts"),
    ("ts_feb_30", msg(ts="2026-02-30T00:00:00Z"), "bad_format:ts"),
    ("ts_leap_second", msg(ts="2026-12-31T23:59:60Z"), "bad_format:ts"),
    ("ts_hour_24", msg(ts="2026-11-26T24:00:00Z"), "bad_format:ts"),
    ("ts_10_fraction_digits", msg(ts="2026-11-26T10:15:30.1234567890Z"), "bad_format:ts"),
    ("ts_offset_19h", msg(ts="2026-11-26T10:15:30+19:00"), "bad_format:ts"),
    ("ts_clf", msg(ts="26/Nov/2026:10:15:30 +0000"), "bad_format:ts"),
    ("ts_fullwidth_digits", msg(ts="２０２６-11-26T10:15:30Z"), "bad_format:ts"),
    ("ts_trailing_newline", msg(ts="2026-11-26T10:15:30Z\n"), "bad_format:ts"),
    ("ts_empty", msg(ts=""), "bad_format:ts"),
    ("service_upper", msg(service="Orders"), "bad_format:service"),
    ("service_space", msg(service="order service"), "bad_format:service"),
    ("service_accent", msg(service="ordérs"), "bad_format:service"),
    ("service_sql", msg(service="'; DROP TABLE events;--"), "bad_format:service"),
    ("service_newline", msg(service="orders\n"), "bad_format:service"),
    ("host_space", msg(host="api 1"), "bad_format:host"),
    ("host_nul", msg(host="api\u00001"), "bad_format:host"),
    ("host_non_ascii", msg(host="hôst"), "bad_format:host"),
    ("method_lower", msg(method="get"), "bad_format:method"),
    ("method_webdav", msg(method="PROPFIND"), "bad_format:method"),
    ("method_padded", msg(method="GET "), "bad_format:method"),
    ("path_relative", msg(path="v1/orders"), "bad_format:path"),
    ("path_query", msg(path="/v1/orders?id=1"), "bad_format:path"),
    ("path_fragment", msg(path="/v1/orders#top"), "bad_format:path"),
    ("path_space", msg(path="/v1/my orders"), "bad_format:path"),
    ("path_nul", msg(path="/v1/\u0000"), "bad_format:path"),
    ("user_id_nul", msg(user_id="a\u0000b"), "bad_format:user_id"),
    ("user_agent_newline", msg(user_agent="curl\r\nX-Injected: 1"), "bad_format:user_agent"),
    ("ip_octet_999", msg(ip="999.1.2.3"), "bad_format:ip"),
    ("ip_leading_zero", msg(ip="01.2.3.4"), "bad_format:ip"),
    ("ip_three_octets", msg(ip="1.2.3"), "bad_format:ip"),
    ("ip_zone_id", msg(ip="fe80::1%eth0"), "bad_format:ip"),
    ("ip_two_double_colons", msg(ip="1::2::3"), "bad_format:ip"),
    ("ip_empty", msg(ip=""), "bad_format:ip"),
    ("ip_padded", msg(ip=" 1.2.3.4"), "bad_format:ip"),
    ("ip_hostname", msg(ip="localhost"), "bad_format:ip"),
    # first failing field (FIELDS order) wins
    ("ts_before_status", msg(ts="yesterday", status="200"), "bad_format:ts"),
]

CASE_IDS = [c[0] for c in CASES]
assert len(set(CASE_IDS)) == len(CASE_IDS)


@pytest.mark.parametrize(("raw", "reason"), [c[1:] for c in CASES], ids=CASE_IDS)
def test_validate_reason(raw: bytes, reason: str | None) -> None:
    result = validate(raw)
    if reason is None:
        assert isinstance(result, Event), result
    else:
        assert isinstance(result, Rejection), result
        assert result.reason == reason, result


def test_valid_event_values() -> None:
    assert validate(msg()) == BASE_EVENT


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"event_id": "0B7E2C1A-4F5D-4E8A-9C3B-2D1E0F9A8B7C"},
            {"event_id": "0b7e2c1a-4f5d-4e8a-9c3b-2d1e0f9a8b7c"},
        ),
        ({"ts": "2026-11-26t09:15:30.25z"}, {}),
        ({"ts": "2026-11-26T09:15:30.250000999Z"}, {}),  # nanoseconds truncated
        ({"ts": "2026-11-26T09:15:30.250-00:00"}, {}),
        ({"ts": "2026-11-26T23:15:30.250+14:00"}, {}),
        ({"ts": "2026-11-26T03:15:30.250-06:00"}, {}),
        (
            {"ts": "2026-11-27T03:15:30.250+18:00"},
            {"ts": datetime(2026, 11, 26, 9, 15, 30, 250000, tzinfo=UTC)},
        ),
        ({"latency_ms": 12}, {"latency_ms": 12.0}),
        ({"latency_ms": 0}, {"latency_ms": 0.0}),
        ({"latency_ms": 1e300}, {"latency_ms": 1e300}),
        ({"bytes": 0}, {"bytes": 0}),
        ({"bytes": 2**63 - 1}, {"bytes": 2**63 - 1}),
        ({"status": 100}, {"status": 100}),
        ({"status": 599}, {"status": 599}),
        (
            {"user_id": None, "ip": DROP, "user_agent": None},
            {"user_id": None, "ip": None, "user_agent": None},
        ),
        ({"user_agent": ""}, {"user_agent": ""}),
        ({"user_agent": "\U0001f600" * 512}, {"user_agent": "\U0001f600" * 512}),
        ({"ip": "2001:db8::1"}, {"ip": "2001:db8::1"}),
        ({"ip": "::ffff:192.0.2.1"}, {"ip": "::ffff:192.0.2.1"}),
        ({"ip": "::"}, {"ip": "::"}),
        ({"service": "a" * 64}, {"service": "a" * 64}),
        ({"service": "svc_1.v-2"}, {"service": "svc_1.v-2"}),
        ({"schema": None}, {"schema": 1}),
    ],
)
def test_normalization(changes: dict, expected: dict) -> None:
    assert validate(msg(**changes)) == BASE_EVENT._replace(**expected)


def test_minus_zero_latency_becomes_plus_zero() -> None:
    event = validate(msg(latency_ms=0.5).replace(b"0.5", b"-0.0"))
    assert isinstance(event, Event)
    assert event.latency_ms == 0.0 and math.copysign(1.0, event.latency_ms) == 1.0
    tiny = validate(msg(latency_ms=0.5).replace(b"0.5", b"-1e-400"))
    assert isinstance(tiny, Event) and math.copysign(1.0, tiny.latency_ms) == 1.0


def test_json_escapes_are_decoded() -> None:
    raw = (
        msg()
        .replace(b'"status"', b'"\\u0073tatus"')
        .replace(b'"curl/8.5.0"', b'"\\ud83d\\ude00 \\"q\\""')
    )
    assert validate(raw) == BASE_EVENT._replace(user_agent='\U0001f600 "q"')


def test_whitespace_around_json_is_fine() -> None:
    assert validate(b" \r\n\t" + json.dumps(BASE, indent=2).encode() + b"\n") == BASE_EVENT


def test_accepts_bytes_like_and_str() -> None:
    assert validate(bytearray(msg())) == BASE_EVENT
    assert validate(memoryview(msg())) == BASE_EVENT
    assert validate(msg().decode()) == BASE_EVENT
    assert validate('{"host":"\ud800"}').reason == "invalid_utf8"


def test_rejection_detail_is_bounded() -> None:
    rejection = validate(msg(service="x" * 60 + "!"))
    assert rejection.reason == "bad_format:service"
    assert len(rejection.detail) <= 100


def test_to_json_bytes_is_canonical() -> None:
    assert to_json_bytes(BASE_EVENT) == (
        b'{"event_id":"0b7e2c1a-4f5d-4e8a-9c3b-2d1e0f9a8b7c","ts":"2026-11-26T09:15:30.250000Z",'
        b'"service":"orders","host":"api-1","method":"GET","path":"/v1/orders/{id}",'
        b'"status":200,"latency_ms":12.5,"bytes":512,"user_id":"u-42","ip":"203.0.113.7",'
        b'"user_agent":"curl/8.5.0","schema":1}'
    )
    minimal = BASE_EVENT._replace(user_id=None, ip=None, user_agent="h\u00e9")
    assert to_json_bytes(minimal).endswith(b'"bytes":512,"user_agent":"h\xc3\xa9","schema":1}')


def test_to_json_bytes_round_trips_and_converts_zones() -> None:
    from datetime import timedelta, timezone

    shifted = BASE_EVENT._replace(ts=BASE_EVENT.ts.astimezone(timezone(timedelta(hours=-3))))
    assert validate(to_json_bytes(shifted)) == BASE_EVENT
    with pytest.raises(ValueError, match="naive"):
        to_json_bytes(BASE_EVENT._replace(ts=datetime(2026, 11, 26)))


def test_arrow_schema_matches_definition() -> None:
    import pyarrow as pa

    expected = [
        ("event_id", pa.string(), False),
        ("ts", pa.timestamp("us", tz="UTC"), False),
        ("service", pa.string(), False),
        ("host", pa.string(), False),
        ("method", pa.string(), False),
        ("path", pa.string(), False),
        ("status", pa.int32(), False),
        ("latency_ms", pa.float64(), False),
        ("bytes", pa.int64(), False),
        ("user_id", pa.string(), True),
        ("ip", pa.string(), True),
        ("user_agent", pa.string(), True),
        ("schema", pa.int32(), False),
    ]
    assert [(f.name, f.type, f.nullable) for f in arrow_schema()] == expected
    kafka = [(f.name, f.type, f.nullable) for f in archive_arrow_schema()][len(expected) :]
    assert kafka == [
        ("topic", pa.string(), False),
        ("partition", pa.int32(), False),
        ("offset", pa.int64(), False),
        ("kafka_ts", pa.timestamp("ms", tz="UTC"), True),
    ]


def test_events_fit_the_arrow_schema() -> None:
    import pyarrow as pa

    table = pa.Table.from_pylist([BASE_EVENT._asdict()], schema=arrow_schema())
    assert table.to_pylist() == [BASE_EVENT._asdict()]


def test_import_is_light() -> None:
    import subprocess
    import sys

    code = "import sys, lae.schema; print('pyspark' in sys.modules, 'pyarrow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
