"""Late data: which past days to recompute after the archive announced the dates it touched.

The archive DAG's Asset events carry ``extra["dates"]`` (event dates of what it archived). A
touched day needs a recompute when its published batch predates the event (late events
arrived after the batch was computed), or when it was never published although its nightly
run is over (the nightly run for D starts at 02:00 on D+1; with catchup off a missed night is
not retried). Days whose nightly run is still ahead are left to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta


def touched_days(events: Iterable) -> dict[date, datetime]:
    """day → the latest Asset event (timestamp) that touched it, from the archive's events."""
    out: dict[date, datetime] = {}
    for event in events:
        ts = event.timestamp
        ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
        for text in (event.extra or {}).get("dates", []):
            day = date.fromisoformat(text)
            if day not in out or ts > out[day]:
                out[day] = ts
    return out


def days_to_recompute(touched: Mapping[date, datetime], published: Mapping[date, datetime],
                      today: date) -> list[date]:
    """The days to recompute now (sorted); ``published`` maps day → published_at (aware)."""
    due = []
    for day, touched_at in sorted(touched.items()):
        published_at = published.get(day)
        if published_at is not None:
            if published_at < touched_at:
                due.append(day)
        elif day <= today - timedelta(days=2):
            due.append(day)
    return due


def published_at(session, keyspace: str, days: Iterable[date]) -> dict[date, datetime]:
    from lae.batch.store import VIEW

    out = {}
    for day in sorted(set(days)):
        row = session.execute(
            f"SELECT published_at FROM {keyspace}.batch_published "  # noqa: S608
            "WHERE view_name = %s AND day = %s", (VIEW, day),
        ).one()
        if row is not None and row.published_at is not None:
            out[day] = row.published_at.replace(tzinfo=UTC)
    return out
