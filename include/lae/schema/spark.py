"""Spark side of schema v1: the StructType and the validation expressions, both from ``FIELDS``.

pyspark is imported inside the functions so that ``import lae.schema`` stays light (API server,
DAG parsing). The validation is built from Spark built-ins (no Python UDF), reading the message
as a VARIANT so that JSON types survive (``"200"`` vs ``200`` vs ``200.0``), and applies the
checks in the order of ``lae.schema.event`` so both sides name the same first reason.

Known differences, all on messages both sides reject (only the reason may differ):
nesting deeper than ~1000 levels (Jackson's limit vs Python's recursion limit; Python may say
``bad_type:x`` where Spark says ``invalid_json``) and number literals of exactly ~1000 characters
(Jackson's length rule vs ours).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from lae.schema import fields as f

if TYPE_CHECKING:
    from pyspark.sql import Column
    from pyspark.sql.types import DataType, StructType

_INT_LITERAL = "^-?[0-9]+$"


def _spark_type(fd: f.Field) -> DataType:
    from pyspark.sql import types as T

    if fd.kind is f.Kind.TIMESTAMP:
        return T.TimestampType()
    if fd.kind in (f.Kind.INT, f.Kind.VERSION):
        return T.IntegerType() if fd.bits == 32 else T.LongType()
    if fd.kind is f.Kind.NUMBER:
        return T.DoubleType()
    return T.StringType()


def spark_schema() -> StructType:
    """The typed event (as validated, ts in UTC), FIELDS order and nullability."""
    from pyspark.sql import types as T

    return T.StructType(
        [T.StructField(fd.name, _spark_type(fd), nullable=fd.nullable) for fd in f.FIELDS]
    )


def archive_spark_schema() -> StructType:
    """The archive's Parquet rows as Spark reads them: the event plus its Kafka coordinates."""
    from pyspark.sql import types as T

    from lae.schema.arrow import KAFKA_COLUMNS

    types = {
        "string": T.StringType(),
        "int32": T.IntegerType(),
        "int64": T.LongType(),
        "timestamp_ms": T.TimestampType(),
    }
    kafka = [T.StructField(name, types[t], nullable=n) for name, t, n in KAFKA_COLUMNS]
    return T.StructType(list(spark_schema().fields) + kafka)


def _field_checks(fd: f.Field, doc: Column, text: Column) -> tuple[list[tuple[Column, str]], Column]:
    """(condition, reason) pairs in check order, and the typed value column, for one field."""
    import pyspark.sql.functions as F

    value = F.try_variant_get(doc, f"$.{fd.name}", "variant")
    present = value.isNotNull() & ~F.is_variant_null(value)  # JSON null counts as absent
    vtype = F.schema_of_variant(value)
    checks: list[tuple[Column, str]] = []
    if fd.required:
        checks.append((~present, f.missing(fd.name)))

    def add(cond: Column, reason: str) -> None:
        checks.append((present & cond, reason))

    if fd.kind in (f.Kind.INT, f.Kind.NUMBER):
        is_bigint = vtype == "BIGINT"
        number = is_bigint | (vtype == "DOUBLE") | vtype.startswith("DECIMAL(")
        if fd.kind is f.Kind.INT:
            # 200.0 parses as DECIMAL(3,0) and 10**30 as DECIMAL(31,0): only the literal's text
            # tells an integer from a fraction, and only for the rare non-BIGINT values.
            literal = F.get_json_object(text, f"$.{fd.name}")
            add(~(is_bigint | (number & literal.rlike(_INT_LITERAL))), f.bad_type(fd.name))
            out = F.try_variant_get(value, "$", "bigint")
            # An integer that is no BIGINT lies beyond ±2**63, outside every INT field's range.
            add(~is_bigint | (out < fd.minimum) | (out > fd.maximum), f.out_of_range(fd.name))
            return checks, out.cast(_spark_type(fd))
        add(~number, f.bad_type(fd.name))
        out = F.try_variant_get(value, "$", "double")
        lo = fd.minimum if fd.minimum is not None else float("-inf")
        hi = fd.maximum if fd.maximum is not None else float("inf")
        infinite = (out == float("inf")) | (out == float("-inf")) | F.isnan(out)
        add(out.isNull() | (out < lo) | (out > hi) | infinite, f.out_of_range(fd.name))
        return checks, out + F.lit(0.0)  # -0.0 + 0.0 == 0.0, as on the Python side

    string = F.try_variant_get(value, "$", "string")
    add(vtype != "STRING", f.bad_type(fd.name))
    if fd.kind is f.Kind.ENUM:
        add(~string.isin(*fd.choices), f.bad_format(fd.name))
        return checks, string
    if fd.kind is f.Kind.TIMESTAMP:
        add(~string.rlike(f"^(?:{fd.pattern})\\z"), f.bad_format(fd.name))
        ts = F.upper(string).try_cast("timestamp")  # the string carries its zone
        add(ts.isNull(), f.bad_format(fd.name))
        lo = F.timestamp_seconds(F.lit(int(f.TS_MIN.timestamp())))
        hi = F.timestamp_seconds(F.lit(int(f.TS_MAX.timestamp())))
        add((ts < lo) | (ts >= hi), f.out_of_range(fd.name))
        return checks, ts
    length = F.char_length(string)
    if fd.min_len > 0 or fd.max_len is not None:
        too_long = length > fd.max_len if fd.max_len is not None else F.lit(False)
        add((length < fd.min_len) | too_long, f.out_of_range(fd.name))
    if fd.pattern:
        # \z, not $: Java's $ also matches before a final line terminator.
        add(~string.rlike(f"^(?:{fd.pattern})\\z"), f.bad_format(fd.name))
    return checks, F.lower(string) if fd.kind is f.Kind.UUID else string


def spark_validation_columns(value: str | Column = "value") -> list[Column]:
    """Columns ``reason`` (null when valid) and every FIELDS column (null when rejected).

    ``value`` is the raw message (Kafka ``value``, binary or string). Typical use::

        df.select(*spark_validation_columns("value"), "topic", "partition", "offset")
    """
    import pyspark.sql.functions as F

    raw = F.col(value) if isinstance(value, str) else value
    text = raw.cast("string")
    # try_parse_json ignores trailing text ('{} x' parses). Wrapping the message as the first
    # element of an array whose second element is a random sentinel proves the parser
    # consumed the whole message: an attacker cannot forge an unpredictable sentinel.
    sentinel = uuid.uuid4().hex
    wrapped = F.try_parse_json(F.concat(F.lit("["), text, F.lit(f',"{sentinel}"]')))
    complete = F.coalesce(
        (F.try_variant_get(wrapped, "$[1]", "string") == F.lit(sentinel))
        & F.try_variant_get(wrapped, "$[2]", "variant").isNull(),
        F.lit(False),
    )
    doc = F.when(complete, F.try_variant_get(wrapped, "$[0]", "variant"))
    is_object = F.coalesce(F.schema_of_variant(doc).startswith("OBJECT<"), F.lit(False))

    version = F.try_variant_get(doc, "$.schema", "variant")
    version_ok = (
        version.isNull()
        | F.is_variant_null(version)
        | (
            (F.schema_of_variant(version) == "BIGINT")
            & F.try_variant_get(version, "$", "bigint").isin(*sorted(f.SUPPORTED_SCHEMA_VERSIONS))
        )
    )
    known = F.array(*[F.lit(name) for name in f.FIELD_NAMES])
    has_unknown = F.size(F.array_except(F.json_object_keys(text), known)) > 0

    checks: list[tuple[Column, str]] = [
        (F.octet_length(raw) > f.MAX_EVENT_BYTES, f.TOO_LARGE),
        (~F.is_valid_utf8(text), f.INVALID_UTF8),
        (~complete, f.INVALID_JSON),
        (~is_object, f.NOT_AN_OBJECT),
        (~version_ok, f.UNKNOWN_SCHEMA_VERSION),
        (has_unknown, f.UNKNOWN_FIELD),
    ]
    outputs: list[tuple[Column, str]] = []
    for fd in f.FIELDS:
        if fd.kind is f.Kind.VERSION:
            outputs.append((F.lit(f.SCHEMA_VERSION).cast(_spark_type(fd)), fd.name))
            continue
        field_checks, out = _field_checks(fd, doc, text)
        checks.extend(field_checks)
        outputs.append((out.cast(_spark_type(fd)), fd.name))

    reason = F.when(checks[0][0], F.lit(checks[0][1]))
    for cond, name in checks[1:]:
        reason = reason.when(cond, F.lit(name))
    # Values of rejected rows are nulled: half-parsed values (year 0, …) must not leak downstream.
    valid = reason.isNull()
    return [reason.alias("reason"), *(F.when(valid, out).alias(name) for out, name in outputs)]
