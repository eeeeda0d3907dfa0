"""``lae.archive.reader.prefetched``: read-ahead that keeps order, errors and clean-up."""

from __future__ import annotations

import threading

import pytest

from lae.archive.reader import prefetched


def test_batches_come_out_in_order_and_all_of_them():
    assert list(prefetched(iter(range(100)), depth=3)) == list(range(100))


def test_a_reader_error_reaches_the_caller_after_the_batches_before_it():
    def reader():
        yield 1
        yield 2
        raise RuntimeError("offset out of range")

    got = []
    with pytest.raises(RuntimeError, match="offset out of range"):
        for batch in prefetched(reader()):
            got.append(batch)
    assert got == [1, 2]


def test_stopping_early_closes_the_reader_and_its_thread():
    closed = threading.Event()

    def reader():
        try:
            yield from range(10_000)
        finally:
            closed.set()  # where read_range_confluent closes its consumer

    batches = prefetched(reader(), depth=2)
    assert next(batches) == 0
    batches.close()  # the archiver raised while handling a batch
    assert closed.wait(5)
    assert not any(t.name == "lae-archive-prefetch" and t.is_alive()
                   for t in threading.enumerate())
