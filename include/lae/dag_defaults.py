"""default_args shared by every LAE DAG (the integrity tests check owner and retries).

Retries back off exponentially because the usual failure is a service that is briefly
unavailable (a broker election, Cassandra compacting, an S3 throttle), not a bug.
"""

from __future__ import annotations

from datetime import timedelta

OWNER = "lae"

DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}


def default_args(**overrides) -> dict:
    """A fresh copy, so one DAG's overrides never leak into another's."""
    return {**DEFAULT_ARGS, **overrides}
