"""Where archive objects live in the bucket: pure functions of Kafka coordinates and time.

Offsets in object names are the first and last offset of the rows in that file, both
inclusive, zero-padded to 20 digits (the width of the largest int64) so that a plain
lexicographic listing is also offset order. A planned range, by contrast, is half-open
``[start, end)`` like Kafka's own positions (``end`` = the next offset to read).
"""

from __future__ import annotations

from datetime import UTC, datetime

OFFSET_WIDTH = 20
MASTER_PREFIX = "master/logs/v1"
QUARANTINE_PREFIX = "quarantine/logs/v1"
MANIFEST_PREFIX = "manifests/archive"
# The Airflow Asset the archive DAG updates and the batch layer schedules on. The URI scheme is
# "x-s3", not "s3": an "s3://" Asset makes Airflow load the Amazon provider's URI normalizer,
# which imports boto3 at DAG parse time (0.5 s per parse, and forbidden by the DAG policy).
MASTER_ASSET_NAME = "lae_master_logs_v1"


def master_asset_uri(bucket: str) -> str:
    return f"x-s3://{bucket}/{MASTER_PREFIX}"


# Per-partition results waiting to be listed in a manifest (see lae.archive.manifest).
PENDING_PREFIX = f"{MANIFEST_PREFIX}/pending"


def file_name(topic: str, partition: int, first: int, last: int, suffix: str = ".parquet") -> str:
    if first > last:
        raise ValueError(f"first offset {first} > last offset {last}")
    return (f"{topic}+{partition}+{first:0{OFFSET_WIDTH}d}-{last:0{OFFSET_WIDTH}d}{suffix}")


def hour_bucket(ts: datetime) -> tuple[str, str]:
    """(``YYYY-MM-DD``, ``HH``) of an aware timestamp, in UTC."""
    utc = ts.astimezone(UTC)
    return utc.strftime("%Y-%m-%d"), f"{utc.hour:02d}"


def master_key(topic: str, partition: int, first: int, last: int, date: str, hour: str) -> str:
    return f"{MASTER_PREFIX}/date={date}/hour={hour}/{file_name(topic, partition, first, last)}"


def quarantine_date(kafka_ts_ms: int | None) -> str:
    # Rejected messages have no trustworthy event time: they are filed by arrival (Kafka) time.
    if kafka_ts_ms is None or kafka_ts_ms < 0:
        return "unknown"
    return datetime.fromtimestamp(kafka_ts_ms / 1000, UTC).strftime("%Y-%m-%d")


def quarantine_key(topic: str, partition: int, first: int, last: int, date: str) -> str:
    return f"{QUARANTINE_PREFIX}/date={date}/{file_name(topic, partition, first, last)}"


def manifest_key(run_id: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in run_id)
    return f"{MANIFEST_PREFIX}/{safe}.json"


def pending_key(topic: str, partition: int, start: int, end: int) -> str:
    # The range [start, end) of a plan, not a file's inclusive offsets.
    w = OFFSET_WIDTH
    return f"{PENDING_PREFIX}/{topic}+{partition}+{start:0{w}d}-{end:0{w}d}.json"


def parse_file_name(name: str) -> tuple[str, int, int, int]:
    """(topic, partition, first, last) from ``file_name``'s output (any directory, any suffix)."""
    base = name.rsplit("/", 1)[-1].split(".parquet")[0].split(".json")[0]
    topic_part, offsets = base.rsplit("+", 1)
    topic, partition = topic_part.rsplit("+", 1)
    first, last = offsets.split("-")
    return topic, int(partition), int(first), int(last)
