"""The retention guard: never archive around a hole that Kafka's retention already made.

Two decisions, both pure so they are unit-tested without a broker:

- **lost**: the next offset to archive is below the partition's beginning offset, so Kafka has
  deleted ``[next, beginning)`` before it reached S3. A consumer would normally "reset" here
  (to earliest or latest) and carry on; the archiver refuses, because either reset hides a hole
  in the master dataset. Someone must decide (restore from elsewhere, or accept the loss by
  committing the beginning offset by hand), and the error says exactly which range is gone.
- **at risk**: the oldest unarchived message is older than ``retention.ms`` minus a safety
  margin, so it will be deleted soon. The run fails (and alerts) while there is still time.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SAFETY_MARGIN_MS = 6 * 3600 * 1000  # hours of lag before the loss; enough to react


class RetentionError(RuntimeError):
    """The archive cannot (or soon will not be able to) cover a partition without a gap."""

    def __init__(self, message: str, topic: str, partition: int, lost: tuple[int, int] | None):
        super().__init__(message)
        self.topic = topic
        self.partition = partition
        self.lost = lost  # half-open offset range already deleted, or None when only at risk


@dataclass(frozen=True)
class RetentionCheck:
    topic: str
    partition: int
    next_offset: int  # first offset not yet archived
    beginning: int  # the partition's log start offset
    first_ts_ms: int | None = None  # Kafka timestamp of the message at next_offset, if any
    now_ms: int = 0
    retention_ms: int | None = None  # None or -1: unlimited retention
    margin_ms: int = DEFAULT_SAFETY_MARGIN_MS


def check_retention(c: RetentionCheck) -> None:
    """Raise ``RetentionError`` when data is lost or about to be; return None when safe."""
    where = f"{c.topic} partition {c.partition}"
    if c.next_offset < c.beginning:
        raise RetentionError(
            f"{where}: offsets [{c.next_offset}, {c.beginning}) were deleted by retention "
            f"before they were archived ({c.beginning - c.next_offset} messages lost). "
            "Not resetting: restore them or commit offset "
            f"{c.beginning} for the archiver's group by hand to accept the gap.",
            c.topic, c.partition, (c.next_offset, c.beginning))
    if c.first_ts_ms is None or c.first_ts_ms < 0 or c.retention_ms is None or c.retention_ms < 0:
        return
    age = c.now_ms - c.first_ts_ms
    limit = c.retention_ms - c.margin_ms
    if age > limit:
        raise RetentionError(
            f"{where}: the oldest unarchived message (offset {c.next_offset}) is "
            f"{age / 3.6e6:.1f} h old; retention.ms is {c.retention_ms / 3.6e6:.1f} h and "
            f"the safety margin {c.margin_ms / 3.6e6:.1f} h, so it is at risk of deletion: "
            "archive now or raise retention", c.topic, c.partition, None)
