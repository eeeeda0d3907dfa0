"""Arrow schemas of the archive's Parquet files, derived from ``FIELDS``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lae.schema.fields import FIELDS, Field, Kind

if TYPE_CHECKING:
    import pyarrow as pa

# Kafka coordinates the archiver adds to every row (DESIGN §4: files are keyed by them).
KAFKA_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    # (name, arrow type name, nullable)
    ("topic", "string", False),
    ("partition", "int32", False),
    ("offset", "int64", False),
    # Kafka reports -1 when a message has no timestamp (old message formats): kept as null.
    ("kafka_ts", "timestamp_ms", True),
)


def _arrow_type(fd: Field) -> pa.DataType:
    import pyarrow as pa

    if fd.kind is Kind.TIMESTAMP:
        return pa.timestamp("us", tz="UTC")
    if fd.kind in (Kind.INT, Kind.VERSION):
        return pa.int32() if fd.bits == 32 else pa.int64()
    if fd.kind is Kind.NUMBER:
        return pa.float64()
    return pa.string()


def arrow_schema() -> pa.Schema:
    """The event columns, in FIELDS order, with FIELDS nullability."""
    import pyarrow as pa

    return pa.schema([pa.field(fd.name, _arrow_type(fd), nullable=fd.nullable) for fd in FIELDS])


def archive_arrow_schema() -> pa.Schema:
    """``arrow_schema()`` followed by the Kafka coordinate columns, as the archive stores them."""
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "timestamp_ms": pa.timestamp("ms", tz="UTC"),
    }
    kafka = [pa.field(name, types[t], nullable=n) for name, t, n in KAFKA_COLUMNS]
    return pa.schema(list(arrow_schema()) + kafka)
