"""A streaming query's progress report → the values of its ``stream_heartbeat`` row (pure).

Spark's progress JSON (``StreamingQueryProgress.json``) carries, per source, the offsets a
micro-batch ended at and the latest offsets Kafka had when it was planned; their difference is
the consumer lag per partition. ``eventTime.watermark`` is the watermark the next micro-batch
applies, and ``stateOperators[].numRowsDroppedByWatermark`` counts the late input rows Spark
dropped — the cross-check of ``stream_late_events``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Heartbeat:
    query_name: str
    run_id: str
    batch_id: int
    last_progress_at: datetime
    offsets: str  # JSON of the end offsets: {"logs.raw": {"0": 123, ...}}
    lag: int
    lag_by_partition: str  # JSON {"0": 12, ...}
    input_rows: int
    processing_ms: int
    watermark: datetime | None
    dropped_by_watermark: int


def parse_time(text: str | None) -> datetime | None:
    """Spark's progress timestamps ('2026-11-26T08:00:00.000Z'); the epoch watermark = none."""
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    return None if moment.timestamp() <= 0 else moment


def _offsets(value: Any) -> dict[str, dict[str, int]]:
    if value is None:
        return {}
    if isinstance(value, str):
        value = json.loads(value)
    return {topic: {str(p): int(o) for p, o in parts.items()} for topic, parts in value.items()}


def partition_lag(end: dict[str, dict[str, int]],
                  latest: dict[str, dict[str, int]]) -> dict[str, int]:
    """Per partition ('topic/partition' when several topics), latest minus processed offset."""
    many = len(latest) > 1
    lag = {}
    for topic, parts in latest.items():
        for part, newest in parts.items():
            done = end.get(topic, {}).get(part, 0)
            lag[f"{topic}/{part}" if many else part] = max(0, newest - done)
    return lag


def heartbeat_of(progress: dict) -> Heartbeat:
    """The heartbeat of one progress report (a dict parsed from ``progress.json``)."""
    end: dict[str, dict[str, int]] = {}
    latest: dict[str, dict[str, int]] = {}
    for source in progress.get("sources", []):
        end.update(_offsets(source.get("endOffset")))
        latest.update(_offsets(source.get("latestOffset")))
    lag = partition_lag(end, latest)
    dropped = sum(int(op.get("numRowsDroppedByWatermark") or 0)
                  for op in progress.get("stateOperators", []))
    return Heartbeat(
        query_name=progress.get("name") or progress["id"],
        run_id=progress["runId"],
        batch_id=int(progress["batchId"]),
        last_progress_at=parse_time(progress["timestamp"]),
        offsets=json.dumps(end, sort_keys=True),
        lag=sum(lag.values()),
        lag_by_partition=json.dumps(lag, sort_keys=True),
        input_rows=int(progress.get("numInputRows") or 0),
        processing_ms=int((progress.get("durationMs") or {}).get("triggerExecution") or 0),
        watermark=parse_time((progress.get("eventTime") or {}).get("watermark")),
        dropped_by_watermark=dropped,
    )


def behind(offsets: dict[str, dict[str, int]] | None, topic: str,
           target: dict[int, int]) -> int:
    """Messages of ``target`` (partition → end offset) that a query whose last micro-batch
    ended at ``offsets`` has not processed yet.

    A heartbeat's ``lag`` cannot tell this: it is measured against the offsets Kafka had when
    that micro-batch was planned, so a job that is minutes behind still reports lag 0 between
    two slow micro-batches, and a query that never finished one reports none at all.
    """
    done = (offsets or {}).get(topic, {})
    return sum(max(0, end - int(done.get(str(part), 0))) for part, end in target.items())
