"""The ground-truth file: one Parquet row per message the generator sent, in send order.

Event fields hold what the message carried (null for malformed rows, whose ``raw`` bytes are
the message); ``kind`` says what it was meant to test; ``partition``/``offset`` say where
Kafka put it, or ``error`` why it was not acknowledged. Tests and the end-to-end checks
count against this file instead of re-deriving what a run should have produced.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lae.generator.model import KINDS, MALFORMED, Chunk

SCHEMA = pa.schema([
    pa.field("seq", pa.int64(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("event_id", pa.string()),
    pa.field("ts", pa.timestamp("ms", tz="UTC")),
    pa.field("service", pa.string()),
    pa.field("host", pa.string()),
    pa.field("method", pa.string()),
    pa.field("path", pa.string()),
    pa.field("status", pa.int32()),
    pa.field("latency_ms", pa.float64()),
    pa.field("bytes", pa.int64()),
    pa.field("user_id", pa.string()),
    pa.field("ip", pa.string()),
    pa.field("user_agent", pa.string()),
    pa.field("key", pa.binary()),
    pa.field("raw", pa.binary()),
    pa.field("malformed_type", pa.string()),
    pa.field("expected_reason", pa.string()),
    pa.field("topic", pa.string()),
    pa.field("partition", pa.int32()),
    pa.field("offset", pa.int64()),
    pa.field("error", pa.string()),
])

_EVENT_FIELDS = ("event_id", "host", "method", "path", "status", "latency_ms", "bytes",
                 "user_id", "ip", "user_agent")


def delivery_columns(futures: list) -> tuple[list, list, list]:
    """(partition, offset, error) per kafka-python future; None where not applicable."""
    partitions, offsets, errors = [], [], []
    for future in futures:
        if future is None or not future.is_done:
            partitions.append(None)
            offsets.append(None)
            errors.append(None if future is None else "not completed")
        elif future.exception is None:
            partitions.append(future.value.partition)
            offsets.append(future.value.offset)
            errors.append(None)
        else:
            partitions.append(None)
            offsets.append(None)
            errors.append(f"{type(future.exception).__name__}: {future.exception}")
    return partitions, offsets, errors


def chunk_table(chunk: Chunk, first_seq: int, rows: int, topic: str | None,
                futures: list | None) -> pa.Table:
    """The first ``rows`` messages of ``chunk`` (fewer than all if sending stopped early)."""
    kind = chunk.kind[:rows]
    bad = kind == MALFORMED

    def col(name, type_):
        return pa.array(chunk.fields[name][:rows], type=type_, mask=bad if bad.any() else None)

    columns = {
        "seq": pa.array(np.arange(first_seq, first_seq + rows, dtype=np.int64)),
        "kind": pa.array(np.array(KINDS, dtype=object)[kind]),
        "ts": pa.array(chunk.ts_ms[:rows], type=pa.timestamp("ms", tz="UTC"),
                       mask=bad if bad.any() else None),
        "service": pa.array(chunk.fields["service"][:rows]),  # the key's service, always set
        "key": pa.array(chunk.keys[:rows], type=pa.binary()),
    }
    for name in _EVENT_FIELDS:
        columns[name] = col(name, SCHEMA.field(name).type)
    raw = [None] * rows
    mtype = [None] * rows
    reason = [None] * rows
    for row, variant in chunk.malformed_type.items():
        if row < rows:
            raw[row] = chunk.payloads[row]
            mtype[row] = variant
            reason[row] = chunk.expected_reason[row]
    columns["raw"] = pa.array(raw, type=pa.binary())
    columns["malformed_type"] = pa.array(mtype, type=pa.string())
    columns["expected_reason"] = pa.array(reason, type=pa.string())
    if futures is None:  # dry run: nothing was sent anywhere
        partitions = offsets = errors = [None] * rows
        topic = None
    else:
        partitions, offsets, errors = delivery_columns(futures[:rows])
    columns["topic"] = pa.array([topic] * rows, type=pa.string())
    columns["partition"] = pa.array(partitions, type=pa.int32())
    columns["offset"] = pa.array(offsets, type=pa.int64())
    columns["error"] = pa.array(errors, type=pa.string())
    return pa.table([columns[f.name] for f in SCHEMA], schema=SCHEMA)


class GroundTruthWriter:
    """Appends chunk tables to one Parquet file; row groups of about ``row_group`` rows."""

    def __init__(self, path: str | Path, row_group: int = 65_536):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self.path, SCHEMA, compression="zstd")
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self.row_group = row_group
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        if self._pending_rows >= self.row_group:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.concat_tables(self._pending),
                                     row_group_size=max(self._pending_rows, 1))
            self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        self._flush()
        self._writer.close()


def read_truth(path: str | Path) -> pa.Table:
    return pq.read_table(path)
