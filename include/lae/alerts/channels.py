"""Where alerts go: always the log and the local alerts file; a webhook and email when their
Airflow connections exist.

Channels come from Airflow connections (DESIGN.md §6), so a deployment turns Slack or email
on by defining a connection, not by changing code:

* ``lae_alerts_webhook`` — URL = ``extra.webhook_url``, or the host (with scheme/port) followed
  by the password as a path, which is how Slack's own connection type stores it
  (host ``https://hooks.slack.com/services``, password ``T000/B000/XXXX``): the secret part
  then sits in a masked, encrypted field.
* ``lae_alerts_smtp`` — an SMTP provider connection; recipients in ``extra.to``.

Either may set ``extra.min_severity`` (default ``critical``): task failures page, retries
and dag-run records only reach the log and the file unless a channel asks for them.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lae.alerts.message import Alert, severity_rank

WEBHOOK_CONN_ID = "lae_alerts_webhook"
SMTP_CONN_ID = "lae_alerts_smtp"
ALERTS_FILE_NAME = "alerts.jsonl"
# A task's failure callback waits for the post; a hung receiver must not hold the worker slot.
WEBHOOK_TIMEOUT_SECONDS = 10

log = logging.getLogger("lae.alerts")


class Channel(Protocol):
    name: str
    min_severity: str

    def send(self, alert: Alert) -> None: ...


def wants(channel: Channel, alert: Alert) -> bool:
    return severity_rank(alert.severity) >= severity_rank(channel.min_severity)


@dataclass
class WebhookChannel:
    url: str
    min_severity: str = "critical"
    name: str = "webhook"

    def send(self, alert: Alert) -> None:
        body = json.dumps(alert.slack_payload()).encode()
        req = urllib.request.Request(self.url, data=body, method="POST",  # noqa: S310 - URL from an operator-defined connection
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=WEBHOOK_TIMEOUT_SECONDS) as resp:  # noqa: S310 - same
            resp.read()  # urlopen raises HTTPError on 4xx/5xx


@dataclass
class EmailChannel:
    to: list[str]
    conn_id: str = SMTP_CONN_ID
    min_severity: str = "critical"
    name: str = "email"

    def send(self, alert: Alert) -> None:
        # Imported here: the provider is only needed when email is configured.
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        subject, body = alert.email()
        with SmtpHook(smtp_conn_id=self.conn_id) as hook:
            hook.send_email_smtp(to=self.to, subject=subject, html_content=body)


def webhook_url(conn: Any) -> str | None:
    """The URL a ``lae_alerts_webhook`` connection points at (None if it names none)."""
    extra = conn.extra_dejson or {}
    if extra.get("webhook_url"):
        return extra["webhook_url"]
    if not conn.host:
        return None
    base = conn.host if "://" in conn.host else f"{conn.schema or 'https'}://{conn.host}"
    if conn.port:
        base = f"{base.rstrip('/')}:{conn.port}"
    if conn.password:
        base = f"{base.rstrip('/')}/{conn.password.lstrip('/')}"
    return base


def _recipients(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.replace(";", ",").split(",")
    return [v.strip() for v in value or [] if v and v.strip()]


def smtp_provider_installed() -> bool:
    try:
        import airflow.providers.smtp.hooks.smtp  # noqa: F401
    except ImportError:
        return False
    return True


def _airflow_connection(conn_id: str) -> Any | None:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def configured_channels(
        get_connection: Callable[[str], Any | None] = _airflow_connection) -> list[Channel]:
    """The optional channels whose connections exist; a broken one is logged and left out."""
    channels: list[Channel] = []
    try:
        conn = get_connection(WEBHOOK_CONN_ID)
        if conn is not None:
            url = webhook_url(conn)
            if url:
                channels.append(WebhookChannel(url, conn.extra_dejson.get("min_severity",
                                                                          "critical")))
            else:
                log.warning("connection %s has no host or extra.webhook_url; webhook skipped",
                            WEBHOOK_CONN_ID)
    except Exception:
        log.exception("could not read connection %s; webhook skipped", WEBHOOK_CONN_ID)
    try:
        conn = get_connection(SMTP_CONN_ID)
        if conn is not None:
            to = _recipients(conn.extra_dejson.get("to"))
            if not to:
                log.warning("connection %s has no extra.to recipients; email skipped",
                            SMTP_CONN_ID)
            elif not smtp_provider_installed():
                log.warning("apache-airflow-providers-smtp is not installed; email skipped")
            else:
                channels.append(EmailChannel(to, SMTP_CONN_ID,
                                             conn.extra_dejson.get("min_severity", "critical")))
    except Exception:
        log.exception("could not read connection %s; email skipped", SMTP_CONN_ID)
    return channels


def append_record(path: Path, record: dict[str, Any]) -> None:
    """One JSON line, written with a single O_APPEND write so concurrent tasks never interleave."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, default=str, ensure_ascii=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_records(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Alerts from the file, oldest first (the last ``limit`` if given); bad lines skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    records = []
    for line in lines[-limit:] if limit else lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a crash mid-write must not hide the others
    return records


def deliver(alert: Alert, alerts_file: Path, channels: list[Channel]) -> dict[str, str]:
    """Send ``alert`` everywhere it should go; never raises.

    Alerting runs inside failure callbacks: an exception here would replace the task's own
    error in its log, so every channel's failure is caught, logged and recorded instead.
    """
    outcome: dict[str, str] = {}
    level = logging.ERROR if alert.severity == "critical" else logging.WARNING
    log.log(level, "%s", alert.text())
    for channel in channels:
        if not wants(channel, alert):
            outcome[channel.name] = f"skipped: below {channel.min_severity}"
            continue
        try:
            channel.send(alert)
            outcome[channel.name] = "sent"
        except Exception as exc:
            # The exception text, never the URL: a webhook URL is a credential.
            outcome[channel.name] = f"failed: {type(exc).__name__}: {exc}"[:300]
            log.warning("alert %s: %s channel failed: %s", alert.alert_id, channel.name,
                        outcome[channel.name])
    try:
        append_record(alerts_file, {**alert.record(), "delivered": outcome})
    except Exception:
        log.exception("alert %s: could not append to %s", alert.alert_id, alerts_file)
    return outcome
