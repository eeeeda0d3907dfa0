"""The access-log hand-off: never blocks the caller, drops and counts when full.

The deliverer is a plain function here, standing in for the Kafka producer, because the
property under test (emit never waits, whatever the deliverer does) is about the queue and
the thread, not about Kafka.
"""

from __future__ import annotations

import threading
import time

from lae.api.emitter import QueueEmitter


def test_emit_does_not_block_when_delivery_is_stuck():
    release = threading.Event()
    delivered = []

    def deliver(event):
        release.wait(10)
        delivered.append(event)

    emitter = QueueEmitter(deliver, maxsize=5)
    started = time.perf_counter()
    for i in range(100):
        emitter.emit({"n": i})
    assert time.perf_counter() - started < 0.1
    stats = emitter.stats()
    # One event is held by the stuck worker, five wait in the queue, the rest are dropped.
    assert stats["dropped"] >= 100 - 6 and stats["emitted"] + stats["dropped"] == 100
    release.set()
    emitter.close(timeout=5)
    assert len(delivered) == emitter.stats()["emitted"]


def test_failing_delivery_is_counted_and_the_thread_survives():
    def deliver(event):
        if event["n"] % 2:
            raise RuntimeError("broker away")

    emitter = QueueEmitter(deliver, maxsize=100)
    for i in range(10):
        emitter.emit({"n": i})
    emitter.close(timeout=5)
    stats = emitter.stats()
    assert (stats["handed"], stats["failed"], stats["dropped"]) == (5, 5, 0)
