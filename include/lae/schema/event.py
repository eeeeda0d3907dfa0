"""Validation of raw messages into ``Event`` values, and their canonical JSON form.

``validate`` sits on the archiver's hot path, so the per-field checks are closures built once
from ``FIELDS`` at import time, and the decoder does extra work only for the rare messages
that need it (long ones, ones with ``\\u`` escapes).

Order of checks (the Spark side follows the same order, so both report the same first reason):
too_large → invalid_utf8 → invalid_json → not_an_object → unknown_schema_version →
unknown_field → per field in ``FIELDS`` order: missing_field → bad_type → out_of_range/bad_format.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from lae.schema import fields as f


class Event(NamedTuple):
    """One validated access-log event (schema v1); made by ``validate`` or ``event_from_dict``."""

    event_id: str
    ts: datetime  # aware, UTC
    service: str
    host: str
    method: str
    path: str
    status: int
    latency_ms: float
    bytes: int
    user_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    schema: int = f.SCHEMA_VERSION


class Rejection(NamedTuple):
    """Why a message is not an event: ``reason`` is machine-readable, ``detail`` is for humans."""

    reason: str
    detail: str = ""


assert Event._fields == f.FIELD_NAMES, "Event must list FIELDS in order"  # noqa: S101


class _Invalid(Exception):  # noqa: N818 - control flow inside this module only
    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


# ---- JSON decoding -------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Duplicate keys are refused: parsers disagree on which value wins (Spark refuses them too).
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {_short(key)}")
            seen.add(key)
    return obj


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _bounded(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if len(text) > f.MAX_NUMBER_CHARS:
            raise ValueError(f"number longer than {f.MAX_NUMBER_CHARS} characters")
        return convert(text)

    return parse


_decode = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constants).decode
# Only messages longer than MAX_NUMBER_CHARS can hold an over-long number; they pay for the hooks.
_decode_long = json.JSONDecoder(
    object_pairs_hook=_no_duplicates,
    parse_constant=_no_constants,
    parse_int=_bounded(int),
    parse_float=_bounded(float),
).decode


def _has_lone_surrogate(obj: Any) -> bool:
    # A "\ud800" escape decodes to a str that cannot be encoded as UTF-8 (it would break every
    # writer downstream); dumping the whole document is one C call instead of a Python walk.
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# ---- per-field checks, built from FIELDS ---------------------------------------------------


def _string_check(fd: f.Field) -> Callable[[Any], Any]:
    bad_type, too_long = f.bad_type(fd.name), f.out_of_range(fd.name)
    bad_format = f.bad_format(fd.name)
    lo, hi = fd.min_len, fd.max_len if fd.max_len is not None else math.inf
    match = re.compile(fd.pattern).fullmatch if fd.pattern else None
    lower = fd.kind is f.Kind.UUID

    def check(v: Any) -> Any:
        if type(v) is not str:
            raise _Invalid(bad_type, type(v).__name__)
        if not lo <= len(v) <= hi:
            raise _Invalid(too_long, f"length {len(v)} not in [{lo}, {hi}]")
        if match is not None and match(v) is None:
            raise _Invalid(bad_format, _short(v))
        return v.lower() if lower else v

    return check


def _enum_check(fd: f.Field) -> Callable[[Any], Any]:
    bad_type, bad_format = f.bad_type(fd.name), f.bad_format(fd.name)
    choices = frozenset(fd.choices)

    def check(v: Any) -> Any:
        if type(v) is not str:
            raise _Invalid(bad_type, type(v).__name__)
        if v not in choices:
            raise _Invalid(bad_format, _short(v))
        return v

    return check


def _timestamp_check(fd: f.Field) -> Callable[[Any], Any]:
    bad_type, bad_format = f.bad_type(fd.name), f.bad_format(fd.name)
    out_of_range = f.out_of_range(fd.name)
    match = re.compile(fd.pattern or "").fullmatch
    lo, hi = f.TS_MIN, f.TS_MAX

    def check(v: Any) -> Any:
        if type(v) is not str:
            raise _Invalid(bad_type, type(v).__name__)
        if match(v) is None:
            raise _Invalid(bad_format, _short(v))
        try:
            ts = datetime.fromisoformat(v.upper())  # the pattern already pinned RFC 3339 syntax
        except ValueError as exc:  # e.g. February 30th
            raise _Invalid(bad_format, str(exc)) from None
        # Year check before converting: converting year 1 or 9999 across an offset overflows.
        if not lo.year - 1 <= ts.year <= hi.year:
            raise _Invalid(out_of_range, v)
        if ts.tzinfo is not UTC:  # 'Z' already parses to the UTC singleton
            ts = ts.astimezone(UTC)
        if not lo <= ts < hi:
            raise _Invalid(out_of_range, v)
        return ts

    return check


def _int_check(fd: f.Field) -> Callable[[Any], Any]:
    bad_type, out_of_range = f.bad_type(fd.name), f.out_of_range(fd.name)
    lo = fd.minimum if fd.minimum is not None else -math.inf
    hi = fd.maximum if fd.maximum is not None else math.inf

    def check(v: Any) -> Any:
        if type(v) is not int:  # excludes bool (a subclass of int) and 200.0
            raise _Invalid(bad_type, type(v).__name__)
        if not lo <= v <= hi:
            raise _Invalid(out_of_range, _short(v))
        return v

    return check


def _number_check(fd: f.Field) -> Callable[[Any], Any]:
    bad_type, out_of_range = f.bad_type(fd.name), f.out_of_range(fd.name)
    lo = fd.minimum if fd.minimum is not None else -math.inf
    hi = fd.maximum if fd.maximum is not None else math.inf

    def check(v: Any) -> Any:
        t = type(v)
        if t is float:
            x = v
        elif t is int:
            try:
                x = float(v)
            except OverflowError:
                raise _Invalid(out_of_range, "beyond float range") from None
        else:
            raise _Invalid(bad_type, t.__name__)
        if not (lo <= x <= hi and -math.inf < x < math.inf):  # also false for NaN
            raise _Invalid(out_of_range, _short(v))
        return x + 0.0  # turns -0.0 into 0.0

    return check


_CHECK_BUILDERS = {
    f.Kind.UUID: _string_check,
    f.Kind.STRING: _string_check,
    f.Kind.IP: _string_check,
    f.Kind.ENUM: _enum_check,
    f.Kind.TIMESTAMP: _timestamp_check,
    f.Kind.INT: _int_check,
    f.Kind.NUMBER: _number_check,
}

_CHECKS = tuple(
    (fd.name, f.missing(fd.name) if fd.required else None, _CHECK_BUILDERS[fd.kind](fd))
    for fd in f.FIELDS
    if fd.kind is not f.Kind.VERSION
)
_KNOWN = frozenset(f.FIELD_NAMES)
_new_tuple = tuple.__new__


def event_from_dict(obj: dict[str, Any]) -> Event | Rejection:
    """Validate an already-decoded JSON object (also used by the combined-log parser)."""
    version = obj.get("schema")
    supported = f.SUPPORTED_SCHEMA_VERSIONS
    if version is not None and (type(version) is not int or version not in supported):
        return Rejection(f.UNKNOWN_SCHEMA_VERSION, _short(version))
    if not _KNOWN.issuperset(obj):
        # Unknown fields are refused, not dropped: the archive keeps only contract columns, so
        # dropping would lose data silently; new fields come with a new schema version.
        unknown = [k for k in obj if k not in _KNOWN]
        return Rejection(f.UNKNOWN_FIELD, ", ".join(_short(k, 40) for k in unknown[:5]))
    values = []
    append = values.append
    try:
        for name, missing_reason, check in _CHECKS:
            v = obj.get(name)
            if v is None:  # JSON null counts as absent
                if missing_reason is not None:
                    return Rejection(missing_reason)
                append(None)
            else:
                append(check(v))
    except _Invalid as exc:
        return Rejection(exc.reason, exc.detail)
    append(f.SCHEMA_VERSION)
    return _new_tuple(Event, values)  # Event(*values) without the generated __new__'s overhead


def _validate(raw: bytes) -> Event | Rejection:
    if len(raw) > f.MAX_EVENT_BYTES:
        return Rejection(f.TOO_LARGE, f"{len(raw)} bytes > {f.MAX_EVENT_BYTES}")
    try:
        # Strict UTF-8 ourselves: json.loads(bytes) would also accept UTF-16/32 and a BOM.
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection(f.INVALID_UTF8, str(exc))
    try:
        obj = (_decode_long if len(raw) > f.MAX_NUMBER_CHARS else _decode)(text)
    except (ValueError, RecursionError) as exc:
        return Rejection(f.INVALID_JSON, str(exc)[:200])
    # memchr for a backslash first: most messages have none, and the 2-byte search costs more.
    if b"\\" in raw and b"\\u" in raw and _has_lone_surrogate(obj):
        return Rejection(f.INVALID_JSON, "lone surrogate escape")
    if type(obj) is not dict:
        return Rejection(f.NOT_AN_OBJECT, type(obj).__name__)
    return event_from_dict(obj)


def validate(raw: bytes | bytearray | memoryview | str) -> Event | Rejection:
    """Check one raw message against schema v1. Never raises."""
    try:
        if isinstance(raw, str):  # lone surrogates survive as bytes that fail the UTF-8 check
            raw = raw.encode("utf-8", "surrogatepass")
        return _validate(raw if type(raw) is bytes else bytes(raw))
    except Exception as exc:  # a bug here must quarantine the message, not stop the archiver
        return Rejection(f.INTERNAL_ERROR, _short(exc, 200))


# ---- canonical serialization ---------------------------------------------------------------


def format_ts(ts: datetime) -> str:
    """RFC 3339 in UTC with microseconds and 'Z': one spelling per instant."""
    if ts.tzinfo is None:
        raise ValueError("naive datetime: event times must carry a zone")
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def to_dict(event: Event) -> dict[str, Any]:
    """The JSON object of ``event``: FIELDS order, absent optionals left out, schema written."""
    out: dict[str, Any] = {}
    for name, value in zip(f.FIELD_NAMES, event, strict=True):
        if value is None:
            continue
        out[name] = format_ts(value) if name == "ts" else value
    return out


def to_json_bytes(event: Event) -> bytes:
    """Canonical UTF-8 JSON for producers; ``validate(to_json_bytes(e)) == e`` for valid events."""
    return json.dumps(
        to_dict(event), ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")
