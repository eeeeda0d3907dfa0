"""Putting one object in S3, with multipart above a configurable size.

Multipart is done by hand (create / upload_part / complete) rather than with
``upload_fileobj``: the parts are sequential and visible, so the crash tests can kill the
process between two parts, and an exception aborts the upload instead of leaving parts behind.
A SIGKILL mid-upload still leaves an incomplete upload (invisible to readers, never a partial
object); ``abort_stale_uploads`` clears those for a key before it is written again, and a
bucket lifecycle rule (AbortIncompleteMultipartUpload) is the backstop on real S3.
An object is durable once ``put_object``/``complete_multipart_upload`` returns.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from lae.archive.crash import crash_point

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's minimum for every part but the last


@dataclass(frozen=True)
class UploadConfig:
    multipart_threshold: int = 64 * 1024 * 1024
    part_size: int = 16 * 1024 * 1024


def abort_stale_uploads(client, bucket: str, key: str) -> int:
    try:
        resp = client.list_multipart_uploads(Bucket=bucket, Prefix=key)
    except Exception:  # noqa: BLE001 - not every S3-compatible store lists uploads
        return 0
    n = 0
    for up in resp.get("Uploads", []):
        if up["Key"] == key:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=up["UploadId"])
            n += 1
    return n


def put(client, bucket: str, key: str, data: bytes, config: UploadConfig) -> dict:
    """Upload ``data`` to ``key``; returns {"key", "bytes", "sha256", "parts"}."""
    info = {"key": key, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if len(data) < config.multipart_threshold:
        client.put_object(Bucket=bucket, Key=key, Body=data)
        return {**info, "parts": 1}
    abort_stale_uploads(client, bucket, key)
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    try:
        parts = []
        # S3 (and s3proxy) refuse parts under 5 MiB except the last: a smaller setting would
        # only turn into EntityTooSmall at completion time.
        size = max(MIN_PART_SIZE, config.part_size)
        for number, i in enumerate(range(0, len(data), size), start=1):
            resp = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id,
                                      PartNumber=number, Body=data[i:i + size])
            parts.append({"PartNumber": number, "ETag": resp["ETag"]})
            crash_point("mid_multipart")
        client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                         MultipartUpload={"Parts": parts})
    except BaseException:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    return {**info, "parts": len(parts)}
