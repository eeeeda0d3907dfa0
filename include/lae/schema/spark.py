"""Spark side of schema v1: the StructType and the validation expressions, both from ``FIELDS``.

pyspark is imported inside the functions so that ``import lae.schema`` stays light (API server,
DAG parsing). The validation is built from Spark built-ins (no Python UDF), reading the message
as a VARIANT so that JSON types survive (``"200"`` vs ``200`` vs ``200.0``), and applies the
checks in the order of ``lae.schema.event`` so both sides name the same first reason.

Known differences, all on messages both sides reject (only the reason may differ): nesting
deeper than ~1000 levels inside a field (Jackson's limit vs Python's recursion limit, which
depends on the caller's stack; Python may say ``bad_type:x`` where Spark says ``invalid_json``),
number literals of about 1000 characters (Jackson counts digits slightly differently), and a
non-BIGINT integer field whose key is spelled with ``\\u`` escapes (``get_json_object`` may not
find it). tests/unit/test_schema_spark.py checks parity on a hand-written table and on random
mutations of valid events.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

from lae.schema import fields as f

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
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


_TMP = "__lae_"  # prefix of the intermediate columns, dropped at the end


def _typed(fd: f.Field, value: Column) -> Column:
    """The field's value as its Spark type, meaningful once its checks passed."""
    import pyspark.sql.functions as F

    if fd.kind is f.Kind.INT:
        return F.try_variant_get(value, "$", "bigint")
    if fd.kind is f.Kind.NUMBER:
        return F.try_variant_get(value, "$", "double")
    string = F.try_variant_get(value, "$", "string")
    if fd.kind is f.Kind.TIMESTAMP:
        return F.upper(string).try_cast("timestamp")  # the string carries its zone
    return string


def _field_checks(fd: f.Field, text: Column) -> tuple[list[tuple[Column, str]], Column]:
    """(condition, reason) pairs in check order, and the output column, for one field.

    Refers to the intermediate columns ``{_TMP}v_<name>`` (the variant), ``{_TMP}t_<name>`` (its
    variant type) and ``{_TMP}o_<name>`` (``_typed``) that ``spark_validate`` adds first.
    """
    import pyspark.sql.functions as F

    value = F.col(f"{_TMP}v_{fd.name}")
    vtype = F.col(f"{_TMP}t_{fd.name}")
    out = F.col(f"{_TMP}o_{fd.name}")
    present = value.isNotNull() & ~F.is_variant_null(value)  # JSON null counts as absent
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
            # An integer that is no BIGINT lies beyond ±2**63, outside every INT field's range.
            add(~is_bigint | (out < fd.minimum) | (out > fd.maximum), f.out_of_range(fd.name))
            return checks, out
        add(~number, f.bad_type(fd.name))
        lo = fd.minimum if fd.minimum is not None else float("-inf")
        hi = fd.maximum if fd.maximum is not None else float("inf")
        infinite = (out == float("inf")) | (out == float("-inf")) | F.isnan(out)
        add(out.isNull() | (out < lo) | (out > hi) | infinite, f.out_of_range(fd.name))
        return checks, out + F.lit(0.0)  # -0.0 + 0.0 == 0.0, as on the Python side

    string = F.try_variant_get(value, "$", "string")
    add(vtype != "STRING", f.bad_type(fd.name))
    if fd.kind is f.Kind.ENUM:
        add(~string.isin(*fd.choices), f.bad_format(fd.name))
        return checks, out
    # \z, not $: Java's $ also matches before a final line terminator.
    matches = string.rlike(f"^(?:{fd.pattern})\\z") if fd.pattern else F.lit(True)
    if fd.kind is f.Kind.TIMESTAMP:
        add(~matches | out.isNull(), f.bad_format(fd.name))
        lo = F.timestamp_seconds(F.lit(int(f.TS_MIN.timestamp())))
        hi = F.timestamp_seconds(F.lit(int(f.TS_MAX.timestamp())))
        add((out < lo) | (out >= hi), f.out_of_range(fd.name))
        return checks, out
    if fd.min_len > 0 or fd.max_len is not None:
        length = F.char_length(string)
        too_long = length > fd.max_len if fd.max_len is not None else F.lit(False)
        add((length < fd.min_len) | too_long, f.out_of_range(fd.name))
    add(~matches, f.bad_format(fd.name))
    return checks, F.lower(out) if fd.kind is f.Kind.UUID else out


# Set to 0 to run every message through the full path (benchmarks' A/B; the result is the same).
FAST_PATH_ENV = "LAE_SPARK_FAST_VALIDATE"


def spark_validate(df: DataFrame, value: str = "value",
                   fast_path: bool | None = None) -> DataFrame:
    """``df`` plus ``reason`` (null when valid) and every FIELDS column (null when rejected).

    ``value`` names the raw message column (Kafka ``value``, binary or string). Columns of
    ``df`` with the same names as the added ones are replaced. A pure DataFrame → DataFrame
    function, usable by the batch and the streaming job alike.

    The work is split over several projections on purpose: the parsed message is referenced by
    dozens of checks, and one flat expression would copy the parse into each of them.

    ``fast_path`` (default: on unless ``$LAE_SPARK_FAST_VALIDATE`` is ``0``; off only to
    compare in tests and benchmarks): messages in the producers' canonical spelling are proven
    valid by ``lae.schema.spark_fast`` at a fraction of the cost. The full path then sees a null
    text for them, and its expensive expressions (the parse, the key list, the UTF-8 check, the
    field regexes) are null on null input, so they are skipped row by row: one frame, so a
    streaming source is read once (a filter/union split would read it twice and run the fast
    match in both branches). What remains of the full path on such rows (its projections of
    nulls) is measured by bench/bench_spark_validate.py.
    """
    import pyspark.sql.functions as F

    from lae.schema.spark_fast import with_fast_path

    if fast_path is None:
        fast_path = os.environ.get(FAST_PATH_ENV, "1").strip() != "0"
    raw = F.col(value)
    text = F.col(f"{_TMP}text")
    is_fast = F.col(f"{_TMP}fast")
    if fast_path:
        df = with_fast_path(df.withColumn(f"{_TMP}string", raw.cast("string")),
                            f"{_TMP}string", f"{_TMP}fast", f"{_TMP}f_")
        full_text = F.when(~is_fast, F.col(f"{_TMP}string"))
    else:
        df = df.withColumn(f"{_TMP}fast", F.lit(False))
        full_text = raw.cast("string")
    # try_parse_json ignores trailing text ('{} x' parses). Wrapping the message as the first
    # element of an array whose second element is a random sentinel proves the parser
    # consumed the whole message: an attacker cannot forge an unpredictable sentinel.
    sentinel = uuid.uuid4().hex
    wrapped = F.col(f"{_TMP}wrapped")
    complete = F.coalesce(
        (F.try_variant_get(wrapped, "$[1]", "string") == F.lit(sentinel))
        & F.try_variant_get(wrapped, "$[2]", "variant").isNull(),
        F.lit(False),
    )
    doc = F.col(f"{_TMP}doc")
    staged = (
        df.withColumns({f"{_TMP}text": full_text, f"{_TMP}size": F.octet_length(raw)})
        .withColumn(
            f"{_TMP}wrapped",
            F.try_parse_json(F.concat(F.lit("["), text, F.lit(f',"{sentinel}"]'))),
        )
        .withColumn(f"{_TMP}complete", complete)
        .withColumn(
            f"{_TMP}doc",
            F.when(F.col(f"{_TMP}complete"), F.try_variant_get(wrapped, "$[0]", "variant")),
        )
        .withColumns(
            {
                f"{_TMP}v_{fd.name}": F.try_variant_get(doc, f"$.{fd.name}", "variant")
                for fd in f.FIELDS
            }
        )
    )
    staged = staged.withColumns(
        {f"{_TMP}t_{fd.name}": F.schema_of_variant(F.col(f"{_TMP}v_{fd.name}")) for fd in f.FIELDS}
        | {
            f"{_TMP}o_{fd.name}": _typed(fd, F.col(f"{_TMP}v_{fd.name}"))
            for fd in f.FIELDS
            if fd.kind is not f.Kind.VERSION
        }
    )

    version = F.col(f"{_TMP}v_schema")
    version_ok = (
        version.isNull()
        | F.is_variant_null(version)
        | (
            (F.col(f"{_TMP}t_schema") == "BIGINT")
            & F.try_variant_get(version, "$", "bigint").isin(*sorted(f.SUPPORTED_SCHEMA_VERSIONS))
        )
    )
    known = F.array(*[F.lit(name) for name in f.FIELD_NAMES])
    has_unknown = F.size(F.array_except(F.json_object_keys(text), known)) > 0
    is_object = F.coalesce(F.schema_of_variant(doc).startswith("OBJECT<"), F.lit(False))

    checks: list[tuple[Column, str]] = [
        (F.col(f"{_TMP}size") > f.MAX_EVENT_BYTES, f.TOO_LARGE),
        (~F.is_valid_utf8(text), f.INVALID_UTF8),
        (~F.col(f"{_TMP}complete"), f.INVALID_JSON),
        (~is_object, f.NOT_AN_OBJECT),
        (~version_ok, f.UNKNOWN_SCHEMA_VERSION),
        (has_unknown, f.UNKNOWN_FIELD),
    ]
    outputs: dict[str, Column] = {}
    for fd in f.FIELDS:
        if fd.kind is f.Kind.VERSION:
            outputs[fd.name] = F.lit(f.SCHEMA_VERSION)
            continue
        field_checks, out = _field_checks(fd, text)
        checks.extend(field_checks)
        outputs[fd.name] = out

    reason = F.when(checks[0][0], F.lit(checks[0][1]))
    for cond, name in checks[1:]:
        reason = reason.when(cond, F.lit(name))
    staged = staged.withColumn("reason", F.when(~is_fast, reason))
    # Values of rejected rows are nulled: half-parsed values (year 0, …) must not leak downstream.
    valid = F.col("reason").isNull()

    def output(fd: f.Field) -> Column:
        full = F.when(valid, outputs[fd.name])
        return F.when(is_fast, F.col(f"{_TMP}f_{fd.name}")).otherwise(full) if fast_path else full

    result = staged.withColumns({fd.name: output(fd).cast(_spark_type(fd)) for fd in f.FIELDS})
    return result.drop(*[c for c in result.columns if c.startswith(_TMP)])
