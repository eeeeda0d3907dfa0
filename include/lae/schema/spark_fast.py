"""The Spark side of the fast path of ``lae.schema.fast``: canonical messages without the parse.

``spark_validate``'s full path parses every message as a VARIANT and runs some fifty checks on
it (about 74 µs of JVM CPU per row, bench/bench_spark_validate.py; about 30 with this path).
Almost every message is written by a producer in one spelling (canonical field order, no
whitespace, plain ASCII without escapes, ``Z`` times). For those, one Java regex match
(``lae.schema.fast``'s shape, in Java syntax) proves the JSON shape and captures the values,
and the per-column rules of ``lae.schema.fast`` (the same patterns, lengths, the calendar by the
same cast as the full path) prove the rest. The pattern accepts only a *subset* of valid
messages: whatever it does not accept goes through ``spark_validate``'s full path unchanged,
so reasons can never differ; accepted rows get the values the full path would give (the
property tests in tests/unit/test_schema_spark_fast.py compare both row for row).

Why one ``regexp_replace`` + ``split`` rather than one ``regexp_extract`` per value: each
``regexp_extract`` runs the whole match again. The replacement packs the captured groups,
separated by NUL (no value holds a control character), behind a random sentinel that proves the
pattern matched: a message the pattern does not match comes back unchanged, and cannot start
with a sentinel it cannot predict.
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import TYPE_CHECKING

from lae.schema import fast
from lae.schema import fields as f

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_SEP = "\x00"  # between packed values: no captured value holds a control character


@cache
def java_shape() -> str:
    """``lae.schema.fast``'s shape in Java regex syntax: unnamed groups, ``\\z`` at the end."""
    return fast.shape(lambda _name, body: f"({body})", end="\\z")


def _java_full(pattern: str) -> str:
    return f"^(?:{pattern})\\z"  # \z, not $: Java's $ also matches before a final line break


def with_fast_path(df: DataFrame, text: str, ok: str, prefix: str) -> DataFrame:
    """``df`` plus the boolean column ``ok`` (never null: true when the message in the string
    column ``text`` is proven valid here) and ``<prefix><name>`` for every FIELDS name, the
    value ``spark_validate`` gives that message (meaningful where ``ok``).

    Built in stages (match, split, checks) so that no stage copies the one before into each
    of its uses.
    """
    import pyspark.sql.functions as F

    groups = fast.shape_groups()
    sentinel = uuid.uuid4().hex
    replacement = sentinel + _SEP.join(f"${i}" for i in range(1, len(groups) + 1))
    packed = F.regexp_replace(F.col(text), java_shape(), replacement)
    parts = F.col(f"{prefix}parts")
    df = df.withColumn(
        f"{prefix}parts",
        F.when(packed.startswith(sentinel),
               F.split(F.substring(packed, len(sentinel) + 1, 1 << 30), _SEP)))
    df = df.withColumns({f"{prefix}g_{name}": parts.getItem(i) for i, name in enumerate(groups)})
    cols = {name: F.col(f"{prefix}g_{name}") for name in groups}
    is_set = {name: cols[f"{name}_set"] == '"' for name in fast.OPTIONAL}

    checks = [parts.isNotNull()]
    for name, pattern in fast.COLUMN_PATTERNS.items():
        match = cols[name].rlike(_java_full(pattern))
        checks.append(~is_set[name] | match if name in is_set else match)
    for name, (lo, hi) in fast.LENGTHS.items():
        n = F.length(cols[name])  # ASCII: characters are code points, as in char_length
        fits = (n >= lo) & (n <= hi) if hi is not None else n >= lo
        checks.append(~is_set[name] | fits if name in is_set else fits)
    # The calendar (no February 30th) and the time range, decided the way the full path does.
    ts = F.col(f"{prefix}ts")
    checks.append(ts.isNotNull()
                  & (ts >= F.timestamp_seconds(F.lit(int(f.TS_MIN.timestamp()))))
                  & (ts < F.timestamp_seconds(F.lit(int(f.TS_MAX.timestamp())))))
    passed = checks[0]
    for check in checks[1:]:
        passed = passed & check
    # try_cast: a matched row whose checks failed may hold any digits (its values are unused).
    outputs = {
        "event_id": F.lower(cols["event_id"]),
        "status": cols["status"].try_cast("int"),
        "latency_ms": cols["latency_ms"].try_cast("double") + F.lit(0.0),
        "bytes": cols["bytes"].try_cast("bigint"),
        "schema": F.lit(f.SCHEMA_VERSION),
        **{name: F.when(is_set[name], cols[name]) for name in fast.OPTIONAL},
        **{name: cols[name] for name in ("service", "host", "method", "path")},
    }
    df = df.withColumn(f"{prefix}ts", F.upper(cols["ts"]).try_cast("timestamp"))
    df = df.withColumns({ok: F.coalesce(passed, F.lit(False))}
                        | {f"{prefix}{name}": out for name, out in outputs.items()})
    return df.drop(f"{prefix}parts", *[f"{prefix}g_{name}" for name in groups])
