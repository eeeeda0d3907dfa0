"""A small LRU for immutable answers, shared by the query API's request threads.

No cassandra-driver import here: the API module (also loaded by every Airflow process through
plugins/lae_views.py) creates its cache at import time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future


class DayCache:
    """A small LRU of immutable per-day answers. Concurrent misses of one key compute once
    (the others wait for that result), so a burst of requests reads a batch day once."""

    def __init__(self, max_entries: int = 64):
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, Future] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], object]):
        with self._lock:
            future = self._entries.get(key)
            owner = future is None
            if owner:
                self.misses += 1
                future = self._entries[key] = Future()
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            else:
                self.hits += 1
                self._entries.move_to_end(key)
        if owner:
            try:
                future.set_result(compute())
            except BaseException as exc:
                future.set_exception(exc)
                with self._lock:  # a failed read is not an answer: the next request retries
                    if self._entries.get(key) is future:
                        del self._entries[key]
                raise
        return future.result()
