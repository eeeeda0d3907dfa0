"""Validating a whole batch of raw messages at once (the archiver's fast path).

``validate`` costs ~36 µs per message in Python. Almost every message on ``logs.raw`` is
written by a producer in one spelling: the canonical field order, no whitespace, plain ASCII
strings without escapes, ``Z`` times. For those, one RE2 match per message (``pyarrow.compute
.match_substring_regex``, in C++) proves everything ``validate`` checks, and the values cut out
of the matched text become the columns. The pattern only accepts a *subset* of valid messages:

- the JSON shape is fixed (keys in ``FIELDS`` order, all present, ``schema`` optional), so there
  are no duplicate, unknown or missing keys, no BOM, no NaN, no escapes (hence no lone
  surrogates) and no over-long numbers; everything is ASCII, so UTF-8 is valid and lengths in
  bytes equal lengths in code points;
- every field's sub-pattern lies inside that field's rule (same regexes from ``fields``,
  intersected with "printable ASCII without quote and backslash"), ranges are built into the
  number patterns (status 100–599; bytes ≤ 18 digits; latency non-negative and finite);
- the one thing a regex cannot check, the calendar (February 30th), is checked on the captured
  year/month/day columns; the time range [1970, 2100) follows from the year.

Whatever does not match goes through ``validate`` unchanged, so rejections and their reasons
are exactly the slow path's, and accepted rows hold exactly the values ``validate`` returns
(the property tests in tests/unit/test_schema_fast.py compare both on random mixes).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, NamedTuple

from lae.schema import fields as f

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

# Printable ASCII minus '"' and '\\': a JSON string body that needs no unescaping.
_PLAIN = "[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]*"
_FB = f.FIELDS_BY_NAME
_OPTIONAL = ("user_id", "ip", "user_agent")


def _named(name: str, body: str) -> str:
    return f"(?P<{name}>{body})"


def _shape(capture: Callable[[str, str], str] = _named, end: str = "$") -> str:
    """The message shape, capturing each value. Simple character classes only, so that RE2 can
    use its fast one-pass matcher; each value's own rule is checked on its column after.

    ``capture(name, body)`` spells each value (here a named group) and ``end`` the end of text,
    so that ``lae.schema.spark_fast`` builds the same shape in Java syntax with each field's
    whole rule in place of its value (and ``\\z``: Java's ``$`` also matches before a final
    line break)."""
    def s(name: str) -> str:
        return f'"{name}":"{capture(name, _PLAIN)}"'

    def optional(name: str) -> str:
        # Absent, null, or a string; the one-character `<name>_set` group marks a string,
        # because the captured text alone cannot tell "" (a valid user_agent) from null.
        return (f'(?:,"{name}":(?:null|{capture(f"{name}_set", chr(34))}'
                f'{capture(name, _PLAIN)}"))?')

    return ("^\\{" + ",".join([
        s("event_id"), s("ts"), s("service"), s("host"), s("method"), s("path"),
        f'"status":{capture("status", "[0-9]+")}',
        f'"latency_ms":{capture("latency_ms", "[0-9.eE+-]+")}',
        f'"bytes":{capture("bytes", "[0-9]+")}'])
        + "".join(optional(n) for n in _OPTIONAL) + '(?:,"schema":(?:1|null))?\\}' + end)


def _full(pattern: str) -> str:
    return f"^(?:{pattern})$"


# Per column: a pattern the whole value must match. Each accepts a subset of the field's rule
# in ``fields`` (the captured text is already printable ASCII without '"' or '\\').
_TS_TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,6})?Z"
_TS = "[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])T" + _TS_TIME
_COLUMN_PATTERNS = {
    "event_id": f.UUID_PATTERN,
    "ts": _TS,  # 'Z' only, at most microseconds; the year and calendar are checked apart
    "service": _FB["service"].pattern,
    "host": _FB["host"].pattern,
    "method": "|".join(f.HTTP_METHODS),
    "path": _FB["path"].pattern,
    "status": "[1-5][0-9]{2}",  # a JSON integer in [100, 599]
    # Non-negative; at most 15 integer digits and a 2-digit exponent: always finite.
    "latency_ms": "(?:0|[1-9][0-9]{0,14})(?:\\.[0-9]{1,17})?(?:[eE][+-]?[0-9]{1,2})?",
    "bytes": "0|[1-9][0-9]{0,17}",  # < 10**18 <= the field's maximum
    "ip": f.IP_PATTERN,
    # user_id / user_agent: their rule is "no control characters", already true of the capture.
}
_LENGTHS = {name: (_FB[name].min_len, _FB[name].max_len)
            for name in ("service", "host", "path", "user_id", "user_agent")}
_INT_FIELDS = {"status": "int32", "bytes": "int64"}
assert _FB["status"].minimum == 100 and _FB["status"].maximum == 599  # noqa: S101
assert _FB["bytes"].minimum == 0 and _FB["bytes"].maximum >= 10**18  # noqa: S101
assert _FB["latency_ms"].minimum == 0.0 and _FB["latency_ms"].maximum is None  # noqa: S101
assert (f.TS_MIN.year, f.TS_MAX.year) == (1970, 2100)  # noqa: S101
# user_id / user_agent need no column pattern only while their rule is "no controls".
assert _FB["user_id"].pattern == "[^\\x00-\\x1f\\x7f]+"  # noqa: S101
assert _FB["user_agent"].pattern == "[^\\x00-\\x1f\\x7f]*"  # noqa: S101

# The same rules under public names, for the Spark fast path (lae.schema.spark_fast).
shape = _shape
PLAIN = _PLAIN
TS_TIME = _TS_TIME
OPTIONAL = _OPTIONAL
COLUMN_PATTERNS = _COLUMN_PATTERNS
LENGTHS = _LENGTHS


@cache
def pattern() -> str:
    """The shape with a capture group per value: the reference the fast path's cutting of
    the text is tested against (tests/unit/test_schema_fast.py, bench/bench_schema.py)."""
    return _shape()


@cache
def _shape_test() -> str:
    """``pattern()`` without its capture groups: the same language, but RE2 can answer "does
    it match" with its DFA, ~4x faster (measured) than a match that fills 20 groups."""
    return _shape(lambda name, body: f"(?:{body})")


# The fixed part of the shape, one field per token once a message is split at ',"' (no value
# of a matching message holds a '"'): (name, length of what precedes the value, of what
# follows it). Token 0 also holds the '{'; quoted values end with '"', numbers with nothing.
_FIXED_TOKENS = (
    ("event_id", len('{"event_id":"'), 1), *((n, len(n) + 3, 1) for n in (
        "ts", "service", "host", "method", "path")),
    *((n, len(n) + 2, 0) for n in ("status", "latency_ms", "bytes")),
)
_FIELD_SEPARATOR = b',"'
_LONGEST = 1 << 30  # a slice stop past the end of any value

# pyarrow releases the GIL inside compute kernels, so slices of a big batch are validated on
# all cores.
_SLICE_ROWS = 4096


@cache
def _pool():
    import os
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1)), "lae-fast-validate")


class _Fields(NamedTuple):
    ok: np.ndarray  # per input message: it has the shape
    cols: dict[str, pa.Array]  # per shaped message: each field's text ("" for an unset one)
    is_set: dict[str, pa.Array]  # per shaped message and optional field: a string was given


def _fields(values: pa.Array) -> _Fields:
    """Which messages have the shape, and their fields' text.

    The same answer as ``extract_regex(values, pattern())`` (the tests compare both) at ~60% of
    its CPU (bench/bench_schema.py): the DFA decides the shape, then the text is cut at the ',"'
    separators (split + fixed-width slices: no regex) instead of by capture groups.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    matches = pc.fill_null(pc.match_substring_regex(values, _shape_test()), False)
    ok = matches.to_numpy(zero_copy_only=False)
    tokens = pc.split_pattern(values.filter(matches), _FIELD_SEPARATOR)
    cols = {}
    for i, (name, before, after) in enumerate(_FIXED_TOKENS):
        text = pc.binary_slice(pc.list_element(tokens, i), before, -after or _LONGEST)
        cols[name] = text.cast(pa.string())
    # A message without optional fields ends with its bytes: "bytes":512}
    cols["bytes"] = pc.utf8_rtrim(cols["bytes"], "}")

    # The optional fields follow in a fixed order, each absent, null or a string: find each
    # by its key among the remaining tokens (the last one ends with the message's '}').
    rest = pc.list_slice(tokens, len(_FIXED_TOKENS))
    row_of = pc.list_parent_indices(rest).to_numpy()
    rest = pc.utf8_rtrim(pc.list_flatten(rest).cast(pa.string()), "}")
    n = len(tokens)
    is_set = {}
    for name in _OPTIONAL:
        given = pc.starts_with(rest, f'{name}":"')
        text = pc.utf8_slice_codeunits(rest.filter(given), len(name) + 3, -1)
        rows = row_of[given.to_numpy(zero_copy_only=False)]
        where = np.full(n, len(text), dtype=np.int64)  # unset: the "" appended below
        where[rows] = np.arange(len(rows))
        cols[name] = pa.concat_arrays([text, pa.array([""])]).take(where)
        flags = np.zeros(n, dtype=bool)
        flags[rows] = True
        is_set[name] = pa.array(flags)
    return _Fields(ok, cols, is_set)


def _days_in_month(year: np.ndarray, month: np.ndarray) -> np.ndarray:
    import numpy as np

    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[month]
    return days + (leap & (month == 2))


def validate_batch(values: pa.Array) -> tuple[np.ndarray, pa.Table]:
    """(ok, events) for a binary array of raw messages.

    ``ok[i]`` is true when message i was proven valid here; ``events`` has one row per such
    message, in order, with the ``arrow_schema()`` columns holding what ``validate`` would
    return. Every other message must go through ``validate``.
    """
    import numpy as np
    import pyarrow as pa

    n = len(values)
    if n <= _SLICE_ROWS:
        return _validate_slice(values)
    parts = list(_pool().map(lambda i: _validate_slice(values.slice(i, _SLICE_ROWS)),
                             range(0, n, _SLICE_ROWS)))
    # One chunk per column, as a single slice gives: the Parquet bytes must not depend on how
    # a batch was sliced here.
    return (np.concatenate([ok for ok, _ in parts]),
            pa.concat_tables([table for _, table in parts]).combine_chunks())


def _validate_slice(values: pa.Array) -> tuple[np.ndarray, pa.Table]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from lae.schema.arrow import arrow_schema

    schema = arrow_schema()
    ok, cols, is_set = _fields(values)
    if not ok.any():
        return ok, schema.empty_table()

    good = np.ones(int(ok.sum()), dtype=bool)
    for name, pat in _COLUMN_PATTERNS.items():
        match = pc.match_substring_regex(cols[name], _full(pat))
        if name in is_set:
            match = pc.or_(pc.invert(is_set[name]), match)
        good &= match.to_numpy(zero_copy_only=False)
    for name, (lo, hi) in _LENGTHS.items():
        n = pc.utf8_length(cols[name]).to_numpy(zero_copy_only=False)
        fits = (n >= lo) & (n <= (hi if hi is not None else n))
        if name in is_set:
            fits |= ~is_set[name].to_numpy(zero_copy_only=False)
        good &= fits
    # The calendar (no February 30th) and the [1970, 2100) range, on the ts text (rows whose
    # text failed its pattern get a harmless stand-in, so the casts cannot fail).
    ts = pc.if_else(pa.array(good), cols["ts"], "1970-01-01T00:00:00Z")
    y, mo, d = (pc.utf8_slice_codeunits(ts, a, b).cast(pa.int32()).to_numpy()
                for a, b in ((0, 4), (5, 7), (8, 10)))
    good &= (y >= 1970) & (y < 2100) & (d <= _days_in_month(y, mo))

    ok[np.flatnonzero(ok)[~good]] = False
    if not good.all():
        keep = pa.array(good)
        cols = {k: v.filter(keep) for k, v in cols.items()}
        is_set = {k: v.filter(keep) for k, v in is_set.items()}
    n = int(good.sum())
    none = pa.scalar(None, pa.string())
    columns = {
        "event_id": pc.utf8_lower(cols["event_id"]),
        "ts": cols["ts"].cast(pa.timestamp("us", tz="UTC")),
        "latency_ms": cols["latency_ms"].cast(pa.float64()),
        "schema": pa.array(np.full(n, f.SCHEMA_VERSION, dtype=np.int32)),
        **{name: cols[name].cast(t) for name, t in _INT_FIELDS.items()},
        **{name: pc.if_else(is_set[name], cols[name], none) for name in _OPTIONAL},
        **{name: cols[name] for name in ("service", "host", "method", "path")},
    }
    table = pa.Table.from_arrays([columns[fd.name].cast(schema.field(fd.name).type)
                                  for fd in f.FIELDS], schema=schema)
    return ok, table
