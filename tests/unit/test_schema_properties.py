"""Property tests: validate/parse_combined never raise; valid events round-trip; IP rule."""

from __future__ import annotations

import ipaddress
import json
import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lae.schema import Event, Rejection, parse_combined, to_json_bytes, validate
from lae.schema.fields import IP_PATTERN
from lae.schema.strategies import valid_events

_FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FAST
@given(st.binary(max_size=2048))
@example(b"\xef\xbb\xbf{}")
@example(b'{"ts":"\\ud800"}')
@example(b"[" * 100_000)
def test_validate_never_raises_on_bytes(raw: bytes) -> None:
    result = validate(raw)
    assert isinstance(result, Event | Rejection)
    if isinstance(result, Rejection):
        assert result.reason != "internal_error", result


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@_FAST
@given(valid_events(), st.dictionaries(st.sampled_from(Event._fields + ("x",)), _json_values))
def test_validate_never_raises_on_mutated_events(event: Event, changes: dict) -> None:
    obj = {**json.loads(to_json_bytes(event)), **changes}
    result = validate(json.dumps(obj).encode())
    assert isinstance(result, Event | Rejection)
    assert getattr(result, "reason", None) != "internal_error", result


@_FAST
@given(valid_events())
def test_valid_events_round_trip(event: Event) -> None:
    assert validate(to_json_bytes(event)) == event


@_FAST
@given(st.text(max_size=300) | st.binary(max_size=300))
def test_parse_combined_never_raises(line: str | bytes) -> None:
    result = parse_combined(line, "svc", "host")
    assert isinstance(result, Event | Rejection)
    assert getattr(result, "reason", None) != "internal_error", result


_token = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@_FAST
@given(
    st.lists(
        st.sampled_from(
            [
                '"',
                "\\",
                " ",
                "[",
                "]",
                "-",
                "200",
                "0.1",
                "GET /x HTTP/1.1",
                "10/Oct/2000:13:55:36 -0700",
            ]
        )
        | _token,
        max_size=16,
    )
)
def test_parse_combined_never_raises_on_near_miss_lines(parts: list[str]) -> None:
    result = parse_combined(" ".join(parts), "svc", "host")
    assert getattr(result, "reason", None) != "internal_error", result


def _is_ip(text: str) -> bool:
    if "%" in text:  # zone ids are outside the schema's IP rule
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_IP_RE = re.compile(IP_PATTERN)


@settings(max_examples=2000, deadline=None)
@given(
    st.ip_addresses().map(str)
    | st.ip_addresses(v=6).map(lambda a: a.exploded)
    | st.text(alphabet="0123456789abcdefABCDEF:.", max_size=45)
    | st.lists(
        st.sampled_from(
            ["1", "ff", "0", "::", ":", ".", "255", "256", "01", "1.2.3.4", "ffff", "fffff"]
        ),
        max_size=12,
    ).map("".join)
)
@example("1:2:3:4:5:6:7::")
@example("::1:2:3:4:5:6:7")
@example("1:2:3:4:5:6::1.2.3.4")
@example("::ffff:1.2.3.4")
def test_ip_pattern_agrees_with_ipaddress(text: str) -> None:
    assert (_IP_RE.fullmatch(text) is not None) == _is_ip(text)
