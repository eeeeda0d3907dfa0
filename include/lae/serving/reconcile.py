"""The work of the ``reconcile_views`` DAG, in the order it runs:

1. **drift** — per (day, service) with a published batch and realtime rows still present: the
   window the speed layer covered that day ([its first minute, its last minute + 1), so rows
   missing *inside* the window count as drift), batch vs realtime requests and errors over
   it. A shortfall of realtime up to the day's late events (``stream_late_events``: events the
   speed layer dropped behind its watermark) is *explained*; the rest is *unexplained*, and
   above ``threshold`` (default 0.5 % of the batch's requests) it alerts naming service, day
   and size. Measured before step 3 deletes the realtime rows it needs; a later, narrower
   measure of the same batch never overwrites a wider one.
2. **materialize** — ``serving_metrics_minute/_hour`` for the affected days (today, yesterday
   and days named by batch Asset events): the merge (lae.serving.merge) upserted, and serving
   rows whose key the merge no longer produces deleted.
3. **expire** — realtime rows with bucket start < W - ``grace``: explicit range deletes (the
   tables' TTL stays as the safety net).
4. **missing batches** — days with data, within ``lookback_days``, whose nightly batch is
   overdue (``batch_deadline`` after the day's end) and not published: reported and alerted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from lae.serving.merge import BATCH, REALTIME
from lae.serving.query import read_merged
from lae.serving.store import ViewStore, day_start, utc

log = logging.getLogger(__name__)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class ReconcileConfig:
    grace: timedelta = timedelta(hours=1)
    threshold: float = 0.005
    lookback_days: int = 7
    # The nightly batch runs at 02:00 UTC after the day; past this it is overdue.
    batch_deadline: timedelta = timedelta(hours=6)


@dataclass(frozen=True)
class Drift:
    day: date
    service: str
    batch_id: str
    window_start: datetime
    window_end: datetime
    batch_requests: int
    rt_requests: int
    batch_errors: int
    rt_errors: int
    late_events: int | None  # None: the speed layer's late-event table does not exist

    @property
    def rel_diff(self) -> float:
        return abs(self.batch_requests - self.rt_requests) / max(self.batch_requests, 1)

    @property
    def explained(self) -> int:
        """Realtime's shortfall up to the events it dropped as late; an excess is never late."""
        return min(max(self.batch_requests - self.rt_requests, 0), self.late_events or 0)

    @property
    def unexplained(self) -> int:
        return abs(self.batch_requests - self.rt_requests) - self.explained

    @property
    def unexplained_errors(self) -> int:
        return max(abs(self.batch_errors - self.rt_errors) - (self.late_events or 0), 0)

    @property
    def unexplained_rel(self) -> float:
        """Unexplained requests, or unexplained errors, as a share of the batch's requests."""
        return max(self.unexplained, self.unexplained_errors) / max(self.batch_requests, 1)


def drift_of(service: str, day: date, batch_id: str, batch_rows: list, rt_rows: list,
             late_events: int | None) -> Drift | None:
    """Batch vs realtime over the minutes the realtime rows span; None without realtime rows."""
    if not rt_rows:
        return None
    lo = min(r.start for r in rt_rows)
    hi = max(r.start for r in rt_rows) + MINUTE
    batch_in = [r for r in batch_rows if lo <= r.start < hi]
    return Drift(day=day, service=service, batch_id=batch_id, window_start=lo, window_end=hi,
                 batch_requests=sum(r.requests for r in batch_in),
                 rt_requests=sum(r.requests for r in rt_rows),
                 batch_errors=sum(r.errors for r in batch_in),
                 rt_errors=sum(r.errors for r in rt_rows), late_events=late_events)


@dataclass
class Report:
    w: str | None
    drift: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    materialized: dict[str, int] = field(default_factory=dict)
    expired_partitions: list[str] = field(default_factory=list)
    missing_batch_days: list[str] = field(default_factory=list)
    late_events_table: bool = True

    def as_dict(self) -> dict:
        return asdict(self)


AlertFn = Callable[..., Any]


def _drift_row(d: Drift, alerted: bool, now: datetime) -> dict[str, Any]:
    return {"day": d.day, "service": d.service, "batch_id": d.batch_id,
            "window_start": d.window_start, "window_end": d.window_end,
            "batch_requests": d.batch_requests, "rt_requests": d.rt_requests,
            "rel_diff": d.rel_diff, "batch_errors": d.batch_errors, "rt_errors": d.rt_errors,
            "late_events": d.late_events, "unexplained": d.unexplained,
            "unexplained_rel": d.unexplained_rel, "alerted": alerted, "measured_at": now}


def measure_drift(store: ViewStore, w: datetime | None, published: dict[date, str],
                  rt_partitions: Iterable[tuple[str, date]], cfg: ReconcileConfig,
                  alert: AlertFn, now: datetime, report: Report) -> None:
    if w is None:
        return
    previous = {}
    for service, day in sorted(rt_partitions):
        batch_id = published.get(day)
        if batch_id is None or day_start(day) + DAY > w:
            continue  # no batch to compare with yet
        lo, hi = day_start(day), day_start(day) + DAY
        rt_rows = store.rows(REALTIME, "minute", service, day, lo, hi)
        batch_rows = store.rows(BATCH, "minute", service, day, lo, hi, batch_id)
        late = store.late_events(service, day)
        report.late_events_table = report.late_events_table and late is not None
        d = drift_of(service, day, batch_id, batch_rows, rt_rows, late)
        if d is None:
            continue
        if day not in previous:
            previous[day] = {r.service: r for r in store.drift(day)}
        old = previous[day].get(service)
        if (old is not None and old.batch_id == batch_id
                and utc(old.window_start) <= d.window_start and utc(old.window_end) >= d.window_end
                and (utc(old.window_start), utc(old.window_end)) != (d.window_start, d.window_end)):
            continue  # expiry already cut the window: keep the wider measure of this batch
        over = d.unexplained_rel > cfg.threshold
        already = (old is not None and old.batch_id == batch_id and bool(old.alerted)
                   and getattr(old, "unexplained", None) == d.unexplained)
        if over and not already:
            details = {"service": service, "day": day.isoformat(), "batch_id": batch_id,
                       "batch_requests": d.batch_requests, "rt_requests": d.rt_requests,
                       "late_events": d.late_events, "unexplained": d.unexplained,
                       "unexplained_errors": d.unexplained_errors,
                       "unexplained_pct": round(100 * d.unexplained_rel, 4),
                       "threshold_pct": 100 * cfg.threshold,
                       "window": f"[{d.window_start.isoformat()}, {d.window_end.isoformat()})"}
            title = (f"Unexplained view drift: {service} {day.isoformat()}: "
                     f"{d.unexplained} requests ({100 * d.unexplained_rel:.3f}% > "
                     f"{100 * cfg.threshold:g}%)")
            alert("view_drift", title, details, severity="critical")
            report.alerts.append({"title": title, **details})
        store.write_drift(_drift_row(d, over, now))
        report.drift.append({k: (v.isoformat() if isinstance(v, date | datetime) else v)
                             for k, v in _drift_row(d, over, now).items()})


def materialize(store: ViewStore, days: Iterable[date], partitions: set[tuple[str, date]],
                w: datetime | None, published: dict[date, str], report: Report) -> None:
    counts = {"minute": 0, "hour": 0, "deleted": 0}
    for day in sorted(set(days)):
        lo, hi = day_start(day), day_start(day) + DAY
        for service in sorted(s for s, d in partitions if d == day):
            for bucket in ("minute", "hour"):
                merged = read_merged(store, service, lo, hi, bucket, w=w, published=published)
                counts[bucket] += store.write_serving(bucket, merged.rows)
                stale = store.serving_keys(bucket, service, day, lo, hi) - {
                    r.key for r in merged.rows}
                counts["deleted"] += store.delete_serving(bucket, day, stale)
    report.materialized = counts


def expire(store: ViewStore, w: datetime | None, rt_partitions: Iterable[tuple[str, date]],
           cfg: ReconcileConfig, report: Report, published: Mapping[date, str]) -> None:
    if w is None:
        return
    bound = w - cfg.grace
    for service, day in sorted(rt_partitions):
        # A day below W without a batch is a gap the merge serves from realtime: keep its rows.
        if day_start(day) < bound and day in published:
            store.expire_realtime(service, day, bound)
            report.expired_partitions.append(f"{service}/{day.isoformat()}<{bound.isoformat()}")


def missing_batches(published: dict[date, str], data_days: Iterable[date], now: datetime,
                    cfg: ReconcileConfig) -> list[date]:
    """Days with data (or after the first published day) whose batch is overdue."""
    first = now.date() - timedelta(days=cfg.lookback_days)
    candidates = {d for d in data_days if d >= first}
    if published:
        start = max(min(published), first)
        candidates |= {start + timedelta(days=i) for i in range((now.date() - start).days)}
    return sorted(d for d in candidates
                  if d not in published and day_start(d) + DAY + cfg.batch_deadline <= now)


def reconcile(store: ViewStore, now: datetime | None = None, event_days: Iterable[date] = (),
              cfg: ReconcileConfig | None = None, alert: AlertFn | None = None) -> Report:
    """One reconcile run; ``now`` is the run's time (the DAG passes its logical time)."""
    from lae.alerts import send_alert

    cfg = cfg or ReconcileConfig()
    alert = alert or send_alert
    now = now or datetime.now(UTC)
    w = store.watermark()
    published = store.all_published()
    rt_parts = store.partitions(REALTIME) | store.partitions(REALTIME, "minute")
    all_parts = rt_parts | store.partitions(BATCH)
    report = Report(w=None if w is None else w.isoformat())

    measure_drift(store, w, published, rt_parts, cfg, alert, now, report)
    affected = {now.date(), now.date() - DAY, *event_days}
    materialize(store, affected, all_parts, w, published, report)
    expire(store, w, rt_parts, cfg, report, published)
    missing = missing_batches(published, {d for _, d in all_parts}, now, cfg)
    report.missing_batch_days = [d.isoformat() for d in missing]
    if missing:
        details = {"days": report.missing_batch_days}
        alert("batch_missing", f"Days without a published batch: {', '.join(details['days'])}",
              details, severity="warning")
        report.alerts.append({"title": "batch_missing", **details})
    log.info("reconcile: %s", report.as_dict())
    return report
