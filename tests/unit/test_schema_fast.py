"""The vectorised fast path agrees with ``validate``: what it accepts, ``validate`` accepts with
the same values; what it leaves, ``validate`` decides; the archive's split of a batch (valid
rows per hour, rejection reasons) is exactly the per-record path's."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from typing import NamedTuple

import pyarrow as pa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lae.archive.writer import Split, cut_files, encode, master_table
from lae.schema import Event, Rejection, to_json_bytes, validate
from lae.schema.fast import validate_batch
from lae.schema.strategies import valid_events

_SETTINGS = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_json_values = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)


def _spellings(event: Event) -> st.SearchStrategy[bytes]:
    """Ways a producer may write a valid event: canonical, keys as null, other orders and
    spacing, other time zones and fraction lengths, upper-case ids, escapes."""
    obj = json.loads(to_json_bytes(event))
    full = {name: obj.get(name) for name in Event._fields}
    variants = [
        st.just(to_json_bytes(event)),
        st.just(json.dumps(full, separators=(",", ":")).encode()),
        st.just(json.dumps(full).encode()),  # spaces
        st.just(json.dumps(dict(reversed(list(obj.items()))), separators=(",", ":")).encode()),
        st.just(json.dumps({**obj, "event_id": obj["event_id"].upper()},
                           separators=(",", ":")).encode()),
        st.just(json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode()),
        st.sampled_from(["+00:00", "-05:30", "z"]).map(
            lambda zone: json.dumps({**obj, "ts": obj["ts"][:-1] + zone},
                                    separators=(",", ":")).encode()),
        st.integers(0, 6).map(lambda k: json.dumps(
            {**obj, "ts": obj["ts"][:20 + k].rstrip(".") + "Z"}, separators=(",", ":")).encode()),
    ]
    return st.one_of(variants)


def _mutated(event: Event) -> st.SearchStrategy[bytes]:
    obj = json.loads(to_json_bytes(event))
    changes = st.dictionaries(st.sampled_from(Event._fields + ("x",)), _json_values,
                              min_size=1, max_size=2)
    return changes.map(lambda c: json.dumps({**obj, **c}, separators=(",", ":")).encode())


# Near misses the regex must not let through: each is one edit away from a valid message.
_NEAR_MISSES = [
    ("ts", "2021-02-29T00:00:00Z"), ("ts", "2020-02-30T00:00:00Z"), ("ts", "1969-12-31T23:59:59Z"),
    ("ts", "2100-01-01T00:00:00Z"), ("ts", "2024-02-29T00:00:00.1234567Z"),
    ("status", 600), ("status", 99), ("status", 200.0), ("status", True), ("bytes", -1),
    ("bytes", 2**63), ("latency_ms", -0.0), ("latency_ms", 1e308 * 10), ("user_id", ""),
    ("path", "/a?b"), ("path", "/a b"), ("host", "a b"), ("service", "A"), ("method", "get"),
    ("ip", "01.2.3.4"), ("ip", "1.2.3.4%eth0"), ("user_agent", "a\tb"), ("schema", 2),
]


def _messages() -> st.SearchStrategy[list[bytes]]:
    one = st.one_of(
        valid_events().flatmap(_spellings),
        valid_events().flatmap(_mutated),
        st.tuples(valid_events(), st.sampled_from(_NEAR_MISSES)).map(
            lambda t: json.dumps({**json.loads(to_json_bytes(t[0])), t[1][0]: t[1][1]},
                                 separators=(",", ":")).encode()),
        st.binary(max_size=64),
        valid_events().map(lambda e: to_json_bytes(e) + b" "),
        valid_events().map(lambda e: b"\xef\xbb\xbf" + to_json_bytes(e)),
        valid_events().map(lambda e: to_json_bytes(e).replace(b"}", b',"event_id":"x"}')),
    )
    return st.lists(one, min_size=1, max_size=40)


@_SETTINGS
@given(_messages())
@example([b'{"event_id":"00000000-0000-4000-8000-000000000001","ts":"2024-02-29T23:59:59.5Z",'
          b'"service":"s","host":"h","method":"GET","path":"/","status":200,"latency_ms":1e-05,'
          b'"bytes":0,"user_id":null,"ip":"::1","user_agent":""}'])
def test_fast_path_accepts_only_what_validate_accepts_with_the_same_values(msgs) -> None:
    ok, table = validate_batch(pa.array(msgs, type=pa.binary()))
    accepted = [m for m, good in zip(msgs, ok, strict=True) if good]
    assert table.num_rows == len(accepted)
    for msg, row in zip(accepted, table.to_pylist(), strict=True):
        slow = validate(msg)
        assert isinstance(slow, Event), (msg, slow)
        assert tuple(row.values()) == tuple(slow), msg
        assert [type(v) for v in row.values()] == [type(v) for v in slow], msg


_TRICKY = (b'{"event_id":"00000000-0000-4000-8000-000000000001","ts":"2024-02-29T23:59:59Z",'
           b'"service":"s","host":"h","method":"GET","path":"/a/{id}","status":200,'
           b'"latency_ms":1,"bytes":7}',
           b'{"event_id":"00000000-0000-4000-8000-000000000002","ts":"2024-02-29T23:59:59Z",'
           b'"service":"s","host":"h","method":"GET","path":"/","status":200,"latency_ms":1,'
           b'"bytes":7,"user_id":"ip:,null}","ip":null,"user_agent":"a,b:{c}","schema":null}')


@_SETTINGS
@given(_messages())
@example(list(_TRICKY))
def test_cutting_at_separators_gives_what_the_capture_groups_give(msgs) -> None:
    # The fast path cuts fields out of the text instead of capturing them with pattern()'s
    # groups; the groups are the reference (each field's value, and whether an optional one
    # was a string), so the cut must agree with them row for row.
    import pyarrow.compute as pc

    from lae.schema.fast import _fields, pattern

    values = pa.array(msgs, type=pa.binary())
    ok, cols, is_set = _fields(values)
    groups = pc.extract_regex(values, pattern())
    assert ok.tolist() == groups.is_valid().to_pylist()
    groups = groups.filter(groups.is_valid())
    for name, col in cols.items():
        assert col.to_pylist() == groups.field(name).cast(pa.string()).to_pylist(), name
    for name, flags in is_set.items():
        captured = pc.equal(groups.field(f"{name}_set").cast(pa.string()), '"')
        assert flags.to_pylist() == captured.to_pylist(), name


def test_generated_traffic_takes_the_fast_path() -> None:
    # The fast path pays off only if the producers' spelling is the common case: every
    # well-formed message the generator (modelled on the example API's emitter) sends hits it,
    # and no malformed one does.
    import numpy as np

    from lae.generator.model import KINDS, Mix, TrafficModel

    chunk = TrafficModel(7, mix=Mix(malformed=0.05)).draw(
        1_764_000_000_000 + np.arange(5000, dtype=np.int64) * 1000)
    ok, _ = validate_batch(pa.array(chunk.payloads, type=pa.binary()))
    malformed = chunk.kind == KINDS.index("malformed")
    assert malformed.any() and not ok[malformed].any()
    assert ok[~malformed].all()


class Rec(NamedTuple):
    offset: int
    value: bytes | None
    key: bytes | None
    timestamp: int | None


def _reference(records) -> tuple[dict, dict]:
    """What the per-record path gives: hour → [(offset, Event)], date → [(offset, reason)]."""
    from lae.archive.layout import quarantine_date

    valid, rejected = defaultdict(list), defaultdict(list)
    for r in records:
        result = validate(r.value if r.value is not None else b"")
        if isinstance(result, Rejection):
            rejected[quarantine_date(r.timestamp)].append((r.offset, result.reason,
                                                           result.detail))
        else:
            ts = result.ts
            valid[(ts.year, ts.month, ts.day, ts.hour)].append((r.offset, result))
    return valid, rejected


@_SETTINGS
@given(_messages(), st.integers(1, 5), st.randoms(use_true_random=False))
def test_split_equals_the_per_record_path(msgs, pieces, rng: random.Random) -> None:
    records = [Rec(1000 + i, m if rng.random() > 0.05 else None, b"k",
                   rng.choice([None, -1, 1_764_000_000_000 + i])) for i, m in enumerate(msgs)]
    split = Split()
    cuts = sorted(rng.sample(range(1, len(records)), min(pieces, len(records) - 1))
                  if len(records) > 1 else [])
    for a, b in zip([0, *cuts], [*cuts, len(records)], strict=True):
        split.add(records[a:b])
    valid, rejected = _reference(records)
    assert set(split.valid) == set(valid)
    for hour, rows in valid.items():
        table = split.valid[hour].table("logs.raw", 3)
        assert table["offset"].to_pylist() == [o for o, _ in rows]
        got = [tuple(r.values())[:len(Event._fields)] for r in table.to_pylist()]
        assert got == [tuple(e) for _, e in rows]
        # Byte for byte the file the per-record writer made before the fast path existed.
        kafka_ts = {r.offset: r.timestamp if r.timestamp is not None and r.timestamp >= 0
                    else None for r in records}
        before = master_table([e for _, e in rows], "logs.raw", 3, [o for o, _ in rows],
                              [kafka_ts[o] for o, _ in rows])
        assert encode(table) == encode(before)
    assert {d: [(o, q.reason, q.detail) for o, q in zip(b.offsets, b.events, strict=True)]
            for d, b in split.rejected.items()} == dict(rejected)
    assert split.raw_bytes == sum(len(r.value or b"") for r in records)
    assert split.fast_rows + split.slow_rows == len(records)
    list(cut_files(split, "logs.raw", 3, 7))  # cuts without error
