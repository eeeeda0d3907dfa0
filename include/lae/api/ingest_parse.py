"""Split a POST /v1/logs body into events and validate each one with lae.schema.

Pure functions (no I/O), so the three input shapes are unit-tested without a server:
a JSON array of events, NDJSON (one event per line) and text lines in Apache/Nginx combined
format. A body that cannot be split at all (a JSON array that does not parse) is the client's
error and answered 400; everything that can be split is judged per event, and each rejected
event keeps its raw bytes and reason for logs.dlq.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from lae import schema

JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl",
                          "application/x-jsonlines"})
TEXT_TYPES = frozenset({"text/plain"})
SUPPORTED_TYPES = JSON_TYPES | NDJSON_TYPES | TEXT_TYPES


class BadBody(ValueError):
    """The body as a whole is unusable (not per event): answered 400."""


@dataclass
class Batch:
    # (key, value) per valid event: key = service, value = the event's canonical JSON.
    records: list[tuple[bytes, bytes]] = field(default_factory=list)
    # (raw bytes, reason) per rejected event, for logs.dlq.
    rejected: list[tuple[bytes, str]] = field(default_factory=list)

    def reasons(self) -> dict[str, int]:
        return dict(Counter(reason for _, reason in self.rejected))

    def summary(self) -> dict:
        return {"accepted": len(self.records), "rejected": len(self.rejected),
                "reasons": self.reasons()}


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _add(batch: Batch, raw: bytes, result) -> None:
    if isinstance(result, schema.Rejection):
        batch.rejected.append((raw, result.reason))
    else:
        batch.records.append((result.service.encode(), schema.to_json_bytes(result)))


def _lines(body: bytes) -> list[bytes]:
    # splitlines() would also split on \x0b, \x1c.. inside a value; only \n ends a record.
    return [line.rstrip(b"\r") for line in body.split(b"\n") if line.strip()]


def parse_json_array(body: bytes) -> Batch:
    try:
        items = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadBody(f"body is not valid JSON: {exc}") from None
    if isinstance(items, dict):
        items = [items]  # one event alone is a batch of one; shippers do send that
    if not isinstance(items, list):
        raise BadBody("a JSON body must be an array of events (or one event object)")
    batch = Batch()
    for item in items:
        # The element is re-encoded so that validation sees exactly what an event on the wire
        # is (and its too_large rule applies per event); that re-encoding is also what a
        # rejected element keeps as its raw bytes in logs.dlq.
        text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone "\udXXX" escape: not representable in UTF-8
            batch.rejected.append((json.dumps(item).encode(), "invalid_json"))
            continue
        _add(batch, raw, schema.validate(raw))
    return batch


def parse_ndjson(body: bytes) -> Batch:
    batch = Batch()
    for line in _lines(body):
        _add(batch, line, schema.validate(line))
    return batch


def parse_combined_lines(body: bytes, service: str, host: str) -> Batch:
    batch = Batch()
    for line in _lines(body):
        # Bytes, not str: parse_combined decodes strictly and rejects invalid_utf8 itself.
        _add(batch, line, schema.parse_combined(line, service, host))
    return batch


def parse_body(body: bytes, content_type: str | None, service: str | None = None,
               host: str | None = None) -> Batch:
    kind = media_type(content_type)
    if kind in JSON_TYPES:
        return parse_json_array(body)
    if kind in NDJSON_TYPES:
        return parse_ndjson(body)
    if kind in TEXT_TYPES:
        if not service or not host:
            raise BadBody("text/plain lines need a service and a host "
                          "(query ?service=&host= or headers X-LAE-Service / X-LAE-Host)")
        return parse_combined_lines(body, service, host)
    raise ValueError(f"unsupported media type {kind!r}")
