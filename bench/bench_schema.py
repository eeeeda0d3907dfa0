"""Throughput of lae.schema.validate (the archiver's hot path) and parse_combined, single core.

Run: .venv/bin/python bench/bench_schema.py [N]

Times are CPU time of this process (time.process_time), so other load on the machine does
not inflate them much; wall-clock throughput on an idle core is about the same.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

from lae.schema import Event, Rejection, parse_combined, to_json_bytes, validate


def _messages(n: int) -> list[bytes]:
    base = datetime(2026, 11, 26, tzinfo=UTC)
    return [
        to_json_bytes(
            Event(
                event_id=str(uuid.uuid4()),
                ts=base + timedelta(milliseconds=i),
                service="orders",
                host=f"api-{i % 7}",
                method=("GET", "POST", "PUT")[i % 3],
                path="/v1/orders/{id}",
                status=(200, 201, 404, 500)[i % 4],
                latency_ms=12.5 + i % 100,
                bytes=512 + i,
                user_id=f"user-{i % 1000}" if i % 5 else None,
                ip=f"10.0.{i % 256}.{i % 200}",
                user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
            )
        )
        for i in range(n)
    ]


def _rate(label: str, n: int, seconds: float) -> None:
    print(f"{label}: {n / seconds:,.0f} events/s ({seconds / n * 1e6:.2f} µs/event)")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    messages = _messages(n)
    print(f"{n} messages, mean {sum(map(len, messages)) / n:.0f} bytes")
    # Reference point for the machine's current speed: stdlib json alone, no checks.
    start = time.process_time()
    for m in messages:
        json.loads(m)
    _rate("json.loads only (reference)", n, time.process_time() - start)

    # Batches of 10k, as the archiver holds one poll's worth of events before writing Parquet
    # (holding all N at once would mostly measure the garbage collector walking them).
    batch = 10_000
    for _ in range(3):
        start = time.process_time()
        for i in range(0, n, batch):
            results = [validate(m) for m in messages[i : i + batch]]
            assert not any(isinstance(r, Rejection) for r in results)  # noqa: S101
        _rate("validate (valid JSON)", n, time.process_time() - start)

    _fast_path(messages, batch)

    bad = [m.replace(b'"status":', b'"status":"x",') for m in messages[: n // 4]]
    start = time.process_time()
    for m in bad:
        validate(m)
    _rate("validate (rejected)", len(bad), time.process_time() - start)

    lines = [
        f'10.0.0.{i % 256} - - [26/Nov/2026:10:00:{i % 60:02d} +0100] "GET /v1/orders/{i}?x=1 '
        f'HTTP/1.1" 200 {i} "-" "curl/8.5" 0.0{i % 10}1'
        for i in range(n // 4)
    ]
    start = time.process_time()
    for line in lines:
        parse_combined(line, "orders", "web-1")
    _rate("parse_combined", len(lines), time.process_time() - start)


def _fast_path(messages: list[bytes], batch: int) -> None:
    """The archiver's vectorised path (lae.schema.fast), and how it finds the fields' text:
    cutting the matched text at its separators (now) against RE2 capture groups (before,
    ``extract_regex`` with ``pattern()``), one thread, best of 3."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from lae.schema.fast import _fields, pattern, validate_batch

    arrays = [pa.array(messages[i : i + batch], type=pa.binary())
              for i in range(0, len(messages), batch)]
    for label, run in (
        ("fast path: validate_batch (all cores)", validate_batch),
        ("  fields by capture groups (before)", lambda a: pc.extract_regex(a, pattern())),
        ("  fields by DFA match + cut (now)", _fields),
    ):
        best = min(_cpu(lambda run=run: [run(a) for a in arrays]) for _ in range(3))
        _rate(label, len(messages), best)


def _cpu(work) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


if __name__ == "__main__":
    main()
