"""Cost of CRAFT: 200 crops of the packaged photo gallery (12 photos) at MobileNet's conv_pw_13_relu, k = 10,
against one plain ``predict`` of MobileNet over the same 200 crops (the floor: every crop must be read once).

Fast importance (gradient × coefficient) adds one forward and backward pass over the 12 photos and the
factorization; Sobol importance then runs the network after the layer designs × (k + 2) times per photo
(32 × 12 = 384). Each is timed after a warm-up run (tracing), on a fresh in-memory cache, side by side in
one process.

    .venv/bin/python bench/craft_cost.py [--crops 200] [--designs 32]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from convvis_core.batches import preprocessed  # noqa: E402
from convvis_core.cache import ResultCache  # noqa: E402
from convvis_core.cam.targets import ClassTarget  # noqa: E402
from convvis_core.concepts.craft import Craft, craft_concepts  # noqa: E402
from convvis_core.concepts.crops import cut  # noqa: E402
from convvis_core.datasets.catalog import open_dataset  # noqa: E402
from convvis_core.models import LoadedModel, load_model  # noqa: E402
from convvis_core.parallel import cores  # noqa: E402
from convvis_core.precision import SPEED_FLAGS, cpu_flags  # noqa: E402

LAYER = "conv_pw_13_relu"
BATCH_SIZE = 32
TABBY = 281  # ImageNet's "tabby cat": a fixed target, so no pass is spent finding the top class


class Clock:
    """Wall seconds and this process's CPU seconds (every thread) of what runs inside it: on a machine whose
    cores other processes share, the CPU seconds say more about the work than the wall ones."""

    def __enter__(self) -> "Clock":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exception) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def against(self, floor: "Clock") -> str:
        return (f"{self.wall:6.2f} s wall ({self.wall / floor.wall:.2f} of the predict), {self.cpu:6.2f} s CPU "
                f"({self.cpu / floor.cpu:.2f})")


def timed_craft(loaded: LoadedModel, images: list[Image.Image], crops: int, importance: str, designs: int,
                seed: int) -> tuple[Craft, Clock]:
    with Clock() as clock:
        found = craft_concepts(loaded, images, ClassTarget(TABBY), LAYER, 10, crops, importance=importance,
                               designs=designs, seed=seed, cache=ResultCache(None))
    return found, clock


def plain_predict(loaded: LoadedModel, crops: np.ndarray) -> Clock:
    """MobileNet's ``predict`` over the crops, preprocessed as every ConvVis pass does: the floor."""
    with Clock() as clock:
        loaded.model.predict(np.asarray(preprocessed(crops, loaded.info.preprocessing)), batch_size=BATCH_SIZE,
                             verbose=0)
    return clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=200)
    parser.add_argument("--designs", type=int, default=32)
    args = parser.parse_args()
    shown = " ".join(flag for flag in SPEED_FLAGS if flag in cpu_flags()) or "none of " + " ".join(SPEED_FLAGS)
    print(f"CPU flags: {shown}; {cores()} CPU cores for this process; load average {os.getloadavg()[0]:.1f} "
          "(other processes on the machine share the cores: times are noisy)")
    loaded = load_model("mobilenet")
    gallery = open_dataset("gallery")
    images = [Image.fromarray(gallery.image(index)) for index in range(len(gallery))]
    warm, _ = timed_craft(loaded, images, args.crops, "sobol", args.designs, seed=1)  # traces every pass once
    crops = cut(warm.images, warm.boxes, warm.side)
    plain_predict(loaded, crops)
    floor = plain_predict(loaded, crops)
    fast, fast_clock = timed_craft(loaded, images, args.crops, "gradient", args.designs, seed=0)
    sobol, sobol_clock = timed_craft(loaded, images, args.crops, "sobol", args.designs, seed=0)
    print(f"MobileNet at {LAYER}, k = 10, {args.crops} crops ({fast.side} px squares, enlarged to 224) of "
          f"{len(images)} gallery photos, target: class {TABBY}")
    print(f"plain predict over the {args.crops} crops:        {floor.against(floor)}")
    print(f"CRAFT, gradient × coefficient importance: {fast_clock.against(floor)}\n    {fast.cost()}")
    print(f"CRAFT, Sobol importance ({args.designs} designs):      {sobol_clock.against(floor)}\n    {sobol.cost()}")
    print(f"NMF error {fast.error:.1%}; both modes rank first: gradient × coefficient concept {fast.order[0]}, "
          f"Sobol concept {sobol.order[0]}")


if __name__ == "__main__":
    main()
