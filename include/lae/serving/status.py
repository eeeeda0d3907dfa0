"""What /v1/health and the dashboard's side panels say: W, stream freshness, drift, archive."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

from lae.config import Settings
from lae.serving.store import ViewStore, utc

log = logging.getLogger(__name__)


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat().replace("+00:00", "Z")


def stream_status(store: ViewStore, now: datetime) -> list[dict[str, Any]]:
    out = []
    for hb in store.heartbeats():
        last = utc(hb.last_progress_at)
        out.append({
            "query_name": hb.query_name,
            "last_progress_at": _iso(last),
            "heartbeat_age_s": None if last is None else round((now - last).total_seconds(), 1),
            "lag": hb.lag,
            "input_rows": hb.input_rows,
            "batch_id": hb.batch_id,
            "watermark": _iso(utc(getattr(hb, "watermark", None))),
        })
    return out


def drift_rows(store: ViewStore, days: int, today: date | None = None) -> list[dict[str, Any]]:
    """view_drift rows of the last ``days`` days, newest day first."""
    today = today or datetime.now(UTC).date()
    out = []
    for i in range(days):
        for r in store.drift(today - timedelta(days=i)):
            out.append({
                "day": str(r.day), "service": r.service, "batch_id": r.batch_id,
                "window_start": _iso(utc(r.window_start)), "window_end": _iso(utc(r.window_end)),
                "batch_requests": r.batch_requests, "rt_requests": r.rt_requests,
                "rel_diff": r.rel_diff,
                "late_events": getattr(r, "late_events", None),
                "unexplained_rel": getattr(r, "unexplained_rel", None),
                "measured_at": _iso(utc(r.measured_at)),
            })
    return out


def last_archive_run(settings: Settings) -> dict[str, Any] | None:
    """The newest archive manifest in S3 (key and time), or an error string."""
    from lae.archive.layout import MANIFEST_PREFIX
    from lae.s3 import s3_client

    try:
        client = s3_client(settings)
        newest = None
        for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=settings.bucket, Prefix=MANIFEST_PREFIX + "/"):
            for obj in page.get("Contents", []):
                if newest is None or obj["LastModified"] > newest["LastModified"]:
                    newest = obj
    except Exception as exc:  # the health view must answer even when S3 does not
        log.warning("last archive run: %s", exc)
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    if newest is None:
        return None
    return {"manifest": newest["Key"], "at": _iso(newest["LastModified"].astimezone(UTC))}


def health_report(store: ViewStore, settings: Settings, now: datetime | None = None) -> dict:
    now = now or datetime.now(UTC)
    drift = drift_rows(store, 7, now.date())
    last_drift = max(drift, key=lambda r: r["measured_at"] or "", default=None)
    return {
        "now": _iso(now),
        "w": _iso(store.watermark()),
        "stream": stream_status(store, now),
        "last_drift": last_drift,
        "last_archive_run": last_archive_run(settings),
    }


# lae.alerts.channels.ALERTS_FILE_NAME (a unit test keeps them equal). Not imported: the
# lae.alerts package imports Airflow, which costs the query API seconds to start for one name.
ALERTS_FILE_NAME = "alerts.jsonl"


def recent_alerts(settings: Settings, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` alerts of the alerts file, newest first; unreadable lines skipped."""
    import json

    try:
        lines = (settings.state_dir / ALERTS_FILE_NAME).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in reversed(lines):
        if len(out) >= limit:
            break
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a crash mid-write
    return out
