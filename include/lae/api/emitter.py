"""Where the access-log middleware puts its events: a bounded hand-off that never blocks.

A producer's ``send`` is mostly an append to its buffer, but it can block for up to
``max_block_ms``: while its buffer is full (either client), and with kafka-python also while it
has no metadata for the topic (broker down, first send). On the event loop that would stall
every request of the process, so the middleware only appends to a bounded buffer, and one
background thread feeds the producer.
A full buffer means Kafka has been unreachable for a while: the event is dropped and counted
(``dropped`` in ``stats()``, shown by /health and /metrics) instead of slowing the API.
That is the one place LAE loses events on purpose: serving traffic beats logging it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

Event = dict[str, Any]


class Emitter(Protocol):
    def emit(self, event: Event) -> None:
        """Take one event; must neither block nor raise."""

    def stats(self) -> dict[str, int]: ...

    def close(self, timeout: float = 10.0) -> None: ...


class NullEmitter:
    """Discards events: the no-logging baseline of the benchmark, and `lae api --emitter null`."""

    def __init__(self) -> None:
        self.emitted = 0

    def emit(self, event: Event) -> None:
        self.emitted += 1

    def stats(self) -> dict[str, int]:
        return {"emitted": self.emitted, "dropped": 0}

    def close(self, timeout: float = 10.0) -> None:
        pass


class QueueEmitter:
    """Bounded buffer + one thread calling ``deliver(event)`` (e.g. a Kafka producer's send).

    The thread wakes every ``interval`` seconds and drains the buffer, rather than being woken
    per event: a wake-up per request (a condition variable, then a GIL hand-off between the
    event loop and this thread) measured more CPU than the send itself. ``deliver`` may block
    (that is the point of the thread) and may raise; a raising deliver counts the event as
    failed. ``extra_stats`` adds the deliverer's own counters (acks, errors).
    """

    def __init__(self, deliver: Callable[[Event], None], maxsize: int = 10_000,
                 interval: float = 0.01,
                 extra_stats: Callable[[], dict[str, int]] | None = None,
                 on_close: Callable[[float], None] | None = None):
        self._deliver = deliver
        self._extra_stats = extra_stats
        self._on_close = on_close
        self._maxsize = maxsize
        self._interval = interval
        # deque.append/popleft are atomic under the GIL: no lock on the request path.
        self._buffer: deque[Event] = deque()
        self._stop = threading.Event()
        # Each counter has one writer (emitted/dropped: the event loop; handed/failed: the
        # thread), so plain ints are safe to read from anywhere.
        self.emitted = 0
        self.dropped = 0
        self.handed = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="lae-access-log", daemon=True)
        self._thread.start()

    def emit(self, event: Event) -> None:
        if len(self._buffer) >= self._maxsize:
            self.dropped += 1
            return
        self._buffer.append(event)
        self.emitted += 1

    def _drain(self) -> None:
        buffer = self._buffer
        while buffer:
            event = buffer.popleft()
            try:
                self._deliver(event)
                self.handed += 1
            except Exception:  # the thread must survive a broken producer, and count it
                self.failed += 1
                if self.failed == 1 or self.failed % 1000 == 0:
                    log.exception("access-log event not handed to Kafka (%d so far)", self.failed)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._drain()
        self._drain()

    def stats(self) -> dict[str, int]:
        stats = {"emitted": self.emitted, "dropped": self.dropped, "handed": self.handed,
                 "failed": self.failed, "queued": len(self._buffer)}
        if self._extra_stats is not None:
            stats.update(self._extra_stats())
        return stats

    def close(self, timeout: float = 10.0) -> None:
        """Hand over what is buffered (waiting up to ``timeout``), then close the deliverer."""
        self._stop.set()
        self._thread.join(timeout)
        if self._on_close is not None:
            self._on_close(timeout)
