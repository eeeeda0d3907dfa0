"""Crash injection for the crash tests: ``LAE_ARCHIVE_CRASH_AT=<step>`` kills this process.

A real SIGKILL, not an exception: nothing in the archiver (no ``finally``, no ``except``, no
atexit) gets a chance to tidy up, which is what a node failure or the OOM killer does.
"""

from __future__ import annotations

import os
import signal

ENV = "LAE_ARCHIVE_CRASH_AT"
STEPS = ("before_upload", "mid_multipart", "after_upload", "after_commit")


def crash_point(step: str) -> None:
    if os.environ.get(ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)
