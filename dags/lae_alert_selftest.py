"""
### lae_alert_selftest

Proves alerting end to end: trigger it with **fail** ticked (conf `{"fail": true}`) and its one
task fails on purpose on every attempt. Each failed attempt before the last is recorded at
warning severity; the last one sends the critical alert through every configured channel
(the `lae_alerts_webhook` / `lae_alerts_smtp` connections), the task log and the local
alerts file (`<state dir>/alerts.jsonl`).

Triggered without conf it succeeds and sends nothing. Never scheduled; retries are seconds
apart so a self-test finishes in well under a minute.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, Param, task

from lae.dag_defaults import default_args
from lae.tags import Tag


class AlertSelfTestError(RuntimeError):
    """Raised on purpose; its name in an alert says the failure is the self-test's."""


@task
def fail_on_request(params: dict | None = None) -> str:
    if params and params.get("fail"):
        raise AlertSelfTestError("failing on purpose: lae_alert_selftest triggered with fail=true")
    return "not asked to fail"


with DAG(
    dag_id="lae_alert_selftest",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retry_delay=timedelta(seconds=2)),
    params={"fail": Param(False, type="boolean",
                          description="Fail the task on every attempt to test alerting")},
    tags=[Tag.OPS, Tag.HEALTH],
):
    fail_on_request()
