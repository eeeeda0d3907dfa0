"""What an alert says, independent of where it is sent: one record, three renderings.

Pure data and formatting (no Airflow, no I/O), so the message can be unit-tested and the
same record goes to the webhook, the email and the local alerts file without drifting apart.
"""

from __future__ import annotations

import html
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

# Ordered: a channel configured for "warning" also receives "critical".
SEVERITIES = ("info", "warning", "critical")
# Long enough for a Spark or Cassandra error's first lines, short enough for a chat message.
EXCEPTION_LIMIT = 500
_COLORS = {"info": "#439fe0", "warning": "#f2c744", "critical": "#d62728"}


def severity_rank(severity: str) -> int:
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}; one of {SEVERITIES}")
    return SEVERITIES.index(severity)


def describe_exception(exc: BaseException | str | None, limit: int = EXCEPTION_LIMIT) -> str | None:
    """``Type: message``, cut to ``limit`` characters so one huge error cannot flood a channel."""
    if exc is None:
        return None
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Alert:
    kind: str  # task_failed, task_retry, dag_run_failed, or a caller's own (stream_restart, …)
    title: str
    severity: str = "critical"
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    try_number: int | None = None
    try_total: int | None = None  # attempts allowed: retries + 1
    exception: str | None = None
    log_url: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    alert_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    ts: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        severity_rank(self.severity)

    def fields(self) -> list[tuple[str, str]]:
        """The labelled facts every rendering shows, in reading order; empty ones left out."""
        tries = None
        if self.try_number is not None:
            tries = f"{self.try_number} of {self.try_total}" if self.try_total else str(
                self.try_number)
        rows = [("DAG", self.dag_id), ("Task", self.task_id), ("Run", self.run_id),
                ("Try", tries), ("Exception", self.exception), ("Log", self.log_url)]
        rows += [(str(k), str(v)) for k, v in self.details.items()]
        return [(label, value) for label, value in rows if value not in (None, "")]

    def headline(self) -> str:
        return f"[LAE {self.severity}] {self.title}"

    def record(self) -> dict[str, Any]:
        """The JSON object written to the alerts file (one line per alert)."""
        return asdict(self)

    def slack_payload(self) -> dict[str, Any]:
        """Slack incoming-webhook JSON.

        ``attachments`` with ``fields`` rather than ``blocks``: Slack still renders them, and
        Mattermost, Rocket.Chat and Discord's Slack-compatible endpoint understand them too,
        while ``blocks`` is Slack-only. ``text`` is the notification line on its own.
        """
        epoch = int(datetime.fromisoformat(self.ts).timestamp())
        attachment = {
            "fallback": self.headline(),
            "color": _COLORS[self.severity],
            "title": self.title,
            "fields": [{"title": label, "value": value, "short": label in ("DAG", "Task", "Try")}
                       for label, value in self.fields()],
            "footer": f"LAE alert {self.kind} {self.alert_id}",
            "ts": epoch,
        }
        if self.log_url:
            attachment["title_link"] = self.log_url
        return {"text": self.headline(), "attachments": [attachment]}

    def email(self) -> tuple[str, str]:
        """(subject, HTML body)."""
        rows = "".join(
            f"<tr><th align='left'>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
            for label, value in self.fields())
        body = (f"<p>{html.escape(self.headline())}</p><table>{rows}</table>"
                f"<p><small>alert {self.alert_id} ({self.kind}) at {self.ts}</small></p>")
        return self.headline(), body

    def text(self) -> str:
        """Plain text for the task log."""
        lines = [self.headline(), *(f"  {label}: {value}" for label, value in self.fields())]
        return "\n".join(lines)
