"""One way to get an S3 client, pointed at the configured endpoint (local S3Proxy by default).

Path-style addressing because a local endpoint has no per-bucket DNS names. Checksums only
when an operation requires them: botocore >= 1.36 otherwise sends CRC32 trailers with
aws-chunked bodies by default, which S3-compatible stores (S3Proxy among them) do not all accept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lae.config import Settings, get_settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client  # pragma: no cover - typing only, not installed


def s3_client(settings: Settings | None = None) -> S3Client:
    import boto3
    from botocore.config import Config

    s = settings or get_settings()
    return boto3.client(
        "s3",
        endpoint_url=s.s3_endpoint,
        region_name=s.s3_region,
        aws_access_key_id=s.s3_access_key,
        aws_secret_access_key=s.s3_secret_key,
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        ),
    )
