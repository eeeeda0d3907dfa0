"""Reading exactly one planned offset range of one partition.

``assign`` + ``seek``, no group membership and no auto commit: the archiver decides when an
offset counts as archived. The range is read by position, not by counting messages, because
offsets can have gaps (transaction markers, compaction).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kafka import KafkaConsumer

    from lae.archive.plan import PartitionPlan

# How long the broker may return nothing before a run gives up instead of hanging forever.
STALL_TIMEOUT_S = 60.0


class RangeReadError(RuntimeError):
    pass


def read_range(consumer: KafkaConsumer, plan: PartitionPlan,
               stall_timeout_s: float = STALL_TIMEOUT_S) -> Iterator[list]:
    """Yield lists of ConsumerRecords with ``plan.start <= offset < plan.end``, in offset order.

    An out-of-range error (data deleted meanwhile) propagates: the consumer is configured with
    ``auto_offset_reset="none"`` so nothing is skipped silently.
    """
    from kafka import TopicPartition

    if plan.empty:
        return
    tp = TopicPartition(plan.topic, plan.partition)
    consumer.assign([tp])
    consumer.seek(tp, plan.start)
    expected = plan.start
    last_progress = time.monotonic()
    while expected < plan.end:
        batch = consumer.poll(timeout_ms=1000).get(tp, ())
        if not batch:
            if consumer.position(tp) >= plan.end:
                return  # the rest of the range was gaps
            if time.monotonic() - last_progress > stall_timeout_s:
                raise RangeReadError(f"{plan.topic}/{plan.partition}: no data at offset "
                                     f"{expected} for {stall_timeout_s:.0f}s (plan ends "
                                     f"at {plan.end})")
            continue
        last_progress = time.monotonic()
        if batch[0].offset < expected:
            raise RangeReadError(f"{plan.topic}/{plan.partition}: offset went back from "
                                 f"{expected} to {batch[0].offset}")
        if batch[-1].offset >= plan.end:
            batch = [r for r in batch if r.offset < plan.end]
            expected = plan.end
        else:
            expected = batch[-1].offset + 1
        if batch:
            yield batch
