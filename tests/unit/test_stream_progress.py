"""lae.stream.progress and the small pure helpers of the supervisor and the job."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from lae.stream.job import query_names, trigger_ms
from lae.stream.progress import heartbeat_of, parse_time, partition_lag
from lae.stream.store import heartbeat_age
from lae.stream.supervisor import master_from_connection

# Shaped like Spark 4's StreamingQueryProgress.json for a Kafka source with a dedup operator.
PROGRESS = {
    "id": "4f1c", "runId": "9a2b", "name": "speed_views_minute",
    "timestamp": "2026-11-26T08:00:02.500Z", "batchId": 41, "numInputRows": 1200,
    "durationMs": {"addBatch": 900, "triggerExecution": 1350},
    "eventTime": {"watermark": "2026-11-26T07:50:00.000Z", "max": "2026-11-26T08:00:00.000Z"},
    "stateOperators": [{"operatorName": "dedupeWithinWatermark", "numRowsDroppedByWatermark": 7},
                       {"operatorName": "stateStoreSave", "numRowsDroppedByWatermark": 0}],
    "sources": [{
        "description": "KafkaV2[Subscribe[logs.raw]]",
        "startOffset": {"logs.raw": {"0": 100, "1": 50}},
        "endOffset": {"logs.raw": {"0": 700, "1": 650}},
        "latestOffset": {"logs.raw": {"0": 710, "1": 650}},
        "numInputRows": 1200,
    }],
}


def test_heartbeat_of_a_progress_report():
    hb = heartbeat_of(PROGRESS)
    assert hb.query_name == "speed_views_minute" and hb.run_id == "9a2b" and hb.batch_id == 41
    assert hb.last_progress_at == datetime(2026, 11, 26, 8, 0, 2, 500000, tzinfo=UTC)
    assert json.loads(hb.offsets) == {"logs.raw": {"0": 700, "1": 650}}
    assert hb.lag == 10 and json.loads(hb.lag_by_partition) == {"0": 10, "1": 0}
    assert (hb.input_rows, hb.processing_ms, hb.dropped_by_watermark) == (1200, 1350, 7)
    assert hb.watermark == datetime(2026, 11, 26, 7, 50, tzinfo=UTC)


def test_offsets_given_as_json_text_and_an_idle_query():
    report = {**PROGRESS, "eventTime": {"watermark": "1970-01-01T00:00:00.000Z"},
              "sources": [{**PROGRESS["sources"][0],
                           "endOffset": json.dumps({"logs.raw": {"0": 710, "1": 650}})}]}
    hb = heartbeat_of(report)
    assert hb.lag == 0 and hb.watermark is None  # the epoch watermark means "none yet"


def test_partition_lag_never_negative_and_names_topics_when_several():
    assert partition_lag({"t": {"0": 5}}, {"t": {"0": 3, "1": 4}}) == {"0": 0, "1": 4}
    assert partition_lag({}, {"a": {"0": 2}, "b": {"0": 1}}) == {"a/0": 2, "b/0": 1}


def test_parse_time():
    assert parse_time(None) is None
    assert parse_time("2026-11-26T08:00:00Z") == datetime(2026, 11, 26, 8, tzinfo=UTC)


@pytest.mark.parametrize(("text", "ms"), [("2 seconds", 2000), ("500 milliseconds", 500),
                                          ("1 second", 1000), ("1 minute", 60000)])
def test_trigger_ms(text, ms):
    assert trigger_ms(text) == ms


@pytest.mark.parametrize(("host", "port", "master"), [
    ("local[*]", None, "local[*]"), (None, None, "local[*]"), ("yarn", None, "yarn"),
    ("spark://m", 7077, "spark://m:7077"), ("m", 7077, "spark://m:7077"),
])
def test_master_from_connection(host, port, master):
    assert master_from_connection(host, port) == master


def test_heartbeat_age_is_the_stalest_query_and_none_when_one_never_reported():
    now = datetime(2026, 11, 26, 8, tzinfo=UTC)
    names = list(query_names().values())
    hbs = {n: {"updated_at": now - timedelta(seconds=i * 10)} for i, n in enumerate(names)}
    assert heartbeat_age(hbs, names, now) == 20
    assert heartbeat_age({names[0]: hbs[names[0]]}, names, now) is None


def test_behind_counts_what_the_last_micro_batch_did_not_reach():
    from lae.stream.progress import behind

    target = {0: 100, 1: 50, 2: 0}
    assert behind({"logs.raw": {"0": 100, "1": 50, "2": 0}}, "logs.raw", target) == 0
    assert behind({"logs.raw": {"0": 90, "1": 50}}, "logs.raw", target) == 10
    # Past the target (traffic went on after it was taken) is not negative work.
    assert behind({"logs.raw": {"0": 120, "1": 40}}, "logs.raw", target) == 10
    # A query that never finished a micro-batch has everything still to do.
    assert behind(None, "logs.raw", target) == 150
    assert behind({"other.topic": {"0": 100}}, "logs.raw", target) == 150


def test_session_conf_names_the_state_store_and_refuses_an_unknown_one():
    from dataclasses import replace

    from lae.config import get_settings
    from lae.stream.job import session_conf

    conf = session_conf(replace(get_settings(), stream_state_store="rocksdb"))
    assert conf["spark.sql.streaming.stateStore.providerClass"].endswith(
        "RocksDBStateStoreProvider")
    # The validation's fused codegen method is over HotSpot's huge-method limit.
    assert conf["spark.driver.extraJavaOptions"] == conf["spark.executor.extraJavaOptions"] == (
        "-XX:-DontCompileHugeMethods")
    assert "HDFSBacked" in session_conf(replace(get_settings(), stream_state_store="hdfs"))[
        "spark.sql.streaming.stateStore.providerClass"]
    with pytest.raises(ValueError, match="LAE_STREAM_STATE_STORE"):
        session_conf(replace(get_settings(), stream_state_store="memory"))
