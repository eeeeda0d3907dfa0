"""The Spark side of the fast path of ``lae.schema.fast``: canonical messages without the parse.

``spark_validate``'s full path parses every message as a VARIANT and runs some fifty checks on
it (about 74 µs of JVM CPU per row, bench/bench_spark_validate.py). Almost every message is
written by a producer in one spelling (canonical field order, no whitespace, plain ASCII without
escapes, ``Z`` times). For those, one Java regex, ``java_pattern()``, proves validity on its own:
``lae.schema.fast``'s shape with every field's own rule written into it (its pattern, its length
bounds, and for the time the calendar and the [1970, 2100) range). The pattern accepts only a
*subset* of valid messages, exactly the messages ``lae.schema.fast`` accepts: whatever it does
not accept goes through ``spark_validate``'s full path unchanged, so reasons can never differ.
Once a message is proven canonical, ``from_json`` reads its values: no escapes, no duplicate
keys and numbers in the shape's spelling leave nothing for the JSON reader to interpret
differently from the full path (the property tests in tests/unit/test_schema_spark_fast.py
compare both paths row for row, and the set of rows taken with the pyarrow fast path's).

Why a whole-message pattern and ``from_json``, not the shape's capture groups: one
``regexp_replace`` that packs the groups, a ``split`` and a ``rlike`` per column cost about twice
as much per row (62 against 32 µs, 50k generated messages, ``local[1]``, 2026-11-29).
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

from lae.schema import fast
from lae.schema import fields as f

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_YEAR = "(?:19[7-9][0-9]|20[0-9]{2})"  # [1970, 2100): fields.TS_MIN, TS_MAX
_LEAP_YEAR = "(?:19(?:7[26]|8[048]|9[26])|20(?:[02468][048]|[13579][26]))"  # 2000 included
_DATE = (f"(?:{_YEAR}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
         "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
         f"|{_LEAP_YEAR}-02-29)")
if (f.TS_MIN.year, f.TS_MAX.year) != (1970, 2100):  # _YEAR and _LEAP_YEAR spell this range
    raise ImportError("fields.TS_MIN/TS_MAX moved: rewrite _YEAR and _LEAP_YEAR to match")
_PLAIN_CHAR = fast.PLAIN.removesuffix("*")  # one character of a plain JSON string body
if fast.PLAIN != _PLAIN_CHAR + "*":  # the lookaheads below repeat one character of it
    raise ImportError("fast.PLAIN is no longer '<one character class>*'")

_CLASS = re.compile(r"\[(?:\\.|[^\]\\])*\]")
# What may stand outside a character class in a column pattern: literals that are neither '"'
# nor '\\', escaped dots, and regex syntax. An unescaped '.' or '"' would let a value cross its
# closing quote.
_OUTSIDE_CLASSES = re.compile(r"(?:[A-Za-z0-9:/|(){},?*+-]|\\\.)*")

# The value of every field, as the schema names and types it (numbers as the shape spells them).
_JSON_SCHEMA = ("event_id string, ts string, service string, host string, method string, "
                "path string, status int, latency_ms double, bytes bigint, user_id string, "
                "ip string, user_agent string")


def _quote_safe(pattern: str) -> str:
    """``pattern`` with every character class intersected with "neither '"' nor '\\\\'" (Java's
    ``&&``), so that a match cannot run past the value's closing quote."""
    outside = _CLASS.sub("", pattern)
    if not _OUTSIDE_CLASSES.fullmatch(outside):
        raise ValueError(f"column pattern {pattern!r} has {outside!r} outside its classes")
    return _CLASS.sub(lambda m: f'[{m.group(0)}&&[^"\\\\]]', pattern)


def _value(name: str, body: str) -> str:
    """The Java sub-pattern of one value of the shape: the field's whole rule."""
    if name.endswith("_set"):  # the opening quote of an optional string
        return body
    if name == "ts":
        return f"{_DATE}T{fast.TS_TIME}"
    pattern = fast.COLUMN_PATTERNS.get(name)
    if body != fast.PLAIN:  # a number: its pattern spells exactly the values the field takes
        return f"(?:{pattern})"
    lo, hi = fast.LENGTHS.get(name, (0, None))
    # The lookahead bounds the value (plain characters up to the first quote) and its length;
    # the pattern must then match exactly that text.
    bounded = f'(?={_PLAIN_CHAR}{{{lo},{"" if hi is None else hi}}}")'
    return bounded + (f"(?:{_quote_safe(pattern)})" if pattern else fast.PLAIN)


@cache
def java_pattern() -> str:
    """The canonical messages that are valid, in Java regex syntax (``\\z`` at the end)."""
    return fast.shape(_value, end="\\z")


def with_fast_path(df: DataFrame, text: str, ok: str, prefix: str) -> DataFrame:
    """``df`` plus the boolean column ``ok`` (never null: true when the message in the string
    column ``text`` is proven valid here) and ``<prefix><name>`` for every FIELDS name, the
    value ``spark_validate`` gives that message (meaningful where ``ok``)."""
    import pyspark.sql.functions as F

    parsed = F.col(f"{prefix}json")
    df = df.withColumn(ok, F.coalesce(F.col(text).rlike(java_pattern()), F.lit(False)))
    # Only proven rows are read: the others go through the full path.
    df = df.withColumn(f"{prefix}json", F.when(F.col(ok), F.from_json(F.col(text), _JSON_SCHEMA)))
    outputs = {
        "event_id": F.lower(parsed["event_id"]),
        "ts": F.upper(parsed["ts"]).try_cast("timestamp"),
        "status": parsed["status"],
        "latency_ms": parsed["latency_ms"] + F.lit(0.0),
        "bytes": parsed["bytes"],
        "schema": F.lit(f.SCHEMA_VERSION),
        **{name: parsed[name] for name in (*fast.OPTIONAL, "service", "host", "method", "path")},
    }
    df = df.withColumns({f"{prefix}{name}": out for name, out in outputs.items()})
    return df.drop(f"{prefix}json")
