"""The Spark fast path (lae.schema.spark_fast) changes nothing but the cost: on random mixes,
``spark_validate`` with it gives exactly the rows (reason and every column) it gives without
it; it takes exactly the messages the archiver's RE2 fast path (lae.schema.fast) takes; and
generated traffic does take it."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lae.schema import Event, spark_validate, to_json_bytes
from lae.schema.fast import validate_batch
from lae.schema.spark_fast import java_pattern, with_fast_path
from tests.unit.test_schema import BASE_EVENT, CASES, msg
from tests.unit.test_schema_fast import _NEAR_MISSES, _messages
from tests.unit.test_schema_spark import _mutations

pytestmark = pytest.mark.spark

# Each example is one Spark job (about a second): few examples, each a mix of up to 400.
_SETTINGS = settings(max_examples=5, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_COLUMNS = ["reason", *Event._fields]


def _frame(spark, messages: list[bytes]):
    return spark.createDataFrame([(i, m) for i, m in enumerate(messages)], "i int, value binary")


def _both_paths(df) -> list[tuple[str, str, bool]]:
    """Per row (ordered by i): the row with the fast path, without it, and whether it took it.
    One Spark job: the second validation runs on the first's output (its columns replaced)."""
    import pyspark.sql.functions as F

    # repr keeps what == would blur: -0.0 vs 0.0, 1 vs 1.0, the column order.
    fast = spark_validate(df, "value").select("i", "value", F.struct(*_COLUMNS).alias("fast"))
    both = spark_validate(fast, "value", fast_path=False).withColumn("full", F.struct(*_COLUMNS))
    checked = with_fast_path(both.withColumn("s", F.col("value").cast("string")), "s", "ok", "f_")
    rows = checked.select("i", "fast", "full", "ok").orderBy("i").collect()
    return [(repr(r["fast"]), repr(r["full"]), r["ok"]) for r in rows]


def _check_mix(spark, messages: list[bytes]) -> list[bool]:
    """Asserts both paths agree row for row and the fast path takes what RE2's takes; returns
    which rows took it."""
    rows = _both_paths(_frame(spark, messages))
    diffs = [(m, fast, full) for m, (fast, full, _) in zip(messages, rows, strict=True)
             if fast != full]
    assert diffs == []
    taken = [ok for _, _, ok in rows]
    re2_ok, _ = validate_batch(pa.array(messages, type=pa.binary()))
    assert taken == re2_ok.tolist()
    return taken


@_SETTINGS
@given(st.lists(_messages(), min_size=1, max_size=10).map(lambda lists: sum(lists, [])))
@example([b'{"event_id":"00000000-0000-4000-8000-00000000000A","ts":"2024-02-29T23:59:59.5Z",'
          b'"service":"s","host":"h","method":"GET","path":"/","status":200,"latency_ms":1e-05,'
          b'"bytes":0,"user_id":null,"ip":"::1","user_agent":""}',
          # Java's $ would match before the final newline; RE2's (and \z) does not.
          to_json_bytes(BASE_EVENT) + b"\n", to_json_bytes(BASE_EVENT) + b"\r\n"])
def test_fast_path_changes_no_row_on_random_mixes(spark, messages) -> None:
    _check_mix(spark, messages)


def test_fast_path_changes_no_row_on_the_tables_and_near_misses(spark) -> None:
    canonical = [to_json_bytes(BASE_EVENT)]
    near = [json.dumps({**json.loads(canonical[0]), k: v}, separators=(",", ":")).encode()
            for k, v in _NEAR_MISSES]
    messages = canonical + near + [raw for _, raw, _ in CASES] + _mutations(seed=7, n=300)
    taken = _check_mix(spark, messages)
    assert taken[0] and not any(taken[1:1 + len(near)])


def test_generated_traffic_takes_the_fast_path(spark) -> None:
    # The point of the fast path: every well-formed message the generator sends takes it, no
    # malformed one does. Fails if the shape silently matches nothing.
    from lae.generator.model import KINDS, Mix, TrafficModel

    chunk = TrafficModel(7, mix=Mix(malformed=0.05)).draw(
        1_764_000_000_000 + np.arange(2000, dtype=np.int64) * 1000)
    taken = np.array(_check_mix(spark, chunk.payloads))
    malformed = chunk.kind == KINDS.index("malformed")
    assert malformed.any() and not taken[malformed].any()
    assert taken[~malformed].all()


def test_spark_validate_uses_the_fast_path_unless_told_not_to(spark) -> None:
    df = _frame(spark, [msg()])

    def plan(frame) -> str:
        return frame._jdf.queryExecution().optimizedPlan().toString()

    assert java_pattern()[:20] in plan(spark_validate(df))
    assert java_pattern()[:20] not in plan(spark_validate(df, fast_path=False))
