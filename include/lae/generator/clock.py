"""Where in event time each generated message sits.

``HistoryClock`` spreads a fixed number of events over a past range with a diurnal curve
(fast back-fill of "yesterday"); ``LiveClock`` stamps events with their scheduled send time.
Both return positions in send order; lateness is applied on top by the model.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import numpy as np

_MINUTE_MS = 60_000


def diurnal_weight(minute_of_day: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    """Relative request rate by UTC time of day: a night trough near 04:00, a late-morning
    peak and a larger evening peak; weekends carry 80% of a weekday's traffic."""
    hour = minute_of_day / 60.0
    curve = (0.15
             + 0.8 * np.exp(-0.5 * ((hour - 11.0) / 2.5) ** 2)
             + 1.0 * np.exp(-0.5 * ((hour - 20.0) / 2.2) ** 2)
             + 1.0 * np.exp(-0.5 * ((hour + 4.0) / 2.2) ** 2))  # yesterday's evening tail
    return curve * np.where(weekday >= 5, 0.8, 1.0)


class HistoryClock:
    """``total`` events over ``[start, end)``; event i sits at the i-th quantile of the
    diurnal curve (plus jitter within its slot), so positions rise monotonically."""

    def __init__(self, start: datetime, end: datetime, total: int, seed: int):
        if end <= start:
            raise ValueError("history range is empty: end must be after start")
        if total < 1:
            raise ValueError("a history run needs a positive event count")
        self.start_ms = int(start.timestamp() * 1000)
        self.end_ms = int(end.timestamp() * 1000)
        self.total = total
        self.rng = np.random.default_rng([seed, 2])
        minutes = np.arange(self.start_ms, self.end_ms, _MINUTE_MS, dtype=np.int64)
        stamps = minutes.astype("datetime64[ms]")
        minute_of_day = (minutes // _MINUTE_MS) % 1440
        # 1970-01-01 was a Thursday (weekday 3, Monday = 0).
        weekday = ((stamps.astype("datetime64[D]").astype(np.int64) + 3) % 7)
        edges_ms = np.append(minutes, self.end_ms).astype(np.float64)
        weights = diurnal_weight(minute_of_day, weekday)
        weights = weights * (np.diff(edges_ms) / _MINUTE_MS)  # a partial last minute
        self._cdf = np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
        self._edges_ms = edges_ms

    def positions(self, first: int, n: int) -> np.ndarray:
        q = (np.arange(first, first + n, dtype=np.float64) + self.rng.random(n)) / self.total
        ms = np.interp(q, self._cdf, self._edges_ms)
        return np.minimum(ms.astype(np.int64), self.end_ms - 1)


class LiveClock:
    """Event time = when the event is due to be sent: ``t0 + i / rate``, or the wall clock
    when sending as fast as possible (rate 0)."""

    def __init__(self, rate: float, t0_ms: int | None = None):
        self.rate = rate
        self.t0_ms = int(time.time() * 1000) if t0_ms is None else t0_ms
        self.start_ms = None  # late events may fall anywhere before now

    def positions(self, first: int, n: int) -> np.ndarray:
        if self.rate > 0:
            offsets = np.arange(first, first + n, dtype=np.float64) * (1000.0 / self.rate)
            return self.t0_ms + offsets.astype(np.int64)
        return np.full(n, int(time.time() * 1000), dtype=np.int64)


def parse_instant(text: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 datetime; naive values are taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = datetime.combine(date.fromisoformat(text), datetime.min.time())
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def history_range(start: str | None, days: float | None, from_: str | None,
                  to: str | None) -> tuple[datetime, datetime] | None:
    """(start, end) from ``--start/--days`` or ``--from/--to``; None for live mode."""
    if start and (from_ or to):
        raise ValueError("use either --start/--days or --from/--to, not both")
    if start:
        begin = parse_instant(start)
        return begin, begin + timedelta(days=days or 1)
    if from_ or to:
        if not (from_ and to):
            raise ValueError("--from and --to go together")
        return parse_instant(from_), parse_instant(to)
    if days:
        raise ValueError("--days needs --start")
    return None
