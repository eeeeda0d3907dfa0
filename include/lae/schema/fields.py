"""The event schema v1 as data: every layer derives its checks and column types from ``FIELDS``.

Patterns are written in the subset of regex syntax that Python ``re`` and Java
``java.util.regex`` read the same way (ASCII classes, ``\\xHH`` escapes, no ``\\s``/``\\d``/``\\w``,
whose meaning differs between the two), because the Spark side runs the very same strings.
Lengths are checked separately from patterns (``len`` and Spark ``char_length`` both count
code points; regex repetition counts would not agree on astral characters).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = frozenset({SCHEMA_VERSION})

# Checked on the raw bytes before decoding, so a hostile message costs O(1) to reject.
MAX_EVENT_BYTES = 16 * 1024

# Jackson (Spark's JSON parser) refuses number literals longer than this; Python must agree.
MAX_NUMBER_CHARS = 1000

# RFC 9110 methods plus PATCH (RFC 5789). Extension methods (WebDAV PROPFIND, …) are rejected:
# method is a closed set so that views and dashboards can rely on it.
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")

# Event time must fall in [TS_MIN, TS_MAX): keeps S3 date partitions sane and makes every
# accepted time representable in Python, Spark and Parquet after UTC conversion.
TS_MIN = datetime(1970, 1, 1, tzinfo=UTC)
TS_MAX = datetime(2100, 1, 1, tzinfo=UTC)

_HEX = "[0-9a-fA-F]"
UUID_PATTERN = f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"

# RFC 3339 date-time: 'T'/'Z' may be lower case (RFC 3339 §5.6 note); 1-9 fraction digits
# (Spark's parser stops at nanoseconds; both sides truncate to microseconds); offsets limited to
# ±18:00, the range Java's ZoneOffset accepts (real offsets stop at +14:00). Leap second 60 is
# refused: neither Python nor Spark can represent it. Year 0000 does not exist in Python.
TS_PATTERN = (
    "(?:[0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    "[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?"
    "(?:[Zz]|[+-](?:(?:0[0-9]|1[0-7]):[0-5][0-9]|18:00))"
)

# IP addresses as RFC 3986 §3.2.2 spells them (no zone ids), IPv4 octets without leading zeros:
# exactly the set Python's ipaddress accepts (a property test checks that), and portable to Spark.
_DEC_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
IPV4_PATTERN = f"{_DEC_OCTET}(?:\\.{_DEC_OCTET}){{3}}"
_H16 = f"{_HEX}{{1,4}}"
_LS32 = f"(?:{_H16}:{_H16}|{IPV4_PATTERN})"
IPV6_PATTERN = (
    "(?:"
    + "|".join(
        [
            f"(?:{_H16}:){{6}}{_LS32}",
            f"::(?:{_H16}:){{5}}{_LS32}",
            f"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
            f"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
            f"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
            f"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
            f"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
            f"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
            f"(?:(?:{_H16}:){{0,6}}{_H16})?::",
        ]
    )
    + ")"
)
IP_PATTERN = f"{IPV4_PATTERN}|{IPV6_PATTERN}"

# No C0 control characters or DEL in free text: they break log viewers and CSV exports.
_NO_CONTROL = "[^\\x00-\\x1f\\x7f]"


class Kind(StrEnum):
    UUID = "uuid"  # string, normalized to lower case
    TIMESTAMP = "timestamp"  # RFC 3339 string, normalized to an aware UTC datetime
    STRING = "string"
    ENUM = "enum"  # string from a closed set, case-sensitive
    INT = "int"  # JSON integer literal (no fraction, no exponent; true/false are not ints)
    NUMBER = "number"  # any JSON number, finite, held as float
    IP = "ip"
    VERSION = "version"  # the schema version: absent/null means SCHEMA_VERSION


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    required: bool = True
    min_len: int = 0
    max_len: int | None = None
    pattern: str | None = None  # must match the whole value
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    bits: int = 64  # storage width of INT columns
    doc: str = ""

    @property
    def nullable(self) -> bool:
        # VERSION is optional on the wire but always present once validated (default applied).
        return not self.required and self.kind is not Kind.VERSION


FIELDS: tuple[Field, ...] = (
    Field("event_id", Kind.UUID, pattern=UUID_PATTERN, doc="unique per event; de-duplication key"),
    Field("ts", Kind.TIMESTAMP, pattern=TS_PATTERN, doc="event time, RFC 3339 with zone"),
    Field("service", Kind.STRING, min_len=1, max_len=64, pattern="[a-z0-9_.-]+"),
    Field(
        "host",
        Kind.STRING,
        min_len=1,
        max_len=255,
        pattern="[\\x21-\\x7e]+",
        doc="printable ASCII without spaces: hostnames, pod names, addresses",
    ),
    Field("method", Kind.ENUM, choices=HTTP_METHODS, doc="upper case, see HTTP_METHODS"),
    Field(
        "path",
        Kind.STRING,
        min_len=1,
        max_len=512,
        pattern="/[^?#\\x00-\\x20\\x7f]*",
        doc="route template: starts with '/', no query, fragment, spaces or controls",
    ),
    Field("status", Kind.INT, minimum=100, maximum=599, bits=32),
    Field("latency_ms", Kind.NUMBER, minimum=0.0),
    Field("bytes", Kind.INT, minimum=0, maximum=2**63 - 1, bits=64),
    Field(
        "user_id", Kind.STRING, required=False, min_len=1, max_len=256, pattern=f"{_NO_CONTROL}+"
    ),
    Field("ip", Kind.IP, required=False, pattern=IP_PATTERN, doc="client address, no zone id"),
    Field("user_agent", Kind.STRING, required=False, max_len=512, pattern=f"{_NO_CONTROL}*"),
    Field("schema", Kind.VERSION, required=False, bits=32, doc="absent or null means 1"),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
FIELDS_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}

# Reasons are a closed vocabulary (a few per field) so they can be counted and alerted on.
TOO_LARGE = "too_large"
INVALID_UTF8 = "invalid_utf8"
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
UNKNOWN_FIELD = "unknown_field"
INTERNAL_ERROR = "internal_error"


def missing(name: str) -> str:
    return f"missing_field:{name}"


def bad_type(name: str) -> str:
    return f"bad_type:{name}"


def out_of_range(name: str) -> str:
    return f"out_of_range:{name}"


def bad_format(name: str) -> str:
    return f"bad_format:{name}"
