"""Dealing partitions to archive workers: by the size of their planned ranges."""

from __future__ import annotations

from lae.archive.run import share_out


def _plans(sizes: list[int]) -> list[dict]:
    return [{"topic": "t", "partition": p, "start": 100, "end": 100 + n}
            for p, n in enumerate(sizes)]


def test_the_generators_skew_is_split_evenly() -> None:
    # What the generator's keys give on six partitions: round-robin over 3 workers would put
    # partitions 1 and 4 (640k) on one worker and leave another with nothing.
    plans = _plans([0, 510_000, 360_000, 0, 130_000, 0])
    assert share_out(plans, 3) == [[1], [2], [0, 3, 4, 5]]
    assert share_out(plans, 2) == [[1], [0, 2, 3, 4, 5]]


def test_every_partition_once_and_no_idle_worker_lists() -> None:
    plans = _plans([5, 1, 9, 3, 7, 2, 8])
    for workers in range(1, 10):
        shares = share_out(plans, workers)
        assert sorted(p for share in shares for p in share) == list(range(7))
        assert len(shares) == min(workers, 7)
        loads = [sum(plans[p]["end"] - plans[p]["start"] for p in share) for share in shares]
        # Largest-first greedy: no list exceeds another by more than its largest range.
        assert max(loads) - min(loads) <= 9


def test_nothing_planned_is_one_share() -> None:
    assert share_out(_plans([0, 0, 0]), 4) == [[0, 1, 2]]
