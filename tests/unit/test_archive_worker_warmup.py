"""The archive forkserver's warm-up module (``lae.archive.worker_warmup``): after its import,
boto3's default session holds the S3 models a worker's client needs; a failure to warm up is
logged and never stops the import (an exception there would stop the forkserver).

Each case runs in a fresh interpreter, as the forkserver does: this process may already hold
a warmed default session."""

from __future__ import annotations

import os
import subprocess
import sys

CHECK = """
import boto3
import lae.archive.worker_warmup
session = boto3.DEFAULT_SESSION
cached = [] if session is None else session._session.get_component("data_loader")._cache
print(sorted(k[2] for k in cached if k[0] == "load_service_model" and k[1] == "s3"))
"""


def _run(**env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,  # noqa: S603 - fixed argv
                          timeout=120, env={**os.environ, **env}, check=False)


def test_import_loads_the_s3_models_into_the_default_session():
    done = _run()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['endpoint-rule-set-1', 'service-2']"


def test_a_failed_warmup_is_logged_and_the_import_goes_on():
    done = _run(LAE_S3_PORT="not-a-port")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert "could not preload boto3's S3 models" in done.stderr
    assert "LAE_S3_PORT must be an integer" in done.stderr
