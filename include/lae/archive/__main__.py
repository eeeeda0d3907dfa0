"""``python -m lae.archive``: one archive run against the configured stack (prints the manifest).

Used by the crash tests (run in a subprocess, killed by ``LAE_ARCHIVE_CRASH_AT``) and by hand.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime

from lae.archive.plan import DEFAULT_MAX_RANGE, DEFAULT_MAX_ROWS, GROUP_ID
from lae.archive.run import RunOptions, run_archive
from lae.archive.upload import UploadConfig


def main(argv: list[str] | None = None) -> int:
    from lae.config import get_settings

    p = argparse.ArgumentParser(prog="python -m lae.archive", description=__doc__.splitlines()[0])
    p.add_argument("--run-id", default=None)
    p.add_argument("--topic")
    p.add_argument("--group-id", default=GROUP_ID)
    p.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS)
    p.add_argument("--max-range", type=int, default=DEFAULT_MAX_RANGE)
    p.add_argument("--multipart-threshold", type=int, default=UploadConfig.multipart_threshold)
    p.add_argument("--part-size", type=int, default=UploadConfig.part_size)
    p.add_argument("--lease-ttl", type=int, default=600)
    p.add_argument("--workers", type=int, default=1,
                   help="archive partitions in this many processes (the DAG maps one task "
                        "per partition instead)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_id = args.run_id or "manual__" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    opts = RunOptions(run_id=run_id, topic=args.topic, group_id=args.group_id,
                      max_rows=args.max_rows, max_range=args.max_range,
                      upload=UploadConfig(args.multipart_threshold, args.part_size),
                      lease_ttl_s=args.lease_ttl, workers=args.workers)
    manifest = run_archive(get_settings(), opts)
    json.dump(manifest, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
