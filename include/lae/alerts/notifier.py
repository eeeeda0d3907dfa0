"""The one notifier every LAE DAG uses, and ``send_alert`` for alerts that are not a task's.

``LaeNotifier`` is an Airflow ``BaseNotifier``: lae.dag_defaults puts it in every task's
``on_failure_callback`` (fires once retries are exhausted) and, at warning severity, in
``on_retry_callback``. Both run in the task's own process right after the attempt ends, so
the alert lands in that attempt's log too.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from airflow.sdk import BaseNotifier

from lae.alerts.channels import ALERTS_FILE_NAME, Channel, configured_channels, deliver
from lae.alerts.message import Alert, describe_exception
from lae.config import Settings, get_settings

log = logging.getLogger("lae.alerts")
TITLES = {"task_failed": "Task failed", "task_retry": "Task failed, will retry"}


def alerts_file(settings: Settings) -> Path:
    """JSON lines under the state dir; the dashboard's health view reads the same file."""
    return settings.state_dir / ALERTS_FILE_NAME


def alert_from_context(context: Any, kind: str, severity: str) -> Alert:
    """An Alert from a task callback's context (a RuntimeTaskInstance under ``ti``)."""
    ti = context["ti"]
    task_id = ti.task_id
    map_index = getattr(ti, "map_index", -1)
    if map_index is not None and map_index >= 0:
        task_id = f"{task_id}[{map_index}]"
    max_tries = getattr(ti, "max_tries", None)
    return Alert(
        kind=kind,
        title=f"{TITLES.get(kind, kind)}: {ti.dag_id}.{task_id}",
        severity=severity,
        dag_id=ti.dag_id,
        task_id=task_id,
        run_id=ti.run_id,
        try_number=ti.try_number,
        # max_tries is the last try number allowed minus one (tries start at 1).
        try_total=max_tries + 1 if max_tries is not None else None,
        exception=describe_exception(context.get("exception")),
        log_url=getattr(ti, "log_url", None),
    )


class LaeNotifier(BaseNotifier):
    """Alert on a task's failure (``kind="task_failed"``) or retry (``kind="task_retry"``)."""

    def __init__(self, kind: str = "task_failed", severity: str = "critical",
                 channels: list[Channel] | None = None, settings: Settings | None = None):
        super().__init__()
        self.kind = kind
        self.severity = severity
        # Tests pass these; in Airflow they are resolved per call, so a connection added in
        # the UI takes effect on the next failure without re-parsing any DAG.
        self._channels = channels
        self._settings = settings

    def notify(self, context: Any) -> None:
        try:
            alert = alert_from_context(context, self.kind, self.severity)
        except Exception:
            # Never mask the task's failure: log and give up on this alert only.
            log.exception("could not build an alert from the task context")
            return
        _dispatch(alert, self._channels, self._settings)


def send_alert(kind: str, title: str, details: dict[str, Any] | None = None, *,
               severity: str = "critical", dag_id: str | None = None,
               task_id: str | None = None, run_id: str | None = None,
               exception: BaseException | str | None = None, log_url: str | None = None,
               channels: list[Channel] | None = None,
               settings: Settings | None = None) -> Alert:
    """An alert that is not a task failure (stream restart/escalation, view drift, …).

    Same channels and file as task alerts; never raises. Returns the alert sent. Call it from
    tasks; code running inside the scheduler or api-server (listeners) must pass
    ``channels=[]``, because looking connections up there uses the scheduler's own DB session
    (see plugins/lae_alerts.py).
    """
    alert = Alert(kind=kind, title=title, severity=severity, dag_id=dag_id, task_id=task_id,
                  run_id=run_id, exception=describe_exception(exception), log_url=log_url,
                  details=dict(details or {}))
    _dispatch(alert, channels, settings)
    return alert


def _dispatch(alert: Alert, channels: list[Channel] | None,
              settings: Settings | None) -> None:
    try:
        settings = settings or get_settings()
        chosen = configured_channels() if channels is None else channels
        deliver(alert, alerts_file(settings), chosen)
    except Exception:
        log.exception("alert %s could not be delivered", alert.alert_id)
