"""Run manifests: what one archive run made durable, and which event dates it touched.

Each archived partition range first leaves a *pending result* in S3 (before its offsets are
committed). The manifest step gathers every pending result whose range is committed, writes
``manifests/archive/<run-id>.json`` and then deletes those pending results. So a run that
crashed between committing and writing its manifest is not forgotten: the next run's manifest
lists its ranges too (``recovered_from`` = the crashed run), and the dates it touched still
reach the batch layer. A crash after the manifest and before the clean-up lists a range in two
manifests, which is harmless (recomputing a date twice is idempotent). A pending result whose
range is not committed yet belongs to a run still in flight (or one that will re-run the same
plan) and is left alone.
"""

from __future__ import annotations

import json
from collections import Counter

from lae.archive.layout import PENDING_PREFIX, manifest_key, pending_key

MANIFEST_VERSION = 1


def put_pending(client, bucket: str, result: dict) -> str:
    key = pending_key(result["topic"], result["partition"], result["start"], result["end"])
    client.put_object(Bucket=bucket, Key=key, Body=_dumps(result).encode())
    return key


def list_pending(client, bucket: str, topic: str | None = None) -> list[tuple[str, dict]]:
    out = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=PENDING_PREFIX + "/"):
        for obj in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            result = json.loads(body)
            if topic is None or result["topic"] == topic:
                out.append((obj["Key"], result))
    return out


def build_manifest(run_id: str, results: list[dict], skipped: list[dict] | None = None) -> dict:
    """The manifest document for ``results`` (pure; ordered so equal inputs give equal JSON)."""
    results = sorted(results, key=lambda r: (r["topic"], r["partition"], r["start"]))
    dates: Counter[str] = Counter()
    quarantine_reasons: Counter[str] = Counter()
    partitions, files, quarantine_files = [], [], []
    for r in results:
        dates.update(r["dates"])
        quarantine_reasons.update(r["quarantine_reasons"])
        entry = {k: r[k] for k in ("topic", "partition", "start", "end", "valid", "quarantined",
                                   "last_offset")}
        if r.get("run_id") != run_id:
            entry["recovered_from"] = r.get("run_id")
        partitions.append(entry)
        files += r["files"]
        quarantine_files += r["quarantine_files"]
    return {
        "version": MANIFEST_VERSION,
        "run_id": run_id,
        "offset_convention": "partition ranges are [start, end); file names carry the first "
                             "and last offset of their rows, inclusive",
        "partitions": partitions,
        "skipped": sorted(skipped or [], key=lambda s: (s["topic"], s["partition"])),
        "files": files,
        "quarantine_files": quarantine_files,
        "totals": {
            "valid": sum(r["valid"] for r in results),
            "quarantined": sum(r["quarantined"] for r in results),
            "files": len(files),
            "quarantine_files": len(quarantine_files),
            "bytes": sum(f["bytes"] for f in files + quarantine_files),
        },
        "quarantine_reasons": dict(sorted(quarantine_reasons.items())),
        "dates": dict(sorted(dates.items())),
    }


def write_manifest(client, bucket: str, run_id: str, committed: dict[tuple[str, int], int],
                   skipped: list[dict] | None = None, topic: str | None = None) -> dict:
    """Gather committed pending results, write the manifest, then drop those pending results.

    ``committed`` maps (topic, partition) to the group's committed offset.
    """
    done = [(key, r) for key, r in list_pending(client, bucket, topic)
            if committed.get((r["topic"], r["partition"]), -1) >= r["end"]]
    manifest = build_manifest(run_id, [r for _, r in done], skipped)
    key = manifest_key(run_id)
    client.put_object(Bucket=bucket, Key=key, Body=_dumps(manifest).encode(),
                      ContentType="application/json")
    for pkey, _ in done:
        client.delete_object(Bucket=bucket, Key=pkey)
    manifest["key"] = key
    return manifest


def _dumps(doc: dict) -> str:
    return json.dumps(doc, sort_keys=True, indent=1)
