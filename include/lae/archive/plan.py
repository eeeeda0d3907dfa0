"""Planning: which offsets of each partition one run archives, fixed before any data is read.

A partition's plan is ``[start, end)``: ``start`` = the offset committed for the archiver's
consumer group, ``end`` = the partition's end offset when the plan is made. The plan (with the
file-cutting setting ``max_rows``) is stored *in the offset commit's metadata* of ``start``:
re-committing the offset that is already committed moves nothing, and the plan is then kept
atomically with the position it belongs to. A re-run after a crash finds the same plan and so
produces the same files (same keys, same bytes), however much data arrived in between; it is
replaced only once ``end`` is committed. Without this, a re-run would cut the range at a new
end offset and leave the crashed run's differently-cut files behind as duplicates.

With no commit yet, a partition starts at its beginning offset (archive everything Kafka
still has); the archiver never starts at "latest".
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from lae.archive.retention import DEFAULT_SAFETY_MARGIN_MS, RetentionCheck, check_retention

if TYPE_CHECKING:
    from kafka import KafkaConsumer

GROUP_ID = "lae-archiver"
DEFAULT_MAX_ROWS = 250_000
# A run holds one partition's range in memory while cutting files; a backlog is archived in
# steps of at most this many offsets per partition per run.
DEFAULT_MAX_RANGE = 2_000_000
PLAN_VERSION = 1


@dataclass(frozen=True)
class PartitionPlan:
    topic: str
    partition: int
    start: int  # first offset to archive
    end: int  # one past the last offset to archive (half-open)
    max_rows: int = DEFAULT_MAX_ROWS

    @property
    def empty(self) -> bool:
        return self.end <= self.start

    def metadata(self) -> str:
        return json.dumps({"v": PLAN_VERSION, "plan_end": self.end, "max_rows": self.max_rows},
                          sort_keys=True)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PartitionPlan:
        return cls(d["topic"], int(d["partition"]), int(d["start"]), int(d["end"]),
                   int(d["max_rows"]))


def stored_plan(topic: str, partition: int, committed: int, metadata: str) -> PartitionPlan | None:
    """The plan kept in a commit's metadata, if it still applies to ``committed``."""
    try:
        meta = json.loads(metadata or "{}")
    except ValueError:
        return None  # someone else's metadata (e.g. a manual reset): plan afresh
    if not isinstance(meta, dict) or meta.get("v") != PLAN_VERSION or "plan_end" not in meta:
        return None
    end = int(meta["plan_end"])
    if end <= committed:
        return None
    return PartitionPlan(topic, partition, committed, end, int(meta["max_rows"]))


def decide_plan(topic: str, partition: int, committed: int | None, metadata: str,
                beginning: int, end_now: int, max_rows: int,
                max_range: int = DEFAULT_MAX_RANGE) -> tuple[PartitionPlan, bool]:
    """(plan, is_new). A stored plan wins over a fresh one, so re-runs repeat the same range."""
    start = beginning if committed is None else committed
    kept = stored_plan(topic, partition, start, metadata) if committed is not None else None
    if kept is not None:
        return kept, False
    end = min(max(start, end_now), start + max_range)
    return PartitionPlan(topic, partition, start, end, max_rows), True


def new_consumer(bootstrap: str, group_id: str = GROUP_ID, **overrides) -> KafkaConsumer:
    from kafka import KafkaConsumer

    configs = {
        "bootstrap_servers": bootstrap,
        "group_id": group_id,
        "client_id": "lae-archiver",
        "enable_auto_commit": False,
        # Never reset silently: an out-of-range position is an error the retention guard names.
        "auto_offset_reset": "none",
        # Big fetches: kafka-python's cost is per request, and the archive reads a backlog.
        "max_poll_records": 50_000,
        "fetch_max_bytes": 64 * 1024 * 1024,
        "max_partition_fetch_bytes": 16 * 1024 * 1024,
        "fetch_min_bytes": 1,
        "request_timeout_ms": 40_000,
    }
    configs.update(overrides)
    return KafkaConsumer(**configs)


# The planning consumer reads one record per partition (``peek_timestamp``): a fetch of
# 64 KiB instead of the archive's 16 MiB. The broker still returns a whole first record batch
# when it is bigger, so any batch can be peeked. Measured on the three non-empty partitions
# of a 1M-event topic: 0.05 s and 0.05 CPU-s for the three peeks against 0.31-0.34 s and
# 0.26-0.28 CPU-s.
PLAN_FETCH_BYTES = 64 * 1024


def planning_consumer(bootstrap: str, group_id: str = GROUP_ID) -> KafkaConsumer:
    """A consumer for planning and committing: offsets and one peeked record per partition."""
    return new_consumer(bootstrap, group_id, max_partition_fetch_bytes=PLAN_FETCH_BYTES,
                        fetch_max_bytes=PLAN_FETCH_BYTES)


def topic_retention_ms(bootstrap: str, topic: str) -> int | None:
    """retention.ms of the topic as the broker has it, or None if it cannot be read."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="lae-archiver-plan")
    try:
        (resp,) = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        for res in resp.resources:
            for entry in res[4]:
                if entry[0] == "retention.ms":
                    return int(entry[1])
    except Exception:  # noqa: BLE001 - the guard then falls back to the configured value
        return None
    finally:
        admin.close()
    return None


def peek_timestamp(consumer: KafkaConsumer, tp, offset: int, timeout_s: float = 10.0) -> int | None:
    """Kafka timestamp (ms) of the message at ``offset`` (or the next one present)."""
    consumer.assign([tp])
    consumer.seek(tp, offset)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500, max_records=1).values():
            if records:
                return records[0].timestamp
    return None


def plan_partitions(
    consumer: KafkaConsumer,
    topic: str,
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_range: int = DEFAULT_MAX_RANGE,
    retention_ms: int | None = None,
    margin_ms: int = DEFAULT_SAFETY_MARGIN_MS,
    now_ms: int | None = None,
) -> list[PartitionPlan]:
    """Plan every partition of ``topic`` and store new plans; raises ``RetentionError`` for the
    first partition whose unarchived data is gone or about to be."""
    from kafka import OffsetAndMetadata, TopicPartition

    parts = sorted(consumer.partitions_for_topic(topic) or ())
    if not parts:
        raise RuntimeError(f"topic {topic} not found or has no partitions")
    tps = [TopicPartition(topic, p) for p in parts]
    beginning = consumer.beginning_offsets(tps)
    end = consumer.end_offsets(tps)
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    plans, to_store, errors = [], {}, []
    for tp in tps:
        committed = consumer.committed(tp, metadata=True)
        plan, is_new = decide_plan(topic, tp.partition,
                                   None if committed is None else committed.offset,
                                   "" if committed is None else committed.metadata,
                                   beginning[tp], end[tp], max_rows, max_range)
        first_ts = None
        if not plan.empty and plan.start >= beginning[tp]:
            first_ts = peek_timestamp(consumer, tp, plan.start)
        try:
            check_retention(RetentionCheck(topic, tp.partition, plan.start, beginning[tp],
                                           first_ts, now_ms, retention_ms, margin_ms))
        except Exception as exc:  # noqa: BLE001 - collected: every partition at risk is named
            errors.append(exc)
            continue
        if is_new and not plan.empty:
            to_store[tp] = OffsetAndMetadata(plan.start, plan.metadata(), -1)
        plans.append(plan)
    if errors:
        if len(errors) == 1:
            raise errors[0]
        raise type(errors[0])("; ".join(str(e) for e in errors), errors[0].topic,
                              errors[0].partition, errors[0].lost)
    if to_store:
        consumer.commit(to_store)
    return plans


def load_plan(consumer: KafkaConsumer, topic: str, partition: int) -> PartitionPlan | None:
    """The stored plan for a partition (None: nothing planned, or already archived)."""
    from kafka import TopicPartition

    committed = consumer.committed(TopicPartition(topic, partition), metadata=True)
    if committed is None:
        return None
    return stored_plan(topic, partition, committed.offset, committed.metadata)
