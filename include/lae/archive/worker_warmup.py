"""Imported by the archive's forkserver (``lae.archive.run.WORKER_MODULES``): loads boto3's S3
models into its default session, so each worker forked from the server makes its S3 client
in ~0.01 s instead of ~0.3-0.5 s (botocore parses the S3 service model and endpoint rules,
several MB of JSON, on a session's first client; measured in the workers of a 2-worker run).

Only models are loaded: making a client opens no connection, so a forked worker inherits no
socket. A failure here costs the workers that time and nothing else, so it is logged, not
raised (an exception in a preloaded module would stop the forkserver).
"""

from __future__ import annotations

import logging


def warm_s3_models() -> None:
    try:
        from lae.s3 import s3_client

        s3_client()
    except Exception:  # noqa: BLE001 - an optimisation: the workers make their own client
        logging.getLogger(__name__).warning("could not preload boto3's S3 models",
                                            exc_info=True)


warm_s3_models()
