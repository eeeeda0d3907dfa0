"""Deadline alerts (Airflow 3 ``DeadlineAlert``): a run that has not finished by its deadline.

``batch_recompute`` must have published yesterday by 06:00 UTC. Its scheduled run for day D
has the logical date D 02:00 and starts 24 h later, at D+1 02:00, so "06:00 UTC of the day
the run happens" is the logical date + 28 h: ``DeadlineReference.DAGRUN_LOGICAL_DATE`` with
``RUN_DAY_0600_AFTER_LOGICAL_DATE``. Not ``DAGRUN_QUEUED_AT`` + 4 h: a run the scheduler
queues late would move its deadline with it, and a backfill queues all its days at once.

The scheduler evaluates the deadline when it creates a run, and when it passes before the run
succeeded it hands ``deadline_missed`` to the triggerer (an ``AsyncCallback``), which sends it
through the same path as every other LAE alert (lae.alerts: log, alerts file, webhook, email).

A backfill of old days (or a manual run given a past logical date) creates runs whose deadline
has already passed; the triggerer still calls back for them. Those are recorded at *info*
severity (log and alerts file only): no one is late for a day recomputed weeks afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from lae.alerts.channels import SMTP_CONN_ID, WEBHOOK_CONN_ID, configured_channels
from lae.alerts.message import Alert

log = logging.getLogger("lae.alerts")

RUN_DAY_0600_AFTER_LOGICAL_DATE = timedelta(hours=28)


def _as_datetime(value: Any) -> datetime | None:
    """The context carries datetimes as JSON strings (the run) or datetimes (the deadline)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def deadline_alert(context: dict[str, Any], base_url: str = "") -> Alert:
    """The Alert for a missed deadline, from the context the scheduler gives the callback:
    ``{"dag_run": <the run as the REST API shows it>, "deadline": {"id", "deadline_time"}}``."""
    run = context.get("dag_run") or {}
    deadline_time = _as_datetime((context.get("deadline") or {}).get("deadline_time"))
    queued_at = _as_datetime(run.get("queued_at") or run.get("run_after"))
    dag_id, run_id = run.get("dag_id"), run.get("dag_run_id")
    # Already past when the run was queued: a backfill or a late manual run, not lateness.
    stale = deadline_time is not None and queued_at is not None and deadline_time <= queued_at
    logical = _as_datetime(run.get("logical_date"))
    day = (run.get("conf") or {}).get("day") or (logical.date().isoformat() if logical else None)
    details = {
        "Deadline": deadline_time.astimezone(UTC).isoformat() if deadline_time else None,
        "Day": day,
        "Run type": run.get("run_type"),
        "Run state": run.get("state"),
    }
    if stale:
        details["Note"] = "deadline had passed before the run was queued (backfill or late run)"
    base_url = base_url.rstrip("/")
    return Alert(
        kind="deadline_missed",
        title=f"Deadline missed: {dag_id} has not finished" + (f" day {day}" if day else ""),
        severity="info" if stale else "critical",
        dag_id=dag_id,
        run_id=run_id,
        log_url=f"{base_url}/dags/{dag_id}/runs/{run_id}" if base_url and run_id else None,
        details={k: v for k, v in details.items() if v},
    )


async def _connection_or_none(conn_id: str) -> Any | None:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return await BaseHook.aget_connection(conn_id)
    except AirflowNotFoundException:
        return None


async def deadline_missed(context: dict[str, Any] | None = None, **_: Any) -> str:
    """``AsyncCallback`` target: runs in the triggerer's event loop.

    Connections are read with the async API (a blocking lookup inside the triggerer's loop is
    what the task SDK forbids), then the blocking sends run in a worker thread.
    """
    from airflow.configuration import conf

    from lae.alerts.channels import deliver
    from lae.alerts.notifier import alerts_file
    from lae.config import get_settings

    alert = deadline_alert(context or {}, conf.get("api", "base_url", fallback=""))
    found = {cid: await _connection_or_none(cid) for cid in (WEBHOOK_CONN_ID, SMTP_CONN_ID)}
    channels = configured_channels(get_connection=found.get)
    outcome = await asyncio.to_thread(deliver, alert, alerts_file(get_settings()), channels)
    return f"alert {alert.alert_id} ({alert.severity}): {outcome}"
