"""The archiver: Kafka ``logs.raw`` → the immutable S3 master dataset, exactly once.

Modules, in the order a run uses them: ``plan`` (which offsets, fixed up front and stored in
the consumer group's commit metadata), ``retention`` (fail rather than archive around a hole),
``lease`` (one writer per partition), ``reader`` (exactly the planned range), ``writer`` (validate,
cut and encode Parquet deterministically), ``layout`` (object keys), ``upload`` (put /
multipart), ``archiver`` (the per-partition sequence), ``manifest`` (what a run made durable),
``run`` (a whole run without Airflow; ``python -m lae.archive``).

**Exactly once** comes from three rules: a partition's range ``[start, end)`` is stored with
the committed offset before any data is read, so every re-run reads the same range; files
are a pure function of that range (same keys, same bytes); offsets are committed only after
every object of the range is in S3. A crash at any point therefore leaves either nothing
committed (the re-run overwrites the same keys with the same bytes) or everything.

**Dedup rule**: the master dataset keeps raw facts *as they arrived*, one row per Kafka
message, with its coordinates (topic, partition, offset, kafka_ts). A producer retry or a
client re-send can put the same ``event_id`` on the topic twice; both copies are archived
(they are different messages at different offsets). The batch layer removes duplicates by
``event_id`` when it reads the master dataset (keep the lowest (partition, offset), i.e. the
first arrival). So the archive never drops anything, and exactly-once here means "once per
Kafka offset", not "once per event_id".
"""

from lae.archive.archiver import archive_partition
from lae.archive.layout import master_key, quarantine_key
from lae.archive.manifest import build_manifest, write_manifest
from lae.archive.plan import GROUP_ID, PartitionPlan, plan_partitions
from lae.archive.retention import RetentionError, check_retention
from lae.archive.run import RunOptions, run_archive

__all__ = [
    "GROUP_ID",
    "PartitionPlan",
    "RetentionError",
    "RunOptions",
    "archive_partition",
    "build_manifest",
    "check_retention",
    "master_key",
    "plan_partitions",
    "quarantine_key",
    "run_archive",
    "write_manifest",
]
