"""Counts of expensive work actually done (a dataset scanned, a file parsed), kept by the module that
does it and public, so tests and benches see that work was shared or skipped without patching
private functions."""

from __future__ import annotations

import threading
from collections import Counter


class WorkCounter:
    """A thread-safe tally by name (a layer path, a file); sessions work on threads of one process."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, name: str, count: int = 1) -> None:
        with self._lock:
            self._counts[name] += count

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._counts[name]
