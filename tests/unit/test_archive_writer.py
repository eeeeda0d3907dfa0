"""File cutting: same records and plan -> same keys and the same bytes; rows by event time."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import pyarrow.parquet as pq

from lae.archive.writer import Split, cut_files
from lae.schema import archive_arrow_schema


class Rec(NamedTuple):  # the ConsumerRecord fields the writer reads
    offset: int
    value: bytes
    key: bytes | None
    timestamp: int


BASE = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _event(i: int, ts: datetime) -> bytes:
    return json.dumps({
        "event_id": f"00000000-0000-4000-8000-{i:012d}", "ts": ts.isoformat(),
        "service": "orders", "host": "h1", "method": "GET", "path": "/v1/orders/{id}",
        "status": 200, "latency_ms": 1.5, "bytes": 10,
    }).encode()


def _records(n: int = 50) -> list[Rec]:
    out = []
    for i in range(n):
        ts = BASE + timedelta(minutes=i * 3)  # spans several hours
        if i % 10 == 7:
            ts -= timedelta(days=1)  # a late event: belongs to the previous day
        value = b"{not json" if i % 17 == 3 else _event(i, ts)
        out.append(Rec(100 + i, value, b"orders", int(BASE.timestamp() * 1000) + i))
    return out


def _cut(records, max_rows=4):
    split = Split()
    split.add(records[:20])
    split.add(records[20:])  # batches arrive in pieces; the result must not depend on it
    return list(cut_files(split, "logs.raw", 2, max_rows))


def test_same_input_same_keys_and_bytes():
    a, b = _cut(_records()), _cut(_records())
    assert [(f.key, f.data) for f in a] == [(f.key, f.data) for f in b]
    split = Split()
    split.add(_records())
    c = list(cut_files(split, "logs.raw", 2, 4))
    assert [(f.key, f.data) for f in c] == [(f.key, f.data) for f in a]


def test_files_hold_every_record_once_in_its_event_hour():
    records = _records()
    files = _cut(records)
    master = [f for f in files if f.kind == "master"]
    quarantine = [f for f in files if f.kind == "quarantine"]
    seen = []
    for f in master:
        t = pq.read_table(io.BytesIO(f.data))
        assert t.schema.equals(archive_arrow_schema())
        assert t.num_rows == f.rows <= 4
        offsets = t["offset"].to_pylist()
        assert offsets == sorted(offsets) and (f.first, f.last) == (offsets[0], offsets[-1])
        for ts in t["ts"].to_pylist():
            assert f"date={ts:%Y-%m-%d}/hour={ts:%H}/" in f.key
        seen += offsets
    bad = []
    for f in quarantine:
        t = pq.read_table(io.BytesIO(f.data))
        assert set(t["reason"].to_pylist()) == {"invalid_json"} == set(f.reasons)
        assert t["raw"].to_pylist() == [b"{not json"] * t.num_rows
        bad += t["offset"].to_pylist()
    assert sorted(seen + bad) == [r.offset for r in records]
    assert len(bad) == sum(1 for i in range(50) if i % 17 == 3)
    assert any("date=2026-11-24" in f.key for f in master), "late events in their own day"


def test_max_rows_changes_the_cut():
    assert len(_cut(_records(), max_rows=1000)) < len(_cut(_records(), max_rows=2))


def test_master_files_dictionary_encode_and_index_only_the_chosen_columns():
    from lae.archive.writer import MASTER_DICTIONARY_COLUMNS, MASTER_UNFILTERED_TEXT

    master = [f for f in _cut(_records(), max_rows=50) if f.kind == "master"]
    assert master
    for f in master:
        meta = pq.ParquetFile(io.BytesIO(f.data)).metadata
        assert meta.num_row_groups == 1
        group = meta.row_group(0)
        for i in range(group.num_columns):
            column = group.column(i)
            name = column.path_in_schema
            assert column.compression == "ZSTD", name
            assert column.has_dictionary_page == (name in MASTER_DICTIONARY_COLUMNS), name
            assert column.is_stats_set == (name not in MASTER_UNFILTERED_TEXT), name
