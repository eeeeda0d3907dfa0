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
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lae.archive.layout import master_key, quarantine_date, quarantine_key
from lae.schema import Event, Rejection, validate

if TYPE_CHECKING:
    import pyarrow as pa

    from lae.archive.reader import Columns

# Pinned so that a pyarrow default changing between versions shows up as a test failure here,
# not as silently different bytes for the same key.
PARQUET_OPTIONS = {
    "compression": "zstd",
    # Level 1, not 3: on 200k archived events (one 1M-event topic partition) encoding took
    # 1.26 against 1.87 us/row of CPU and the files were not bigger (8.9 against 9.1 MB).
    "compression_level": 1,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
    "data_page_version": "1.0",
    "write_page_index": False,
    "store_schema": True,
}
# Master files: dictionary pages only for the columns with few distinct values (a dictionary
# of unique event ids is built and then thrown away when it outgrows its page), and no min/max
# statistics for free text that no reader filters on. Same 200k events: 0.79-1.06 against
# 1.66-1.87 us/row, 7.7 against 9.1 MB (a column with more distinct values than expected
# only falls back to plain encoding).
MASTER_DICTIONARY_COLUMNS = ("service", "host", "method", "path", "status", "user_id",
                             "user_agent", "schema", "topic", "partition")
MASTER_UNFILTERED_TEXT = ("event_id", "user_id", "ip", "user_agent")


def master_parquet_options() -> dict:
    from lae.schema import archive_arrow_schema

    names = archive_arrow_schema().names
    return {**PARQUET_OPTIONS, "use_dictionary": list(MASTER_DICTIONARY_COLUMNS),
            "write_statistics": [n for n in names if n not in MASTER_UNFILTERED_TEXT]}


@dataclass
class Bucket:
    """Rejected rows for one quarantine group, as columns, in offset order."""

    events: list = field(default_factory=list)  # QuarantineRow values
    offsets: list[int] = field(default_factory=list)
    kafka_ts: list = field(default_factory=list)


@dataclass
class MasterBucket:
    """Valid rows for one (date, hour) group, in offset order: Arrow tables of the event
    columns plus ``offset`` and ``kafka_ts`` (one piece per fetched batch with rows here)."""

    pieces: list = field(default_factory=list)
    rows: int = 0

    def table(self, topic: str, partition: int) -> pa.Table:
        """The rows in the archive schema, as one contiguous chunk: the Parquet bytes must not
        depend on how the rows arrived (batch sizes, fast or slow path)."""
        import pyarrow as pa

        from lae.schema import archive_arrow_schema

        rows = pa.concat_tables(self.pieces).combine_chunks()
        n = rows.num_rows
        columns = list(rows.columns[:-2]) + [
            pa.array([topic] * n, type=pa.string()),
            pa.array([partition] * n, type=pa.int32()),
            rows["offset"], rows["kafka_ts"]]
        return pa.Table.from_arrays(columns, schema=archive_arrow_schema()).combine_chunks()


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
    """One partition range split into master and quarantine groups.

    ``add`` validates a fetched batch with the vectorised fast path (``lae.schema.fast``) and
    sends only what it cannot prove valid through ``validate``, one by one; rows of both kinds
    are merged back into offset order before they are grouped by event hour.
    """

    # Keyed by (year, month, day, hour) ints.
    valid: dict[tuple[int, int, int, int], MasterBucket] = field(
        default_factory=lambda: defaultdict(MasterBucket))
    rejected: dict[str, Bucket] = field(default_factory=lambda: defaultdict(Bucket))
    raw_bytes: int = 0
    # Messages per path, for the benchmark's breakdown.
    fast_rows: int = 0
    slow_rows: int = 0

    def add(self, records) -> None:
        """Add records with kafka-python's ConsumerRecord field names (tests, small callers)."""
        from lae.archive.reader import Columns

        self.add_columns(Columns.from_records(records))

    def add_columns(self, batch: Columns) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from lae.schema.fast import validate_batch

        if not batch.offsets:
            return
        values, offsets = batch.values, batch.offsets
        raw = pa.array(values, type=pa.binary())
        self.raw_bytes += pc.sum(pc.binary_length(raw)).as_py() or 0
        # Kafka reports -1 (or nothing) for a message without a timestamp: kept as null.
        ts_ms = np.array(batch.timestamps, dtype=np.int64)
        offsets_arr = pa.array(offsets, type=pa.int64())
        kafka_ts_arr = pa.array(ts_ms, mask=ts_ms < 0).cast(pa.timestamp("ms", tz="UTC"))
        ok, fast = validate_batch(raw)
        slow_events, slow_at = [], []
        for i in np.flatnonzero(~ok).tolist():
            result = validate(values[i])
            if isinstance(result, Rejection):
                kafka_ts = int(ts_ms[i]) if ts_ms[i] >= 0 else None
                b = self.rejected[quarantine_date(kafka_ts)]
                b.events.append(QuarantineRow(values[i], batch.keys[i], result.reason,
                                              result.detail))
                b.offsets.append(offsets[i])
                b.kafka_ts.append(kafka_ts)
            else:
                slow_events.append(result)
                slow_at.append(i)
        self.fast_rows += len(fast)
        self.slow_rows += len(values) - len(fast)
        at = np.flatnonzero(ok)
        table = _with_coordinates(fast, at, offsets_arr, kafka_ts_arr)
        if slow_events:
            slow = _with_coordinates(_events_table(slow_events), np.array(slow_at), offsets_arr,
                                     kafka_ts_arr)
            table = pa.concat_tables([table, slow])
            at = np.concatenate([at, np.array(slow_at)])
            table = table.take(pa.array(np.argsort(at, kind="stable")))
        if table.num_rows:
            self._group_by_hour(table)

    def _group_by_hour(self, table: pa.Table) -> None:
        import numpy as np
        import pyarrow as pa

        ts_us = table["ts"].combine_chunks().cast(pa.int64()).to_numpy()
        hours = ts_us // 3_600_000_000
        if (hours[1:] < hours[:-1]).any():
            # Late events spread a batch over many hours: one stable sort by hour (offset
            # order kept within each hour) and a slice per hour, not a filter of the whole
            # batch per hour. A batch already in hour order (one hour, or crossing an hour
            # boundary in order) is sliced as it is, without a copy.
            order = np.argsort(hours, kind="stable")
            table, hours = table.take(pa.array(order)), hours[order]
        # In hour order now: a piece starts where the hour changes (one linear pass; np.unique
        # would sort every batch again).
        starts = np.flatnonzero(np.r_[True, hours[1:] != hours[:-1]])
        ends = [*starts[1:].tolist(), len(hours)]
        for hour, start, end in zip(hours[starts].tolist(), starts.tolist(), ends, strict=True):
            piece = table.slice(start, end - start)
            at = datetime.fromtimestamp(hour * 3600, UTC)
            b = self.valid[(at.year, at.month, at.day, at.hour)]
            b.pieces.append(piece)
            b.rows += piece.num_rows


def _events_table(events: list[Event]) -> pa.Table:
    import pyarrow as pa

    from lae.schema import arrow_schema

    schema = arrow_schema()
    columns = list(zip(*events, strict=True))
    return pa.Table.from_arrays(
        [pa.array(col, type=schema.field(i).type) for i, col in enumerate(columns)],
        schema=schema)


def _with_coordinates(events: pa.Table, at, offsets: pa.Array, kafka_ts: pa.Array) -> pa.Table:
    """``events`` (rows ``at`` of a batch) with their ``offset`` and ``kafka_ts``."""
    import pyarrow as pa

    take = pa.array(at, type=pa.int64())
    return events.append_column(pa.field("offset", pa.int64(), nullable=False),
                                offsets.take(take)).append_column(
        pa.field("kafka_ts", pa.timestamp("ms", tz="UTC")), kafka_ts.take(take))


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


def encode(table: pa.Table, options: dict | None = None) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=max(1, table.num_rows),
                   **(options or PARQUET_OPTIONS))
    return buf.getvalue()


def cut_files(split: Split, topic: str, partition: int, max_rows: int):
    """Yield ``OutFile``s in a fixed order (master by date/hour, then quarantine by date)."""
    if max_rows < 1:
        raise ValueError("max_rows must be >= 1")
    master_options = master_parquet_options()
    for y, m, d, h in sorted(split.valid):
        whole = split.valid[(y, m, d, h)].table(topic, partition)
        date, hour = f"{y:04d}-{m:02d}-{d:02d}", f"{h:02d}"
        for i, j in _chunks(whole.num_rows, max_rows):
            table = whole.slice(i, j - i)
            first, last = table["offset"][0].as_py(), table["offset"][-1].as_py()
            yield OutFile(master_key(topic, partition, first, last, date, hour),
                          j - i, encode(table, master_options), first, last, date, "master")
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
