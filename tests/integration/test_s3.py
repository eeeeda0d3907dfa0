"""The local S3: put/list/get through boto3, objects kept across down/up."""

from __future__ import annotations

import uuid

import pytest

from lae.s3 import s3_client
from lae.stack.process import port_open

pytestmark = pytest.mark.integration


def test_bucket_is_provisioned(s3_service, settings):
    names = [b["Name"] for b in s3_client(settings).list_buckets()["Buckets"]]
    assert settings.bucket in names


def test_put_list_get(s3_service, settings):
    client = s3_client(settings)
    prefix = f"tests/{uuid.uuid4().hex}/"
    objects = {f"{prefix}a.json": b'{"a": 1}', f"{prefix}sub/b.bin": bytes(range(256)) * 1024}
    for key, body in objects.items():
        client.put_object(Bucket=settings.bucket, Key=key, Body=body)

    listed = client.list_objects_v2(Bucket=settings.bucket, Prefix=prefix)
    assert {o["Key"]: o["Size"] for o in listed["Contents"]} == {
        k: len(v) for k, v in objects.items()
    }
    for key, body in objects.items():
        assert client.get_object(Bucket=settings.bucket, Key=key)["Body"].read() == body


def test_object_survives_down_up(s3_service, settings):
    key = f"tests/restart/{uuid.uuid4().hex}.txt"
    s3_client(settings).put_object(Bucket=settings.bucket, Key=key, Body=b"still here")

    assert s3_service.down()
    assert not port_open(settings.host, settings.s3_port)
    s3_service.up()

    body = s3_client(settings).get_object(Bucket=settings.bucket, Key=key)["Body"].read()
    assert body == b"still here"
