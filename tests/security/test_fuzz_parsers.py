"""Hostile inputs for the event parser, the combined-log parser and the ingest body splitter.

tests/unit/test_schema_properties.py already shows ``validate``/``parse_combined`` never raise
on random bytes and mutated events; this adds the inputs an attacker would pick (deep
nesting, huge numbers, NaN, control and bidi characters, NULs, surrogates, header injection,
oversized lines) and the second half of the contract: every rejection carries a reason from
the closed vocabulary (lae.schema.fields) and a human-readable detail where one exists, never
``internal_error``.
"""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lae.api.ingest_parse import BadBody, parse_body
from lae.schema import Event, Rejection, parse_combined, validate
from lae.schema import fields as f

_BUDGET = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
# The names a reason may carry: the event's fields plus the combined-log parser's parts.
_NAMES = "|".join(map(re.escape, (*f.FIELD_NAMES, "combined_log", "request", "request_time")))
_REASON = re.compile(
    rf"^(?:{f.TOO_LARGE}|{f.INVALID_UTF8}|{f.INVALID_JSON}|{f.NOT_AN_OBJECT}"
    rf"|{f.UNKNOWN_SCHEMA_VERSION}|{f.UNKNOWN_FIELD}"
    rf"|(?:missing_field|bad_type|out_of_range|bad_format):(?:{_NAMES}))$")

_HOSTILE_TEXT = st.sampled_from([
    "\x00", "\u202e", "\ufeff", "\r\n", "\n", "\t", "\x1b[31m", "'; DROP TABLE lae.x; --",
    "../../etc/passwd", "${jndi:ldap://x}", "{{7*7}}", "<script>", "%00", "\\", '"', "\ud800",
    "𝕏" * 3, "A" * 70_000,
]) | st.text(max_size=64)
_HOSTILE_NUMBER = st.sampled_from([
    float("nan"), float("inf"), -0.0, 10**400, -(10**30), 2**63, 1e308, 5e-324, True, "1", [],
    {}, None,
]) | st.integers() | st.floats(allow_nan=True)
_VALID = {"event_id": "3f1e9a4c-0c43-4b8e-9d2a-2f7f5c8a1b11", "ts": "2026-11-26T10:00:00Z",
          "service": "shop", "host": "web-1", "method": "GET", "path": "/v1/orders/{id}",
          "status": 200, "latency_ms": 1.5, "bytes": 10}


def assert_explained(result) -> None:
    assert isinstance(result, Event | Rejection), type(result)
    if isinstance(result, Rejection):
        assert _REASON.match(result.reason), result
        assert isinstance(result.detail, str)


def _json(obj) -> bytes:
    # allow_nan: send NaN/Infinity tokens exactly as a hostile client could.
    return json.dumps(obj, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


@_BUDGET
@given(st.dictionaries(st.sampled_from([*f.FIELD_NAMES, "__proto__", "", "ts "]),
                       _HOSTILE_TEXT | _HOSTILE_NUMBER, max_size=6))
def test_hostile_field_values_are_rejected_with_a_reason(changes):
    assert_explained(validate(_json({**_VALID, **changes})))


@_BUDGET
@given(st.integers(min_value=1, max_value=50_000), st.sampled_from(["[", "{\"a\":", "[{\"x\":"]))
@example(100_000, "[")
def test_deep_nesting_is_rejected_not_a_recursion_error(depth, opener):
    assert_explained(validate((opener * depth).encode()))


@_BUDGET
@given(st.sampled_from([b'{"status": 200, "status": 500}', b'{"a": 1e999999}',
                        b'{"bytes": NaN}', b'{"latency_ms": -Infinity}', b"\xef\xbb\xbf{}",
                        b'{"ts": "\\ud800"}', b"\x00" * 10, b"null", b"[]", b'"x"', b""])
       | st.binary(max_size=512))
def test_hostile_json_documents_are_rejected_with_a_reason(raw):
    assert_explained(validate(raw))


_CLF = ('1.2.3.4 - - [26/Nov/2026:10:00:00 +0000] "GET /v1/orders/7 HTTP/1.1" 200 10 "-" '
        '"curl/8"')


@_BUDGET
@given(st.integers(min_value=0, max_value=len(_CLF)), _HOSTILE_TEXT)
def test_combined_lines_with_injected_text_are_parsed_or_explained(at, injected):
    assert_explained(parse_combined(_CLF[:at] + injected + _CLF[at:], "shop", "web-1"))


@_BUDGET
@given(st.lists(st.binary(max_size=200) | _HOSTILE_TEXT.map(lambda s: s.encode("utf-8",
                                                                             "surrogatepass")),
                max_size=20),
       st.sampled_from(["application/json", "application/x-ndjson", "text/plain"]))
def test_ingest_bodies_split_into_explained_records(parts, media):
    body = b"\n".join(parts)
    try:
        batch = parse_body(body, media, service="shop", host="web-1")
    except BadBody as exc:  # the whole body refused (answered 400): it must say why
        assert str(exc)
        return
    for raw, reason in batch.rejected:
        assert isinstance(raw, bytes) and _REASON.match(reason), (raw[:80], reason)
    if media != "application/json":  # one record per non-blank line: nothing dropped silently
        lines = [line for line in body.split(b"\n") if line.strip()]
        assert len(batch.records) + len(batch.rejected) == len(lines)
