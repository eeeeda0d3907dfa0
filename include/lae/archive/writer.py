"""Turning one partition's records into Parquet files, deterministically.

Valid events are grouped by the UTC (date, hour) of their event time, keep offset order
inside each group, and each group is cut into files of at most ``max_rows`` rows. Everything
that decides a file's rows is part of the stored plan (range and ``max_rows``), and the
Parquet writer options are pinned (no wall-clock anywhere in the file), so the same plan
always yields the same keys and the same bytes. Rejected messages go to quarantine files cut
the same way, grouped by arrival (Kafka) date.
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lae.archive.layout import master_key, quarantine_date, quarantine_key
from lae.schema import Event, Rejection, validate

if TYPE_CHECKING:
    import pyarrow as pa

# Pinned so that a pyarrow default changing between versions shows up as a test failure here,
# not as silently different bytes for the same key.
PARQUET_OPTIONS = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
    "data_page_version": "1.0",
    "write_page_index": False,
    "store_schema": True,
}


@dataclass
class Bucket:
    """Rows for one output group, as columns, in offset order."""

    events: list = field(default_factory=list)  # Event tuples (or Rejection-side rows)
    offsets: list[int] = field(default_factory=list)
    kafka_ts: list = field(default_factory=list)


@dataclass
class QuarantineRow:
    raw: bytes
    key: bytes | None
    reason: str
    detail: str


@dataclass(frozen=True)
class OutFile:
    key: str
    rows: int
    data: bytes
    first: int
    last: int
    date: str
    kind: str  # "master" or "quarantine"
    reasons: dict[str, int] | None = None


@dataclass
class Split:
    """One partition range split into master and quarantine groups."""

    # Keyed by (year, month, day, hour) ints: formatting a date per record cost ~5% of a run.
    valid: dict[tuple[int, int, int, int], Bucket] = field(
        default_factory=lambda: defaultdict(Bucket))
    rejected: dict[str, Bucket] = field(default_factory=lambda: defaultdict(Bucket))
    raw_bytes: int = 0

    def add(self, records) -> None:
        valid, rejected = self.valid, self.rejected
        for r in records:
            value = r.value if r.value is not None else b""
            self.raw_bytes += len(value)
            ts = r.timestamp if r.timestamp is not None and r.timestamp >= 0 else None
            result = validate(value)
            if isinstance(result, Rejection):
                b = rejected[quarantine_date(ts)]
                b.events.append(QuarantineRow(value, r.key, result.reason, result.detail))
            else:
                ts_ = result.ts  # validate() normalizes ts to UTC
                b = valid[(ts_.year, ts_.month, ts_.day, ts_.hour)]
                b.events.append(result)
            b.offsets.append(r.offset)
            b.kafka_ts.append(ts)


def _chunks(n: int, size: int):
    for i in range(0, n, size):
        yield i, min(i + size, n)


def master_table(events: list[Event], topic: str, partition: int, offsets: list[int],
                 kafka_ts: list) -> pa.Table:
    import pyarrow as pa

    from lae.schema import archive_arrow_schema

    schema = archive_arrow_schema()
    n = len(events)
    columns = list(zip(*events, strict=True)) if events else [[] for _ in Event._fields]
    arrays = [pa.array(col, type=schema.field(i).type) for i, col in enumerate(columns)]
    arrays += [
        pa.array([topic] * n, type=pa.string()),
        pa.array([partition] * n, type=pa.int32()),
        pa.array(offsets, type=pa.int64()),
        pa.array(kafka_ts, type=pa.timestamp("ms", tz="UTC")),
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def quarantine_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([
        pa.field("raw", pa.binary(), nullable=False),  # the message bytes, untouched
        pa.field("key", pa.binary()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
        pa.field("topic", pa.string(), nullable=False),
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("kafka_ts", pa.timestamp("ms", tz="UTC")),
    ])


def quarantine_table(rows: list[QuarantineRow], topic: str, partition: int, offsets: list[int],
                     kafka_ts: list) -> pa.Table:
    import pyarrow as pa

    n = len(rows)
    return pa.Table.from_pydict({
        "raw": [r.raw for r in rows],
        "key": [r.key for r in rows],
        "reason": [r.reason for r in rows],
        "detail": [r.detail for r in rows],
        "topic": [topic] * n,
        "partition": [partition] * n,
        "offset": offsets,
        "kafka_ts": kafka_ts,
    }, schema=quarantine_schema())


def encode(table: pa.Table) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=max(1, table.num_rows), **PARQUET_OPTIONS)
    return buf.getvalue()


def cut_files(split: Split, topic: str, partition: int, max_rows: int):
    """Yield ``OutFile``s in a fixed order (master by date/hour, then quarantine by date)."""
    if max_rows < 1:
        raise ValueError("max_rows must be >= 1")
    for y, m, d, h in sorted(split.valid):
        b = split.valid[(y, m, d, h)]
        date, hour = f"{y:04d}-{m:02d}-{d:02d}", f"{h:02d}"
        for i, j in _chunks(len(b.offsets), max_rows):
            offsets = b.offsets[i:j]
            table = master_table(b.events[i:j], topic, partition, offsets, b.kafka_ts[i:j])
            yield OutFile(master_key(topic, partition, offsets[0], offsets[-1], date, hour),
                          j - i, encode(table), offsets[0], offsets[-1], date, "master")
    for date in sorted(split.rejected):
        b = split.rejected[date]
        for i, j in _chunks(len(b.offsets), max_rows):
            offsets = b.offsets[i:j]
            rows = b.events[i:j]
            reasons: dict[str, int] = {}
            for r in rows:
                reasons[r.reason] = reasons.get(r.reason, 0) + 1
            table = quarantine_table(rows, topic, partition, offsets, b.kafka_ts[i:j])
            yield OutFile(quarantine_key(topic, partition, offsets[0], offsets[-1], date),
                          j - i, encode(table), offsets[0], offsets[-1], date, "quarantine",
                          dict(sorted(reasons.items())))
