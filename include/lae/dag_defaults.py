"""default_args shared by every LAE DAG (the integrity tests check owner, retries, alerting).

Retries back off exponentially because the usual failure is a service that is briefly
unavailable (a broker election, Cassandra compacting, an S3 throttle), not a bug.

Alerting: a task that has used up its retries pages (``on_failure_callback``, critical); each
failed attempt before that is recorded at warning severity (``on_retry_callback``), which by
default reaches only the task log and the alerts file, so a flapping service is visible on
the health view without paging anyone for a failure the retry fixes.
"""

from __future__ import annotations

from datetime import timedelta

from lae.alerts.notifier import LaeNotifier

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
    return {
        **DEFAULT_ARGS,
        "on_failure_callback": LaeNotifier(kind="task_failed", severity="critical"),
        "on_retry_callback": LaeNotifier(kind="task_retry", severity="warning"),
        **overrides,
    }
