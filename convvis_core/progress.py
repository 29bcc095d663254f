"""The two shapes of progress callback a long job reports through, in one place, so that a job and
its callers (pages, command line) agree on what the arguments mean."""

from __future__ import annotations

from typing import Callable

StepProgress = Callable[[int, int], None]
"""``(done, in_all)``: counted work, such as images scanned or optimization steps run."""

MessageProgress = Callable[[str], None]
"""One line saying what happens now, such as downloading or converting a model."""
