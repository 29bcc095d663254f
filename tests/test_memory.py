"""Memory stays flat when the same request is rendered again and again, as on a server that runs for
weeks: nothing may accumulate per request (traces, sub-models, cache entries, session leftovers).

Resident memory (VmRSS) is read after a warm-up (the first traces, the model, the caches filled)
and again at the end; it may not grow by half, nor by more than ``MAX_GROWTH`` at all. 100 AppTest
runs take about 50 s on 2 cores, so the pages are rendered 30 times as a new session each time (in
test_memory_pages.py), and the core calls underneath the Activations, Heatmaps and Filters pages 100
times, uncached.
"""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest

from convvis_core.activations import channel_stats, default_spread, feature_maps, progression
from convvis_core.presentation.channel_grids import channel_grid
from convvis_core.presentation.overlays import overlay
from convvis_core.cache import ResultCache
from convvis_core.cam import DEFAULT_METHODS, ClassTarget, faithfulness, heatmap
from convvis_core.featureviz import PRESETS, visualize_filters
from convvis_core.images import as_model_sees_it
from convvis_core.samples import load_sample

ROOT = Path(__file__).resolve().parents[1]
MAX_GROWTH = 100 * 2**20
pytestmark = pytest.mark.slow  # many sessions and repetitions: minutes, not seconds


def resident_bytes() -> int:
    gc.collect()
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def assert_flat(warm: int, last: int, what: str) -> None:
    print(f"{what}: {warm / 2**20:.0f} MB after warm-up, {last / 2**20:.0f} MB at the end")
    assert last <= 1.5 * warm, f"{what}: {warm / 2**20:.0f} MB → {last / 2**20:.0f} MB"
    assert last - warm <= MAX_GROWTH, f"{what}: grew by {(last - warm) / 2**20:.0f} MB"


def test_the_core_paths_of_the_pages_run_100_times_in_flat_memory(lenet):
    image = load_sample("digit_4")
    seen = as_model_sees_it(image, lenet.info)
    paths = [layer.path for layer in default_spread(lenet.model)]
    settings = PRESETS["quick preview"].replace(steps=8, size=28)

    def render() -> None:
        maps = feature_maps(lenet, image, paths)  # Activations: one pass, stats, grids, overlay, progression
        for values in maps.values():
            stats = channel_stats(values)
            channel_grid(values, "standardize", max_side=800).to_pil("viridis")
            overlay(seen, values[..., int(np.argmax(stats.mean))], 0.5)
        progression(maps)
        for method in DEFAULT_METHODS:  # Heatmaps: each default method and its faithfulness curves
            faithfulness(lenet, seen, heatmap(lenet, seen, method, ClassTarget(4)))
        visualize_filters(lenet, "conv1", [0, 1], settings, cache=ResultCache(None))  # Filters, computed anew

    for _ in range(10):
        render()
    warm = resident_bytes()
    for _ in range(90):
        render()
    assert_flat(warm, resident_bytes(), "100 core renders")
