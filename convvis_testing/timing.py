"""Timing for the benches: runs measured side by side, alternating, so the load of a shared machine falls on
both alike; and the line that says what machine the numbers come from."""

from __future__ import annotations

import os
import statistics
import time
from typing import Callable

from convvis_core.parallel import cores
from convvis_core.precision import SPEED_FLAGS, cpu_flags


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one run."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def side_by_side(first: Callable[[], object], second: Callable[[], object], repeats: int) -> list[tuple[float, float]]:
    """Median (wall, CPU) seconds of each, run alternately (which goes first alternates too), so a change
    in the machine's load falls on both alike."""
    runs: list[list[tuple[float, float]]] = [[], []]
    for repeat in range(repeats):
        order = (0, 1) if repeat % 2 == 0 else (1, 0)
        for which in order:
            runs[which].append(timed((first, second)[which]))
    return [(statistics.median(wall for wall, _ in found), statistics.median(cpu for _, cpu in found)) for found in runs]


def machine_line() -> str:
    """The CPU's speed flags, the cores this process has and the load: where the numbers come from."""
    shown = " ".join(flag for flag in SPEED_FLAGS if flag in cpu_flags()) or "none of " + " ".join(SPEED_FLAGS)
    return (f"CPU flags: {shown}; {cores()} CPU cores for this process; load average {os.getloadavg()[0]:.1f} "
            "(a shared machine: other processes' load makes these numbers noisy)")
