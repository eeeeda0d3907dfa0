"""Spark side of lae.schema: StructType from the definition, same reasons as the Python side."""

from __future__ import annotations

import json
import random

import pytest

from lae.schema import Event, archive_spark_schema, spark_schema, spark_validate, validate
from tests.unit.test_schema import BASE, CASES, msg  # the shared, hand-written table

pytestmark = pytest.mark.spark


# `spark` is the shared session fixture from tests/conftest.py: one JVM per test run, and the
# same classpath (Kafka source, S3A) as the jobs.


def _reasons(spark, messages: list[bytes]) -> list[str | None]:
    df = spark.createDataFrame([(i, m) for i, m in enumerate(messages)], "i int, value binary")
    rows = spark_validate(df, "value").select("i", "reason").orderBy("i").collect()
    return [r["reason"] for r in rows]


def test_struct_type_matches_definition() -> None:
    from pyspark.sql import types as T

    expected = [
        ("event_id", T.StringType(), False),
        ("ts", T.TimestampType(), False),
        ("service", T.StringType(), False),
        ("host", T.StringType(), False),
        ("method", T.StringType(), False),
        ("path", T.StringType(), False),
        ("status", T.IntegerType(), False),
        ("latency_ms", T.DoubleType(), False),
        ("bytes", T.LongType(), False),
        ("user_id", T.StringType(), True),
        ("ip", T.StringType(), True),
        ("user_agent", T.StringType(), True),
        ("schema", T.IntegerType(), False),
    ]
    assert [(f.name, f.dataType, f.nullable) for f in spark_schema().fields] == expected
    kafka = [(f.name, f.dataType, f.nullable) for f in archive_spark_schema().fields][13:]
    assert kafka == [
        ("topic", T.StringType(), False),
        ("partition", T.IntegerType(), False),
        ("offset", T.LongType(), False),
        ("kafka_ts", T.TimestampType(), True),
    ]


def test_same_reasons_as_hand_written_table(spark) -> None:
    got = _reasons(spark, [raw for _, raw, _ in CASES])
    mismatches = [
        (case_id, want, reason)
        for (case_id, _, want), reason in zip(CASES, got, strict=True)
        if reason != want
    ]
    assert mismatches == []


def test_typed_values_equal_the_python_events(spark) -> None:
    messages = [
        msg(),
        msg(user_id=None, ip=None, user_agent=None, schema=1),
        msg(
            event_id="0B7E2C1A-4F5D-4E8A-9C3B-2D1E0F9A8B7C",
            ts="2026-11-26t23:15:30.250999999+14:00",
        ),
        msg(latency_ms=0.5).replace(b"0.5", b"-0.0"),
        msg(latency_ms=7, bytes=2**63 - 1, status=599, ip="::ffff:192.0.2.1"),
        msg(user_agent="\U0001f600 <script>"),
    ]
    df = spark.createDataFrame([(m,) for m in messages], "value binary")
    names = ["reason", *Event._fields]
    rows = spark_validate(df, "value").select(*names).collect()
    from datetime import UTC

    for raw, row in zip(messages, rows, strict=True):
        event = validate(raw)
        assert isinstance(event, Event) and row["reason"] is None
        values = row.asDict()
        del values["reason"]
        # Spark hands back naive datetimes in the session zone (UTC).
        values["ts"] = values["ts"].replace(tzinfo=UTC)
        assert values == event._asdict()


def _mutations(seed: int, n: int) -> list[bytes]:
    """Valid events with one or two random edits: the reasons both sides must agree on."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not security
    values = [
        None,
        True,
        0,
        -1,
        1,
        99,
        200,
        600,
        2**63,
        10**30,
        1.5,
        200.0,
        -0.0,
        1e308,
        "",
        "x",
        "GET",
        "get",
        "/",
        "/a?b",
        "1.2.3.4",
        "::1",
        "1::2::3",
        "2026-11-26T10:00:00Z",
        "2026-11-26T10:00:00",
        "2101-01-01T00:00:00Z",
        "Orders",
        "a" * 70,
        "\u00e9",
        [1],
        {"a": 1},
        "0b7e2c1a-4f5d-4e8a-9c3b-2d1e0f9a8b7c",
    ]
    names = [*BASE, "schema", "extra"]
    out = []
    for _ in range(n):
        event = dict(BASE)
        for _ in range(rng.randint(1, 2)):
            name = rng.choice(names)
            if rng.random() < 0.15:
                event.pop(name, None)
            else:
                event[name] = rng.choice(values)
        raw = json.dumps(event).encode()
        if rng.random() < 0.1:  # and some byte-level damage
            pos = rng.randrange(len(raw))
            raw = raw[:pos] + rng.choice([b"", b"\xff", b"}", b'"', b"\\u", b" "]) + raw[pos + 1 :]
        out.append(raw)
    return out


def test_same_reasons_as_python_on_random_mutations(spark) -> None:
    messages = _mutations(seed=20261126, n=600)
    spark_reasons = _reasons(spark, messages)
    python_reasons = [getattr(validate(m), "reason", None) for m in messages]
    diffs = [
        (m, p, s) for m, p, s in zip(messages, python_reasons, spark_reasons, strict=True) if p != s
    ]
    assert diffs == []
    assert len(set(python_reasons)) > 15  # the sample does exercise many reasons
