"""Filters, time to a good picture: each recipe against a Lucid reference, side by side in one run.

Reference: the Lucid preset at 512 steps, run with another seed (1) than the recipes (0), so that a
recipe scores by converging to the same kind of picture, not by sharing the reference's path (the
Lucid preset at 256 steps with the reference's seed would simply be its first half).

Per filter and recipe:
- **t90**: seconds until the activation of the filter on the displayed picture (previews every 2
  steps) first reaches 90 % of its activation on the reference picture; a batch's time is shared
  by its filters. Traces are made before timing (a short warm-up run of each recipe).
- **total**: seconds for the whole recipe, per filter: when the user has the final picture.
- **similarity**: Pearson correlation of the target layer's channel means on the recipe's final
  picture and on the reference picture, leaving the target channel out, each averaged over all
  windows of one size (the smallest picture side among the recipes) at a stride of 16 px. Channel
  means ignore where textures sit (their random phase); equal windows make pictures of different
  sizes comparable (a 96 px crop of a picture against the whole 128 px picture scores only ~0.97);
  and leaving the target channel out leaves what else the picture holds, which no recipe gets by
  construction. Two Lucid runs with different seeds score ~0.98-0.99.

LeNet (28×28 grayscale) has its own table: how many of the first 16 filters of each layer stay
weak (what was maximized stayed below zero), as the app flags them.

The machine is shared (other processes come and go): the recipes of a layer run side by side, one
thread each, taking turns step by step, and each counts only its own turns, so all of them meet the
same load; the load average is printed. Run: ``python bench/filters_time_to_quality.py [--filters 32] [--lenet 16]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from convvis_core.cache import ResultCache  # noqa: E402
from convvis_core.featureviz import PRESETS, Settings, visualize_filters  # noqa: E402
from convvis_core.featureviz.presets import FAST, SMALL_INPUTS, fitted_preset  # noqa: E402
from convvis_core.graph import sub_model  # noqa: E402
from convvis_core.layers import find_layer  # noqa: E402
from convvis_core.models import LoadedModel, load_model  # noqa: E402
from convvis_core.parallel import cores  # noqa: E402
from convvis_core.precision import SPEED_FLAGS, cpu_flags, fast_dtype  # noqa: E402
from convvis_core.preprocessing import preprocess  # noqa: E402

# Three depths of each ImageNet model: stride 4, 16 and 32 (56×56, 14×14 and 7×7 maps at 224 px).
IMAGENET_LAYERS = {"mobilenet": ("conv_pw_3_relu", "conv_pw_8_relu", "conv_pw_13_relu"),
                   "efficientnet_lite0": ("block2b_expand_relu", "block4c_expand_relu", "block6c_expand_relu")}
LENET_LAYERS = ("conv1_relu", "conv2_relu")
LUCID = "Lucid"
REFERENCE = PRESETS[LUCID].replace(steps=512, seed=1)
RECIPES = ("keras.io example", "quick preview", LUCID, FAST)
PREVIEW_EVERY = 2
WINDOW_STRIDE = 16


@dataclass
class Run:
    """One recipe on one layer's filters: when each preview came, what it reached, the final picture."""

    seconds: np.ndarray  # (frames,) per filter, since the start
    activations: np.ndarray  # (frames, filters) target activation on each displayed preview
    pictures: np.ndarray  # (filters, H, W[, C]) uint8, the final pictures
    total: float  # seconds per filter for the whole recipe
    weak: np.ndarray  # (filters,) the app's flag: what was maximized stayed at or below zero
    optimized: np.ndarray  # (filters,) what was maximized, at the end


def machine() -> str:
    """CPU flags that decide the compute precision, cores, versions: what the numbers depend on."""
    shown = " ".join(flag for flag in SPEED_FLAGS if flag in cpu_flags()) or "none of " + " ".join(SPEED_FLAGS)
    return (f"CPU flags: {shown}; {cores()} CPU cores; TensorFlow {tf.__version__}, Keras {keras.__version__}; "
            f"compute dtype {fast_dtype()}")


def load_average() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


class Probe:
    """The target layer's channel means on uint8 pictures, in float32 (independent of the render loop)."""

    def __init__(self, loaded: LoadedModel, layer: str):
        self.model = sub_model(loaded.model, [layer])  # fully convolutional up to the layer: any picture size
        self.preprocessing = loaded.info.preprocessing

    def means(self, pictures: np.ndarray) -> np.ndarray:
        """(N, C) channel means of N pictures of one size."""
        pixels = np.asarray(pictures, np.float32)
        pixels = pixels[..., None] if pixels.ndim == 3 else pixels
        return np.asarray(self.model(preprocess(pixels, self.preprocessing), training=False)).mean(axis=(1, 2))

    def window_means(self, pictures: np.ndarray, window: int) -> np.ndarray:
        """(N, C) channel means averaged over every ``window``-sided crop at ``WINDOW_STRIDE``."""
        side = pictures.shape[1]
        offsets = range(0, side - window + 1, WINDOW_STRIDE)
        crops = [pictures[:, y:y + window, x:x + window] for y in offsets for x in offsets]
        return np.mean([self.means(crop) for crop in crops], axis=0)


def similarity(probe: Probe, pictures: np.ndarray, reference: np.ndarray, filters: list[int], window: int) -> np.ndarray:
    """Per filter: correlation of window-averaged channel means, the target channel left out."""
    ours, theirs = probe.window_means(pictures, window), probe.window_means(reference, window)
    keep = ~np.eye(ours.shape[1], dtype=bool)[filters]
    return np.array([np.corrcoef(a[k], b[k])[0, 1] for a, b, k in zip(ours, theirs, keep)])


class Turns:
    """Threads that take turns, one step each: only one computes at a time, in a fixed order."""

    def __init__(self, names: list[str]):
        self.waiting = list(names)
        self.current = 0
        self.changed = threading.Condition()

    def wait(self, name: str) -> None:
        with self.changed:
            self.changed.wait_for(lambda: self.waiting[self.current] == name)

    def pass_on(self, name: str, finished: bool = False) -> None:
        with self.changed:
            index = self.waiting.index(name)
            if finished:
                self.waiting.pop(index)
                self.current -= index < self.current
                self.current = self.current % len(self.waiting) if self.waiting else 0
            else:
                self.current = (index + 1) % len(self.waiting)
            self.changed.notify_all()


class Clock:
    """A recipe's own time: the sum of its turns."""

    def __init__(self, turns: Turns, name: str):
        self.turns, self.name, self.spent, self.since = turns, name, 0.0, 0.0

    def start(self) -> None:
        self.turns.wait(self.name)
        self.since = time.perf_counter()

    def now(self) -> float:
        return self.spent + time.perf_counter() - self.since

    def yield_turn(self, finished: bool = False) -> None:
        self.spent = self.now()
        self.turns.pass_on(self.name, finished)
        if not finished:
            self.start()


def run(loaded: LoadedModel, layer: str, filters: list[int], settings: Settings, probe: Probe,
        clock: Clock | None = None) -> Run:
    """The recipe through the app's own code path, all filters in one batch, previews every 2 steps;
    with a ``clock``, timed by its turns (one step each)."""
    settings = settings.replace(batch_size=len(filters))
    if clock is not None:
        clock.start()
    frames: list[tuple[float, np.ndarray]] = []

    def on_frame(step: int, images: dict[int, np.ndarray]) -> None:
        frames.append((clock.now() if clock else 0.0, np.stack([images[f] for f in filters])))

    def on_step(done: int, total: int) -> None:
        clock.yield_turn()

    results = visualize_filters(loaded, layer, filters, settings, cache=ResultCache(None), on_frame=on_frame if clock else None,
                                progress=on_step if clock else None, preview_every=PREVIEW_EVERY)
    total = clock.now() / len(filters) if clock else 0.0
    if clock is not None:
        clock.yield_turn(finished=True)
    frames = frames or [(0.0, np.stack([r.image for r in results]))]  # untimed: the final picture only
    columns = np.arange(len(filters))
    activations = np.array([probe.means(images)[columns, filters] for _, images in frames])
    return Run(np.array([seconds for seconds, _ in frames]) / len(filters), activations,
               np.stack([r.image for r in results]), total, np.array([r.weak for r in results]),
               np.array([r.optimized_value for r in results]))


def side_by_side(loaded: LoadedModel, layer: str, filters: list[int], recipes: dict[str, Settings],
                 probe: Probe) -> dict[str, Run]:
    """Every recipe at once, one thread each, taking turns step by step, after an untimed warm-up of each
    (the trace, and the kernels' first-use costs). Recipes differing only in steps or seed share one traced
    renderer, which serves one request at a time: they cannot take turns."""
    if len({settings.traced_part() for settings in recipes.values()}) < len(recipes):
        raise ValueError("Recipes that differ only in steps or seed cannot run side by side; compare one of them.")
    for settings in recipes.values():
        visualize_filters(loaded, layer, filters, settings.replace(steps=min(settings.steps, 32), seed=2,
                                                                   batch_size=len(filters)), cache=ResultCache(None))
    names = list(recipes)
    turns, results, failures = Turns(names), {}, []

    def work(name: str) -> None:
        try:
            results[name] = run(loaded, layer, filters, recipes[name], probe, Clock(turns, name))
        except BaseException as error:  # noqa: BLE001 - re-raised below, in the main thread
            failures.append(error)
            turns.pass_on(name, finished=True)

    threads = [threading.Thread(target=work, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return results


def time_to(target: np.ndarray, result: Run) -> np.ndarray:
    """Per filter: seconds until the activation first reaches ``target`` (inf if never)."""
    reached = result.activations >= target[None]
    return np.where(reached.any(axis=0), result.seconds[np.argmax(reached, axis=0)], np.inf)


def spread(count: int, how_many: int) -> list[int]:
    """``how_many`` filter indices spread evenly over a layer's ``count`` channels."""
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, how_many)})


def compare(loaded: LoadedModel, layer: str, filters: list[int], recipes: dict[str, Settings]
            ) -> dict[str, dict[str, np.ndarray]]:
    """Every recipe on one layer against the reference: per-filter t90, total, activation ratio, similarity."""
    probe = Probe(loaded, layer)
    reference = run(loaded, layer, filters, REFERENCE, probe)
    target = 0.9 * reference.activations[-1]
    window = min(min(s.size for s in recipes.values()), REFERENCE.size)
    return {name: {"t90": time_to(target, result), "total": np.full(len(filters), result.total),
                   "ratio": result.activations[-1] / np.maximum(reference.activations[-1], 1e-6),
                   "similarity": similarity(probe, result.pictures, reference.pictures, filters, window),
                   "weak": result.weak, "optimized": result.optimized, "shown": result.activations[-1]}
            for name, result in side_by_side(loaded, layer, filters, recipes, probe).items()}


def gather(per_layer: list[dict[str, dict[str, np.ndarray]]]) -> dict[str, dict[str, np.ndarray]]:
    return {name: {key: np.concatenate([layer[name][key] for layer in per_layer]) for key in per_layer[0][name]}
            for name in per_layer[0]}


def report_imagenet(found: dict[str, dict[str, np.ndarray]]) -> None:
    lucid = found[LUCID]
    lucid_t90, lucid_total = np.median(lucid["t90"]), np.median(lucid["total"])
    count = len(lucid["t90"])
    print(f"{'recipe':18s} {'t90 s':>7s} {'reached':>8s} {'total s':>8s} {'act/ref':>8s} {'similarity':>10s} "
          f"{'t90/Lucid t90':>14s} {'total/Lucid total':>18s}")
    for name, values in found.items():
        t90 = np.median(values["t90"])  # inf counts as slowest: the median is inf only if half never got there
        print(f"{name:18s} {t90:7.2f} {np.isfinite(values['t90']).sum():>4d}/{count:<3d} {np.median(values['total']):8.2f} "
              f"{np.median(values['ratio']):8.3f} {np.median(values['similarity']):10.3f} "
              f"{t90 / lucid_t90:14.2f} {np.median(values['total']) / lucid_total:18.2f}")


def report_small(found: dict[str, dict[str, np.ndarray]], per_layer: int) -> None:
    print(f"{'recipe':22s} {'total s':>8s} {'weak':>6s} {'maximized value':>16s} {'act. on picture':>16s} {'similarity':>10s}")
    for name, values in found.items():
        print(f"{name:22s} {np.median(values['total']):8.3f} {int(values['weak'].sum()):>3d}/{len(values['weak']):<3d}"
              f"{np.median(values['optimized']):16.3f} {np.median(values['shown']):16.3f} "
              f"{np.median(values['similarity']):10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--filters", type=int, default=32, help="ImageNet filters in all, spread over 6 layers")
    parser.add_argument("--lenet", type=int, default=16, help="first N filters of each LeNet layer")
    args = parser.parse_args()
    print(machine())
    print(f"load average at start: {load_average()}")
    per_layer = []
    cases = [(model, layer) for model, layers in IMAGENET_LAYERS.items() for layer in layers]
    for index, (model, layer) in enumerate(cases):
        loaded = load_model(model)
        how_many = args.filters // len(cases) + (index < args.filters % len(cases))
        filters = spread(find_layer(loaded.model, layer).channels, how_many)
        recipes = {name: fitted_preset(name, loaded.info.input_size) for name in RECIPES}
        per_layer.append(compare(loaded, layer, filters, recipes))
        print(f"  {model} {layer}: filters {filters} done (load {load_average()})", flush=True)
    print(f"\n{args.filters} ImageNet filters (MobileNet, EfficientNet-Lite0; 3 depths each); reference: "
          f"Lucid, 512 steps, seed 1; medians per filter")
    report_imagenet(gather(per_layer))

    lenet = load_model("lenet_mnist")
    small = {name: fitted_preset(name, lenet.info.input_size) for name in (*RECIPES, SMALL_INPUTS)}
    lenet_found = [compare(lenet, layer, list(range(args.lenet)), small) for layer in LENET_LAYERS]
    print(f"\nLeNet (28×28 grayscale), first {args.lenet} filters of {' and '.join(LENET_LAYERS)}; weak: what was "
          "maximized stayed <= 0; activation on the displayed picture")
    report_small(gather(lenet_found), args.lenet)
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
