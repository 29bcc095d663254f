"""Cost of comparing two models: CKA of 28 MobileNet layers (and every filter's activation change) over
1,000 gallery-size images, against one plain ``predict`` pass of both models over the same images
(the floor: the forward passes). Then where the time goes: the traced pass over the same decoded batches
run part by part (the forward passes alone, + the Gram matrices, + the per-image moments), and what
``compare_models`` adds to the whole pass (reading and resizing the images where the prefetch does not
hide it, the host transfers, the float64 sums). Memory: peak RSS of the comparison at 500 and at 2,000
images, each in a fresh process, so it shows whether memory grows with the number of images.

The 1,000 images are the packaged photo gallery (12 photos, about 300 × 450) repeated: decoding and
resizing them is part of both measurements. Model B is MobileNet with every weight perturbed by 1 %,
so the two passes are different models as in a real comparison.

    .venv/bin/python bench/compare_cost.py [--images 1000]
    ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python bench/compare_cost.py   # oneDNN's kernels as on an AVX2-only CPU
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from convvis_core.batches import pixel_batch, prefetched, preprocessed  # noqa: E402
from convvis_core.cache import ResultCache  # noqa: E402
from convvis_core.compare.similarity import BATCH_SIZE, PARTS, compare_models, comparison_pass  # noqa: E402
from convvis_core.datasets.base import Dataset  # noqa: E402
from convvis_core.datasets.catalog import open_dataset  # noqa: E402
from convvis_core.layers import spatial_layers  # noqa: E402
from convvis_core.models import LoadedModel, load_model  # noqa: E402
from convvis_core.parallel import cores  # noqa: E402
from convvis_core.precision import SPEED_FLAGS, cpu_flags  # noqa: E402

LAYER_COUNT = 28


class Repeated(Dataset):
    """The gallery's photos, repeated to ``count`` images."""

    def __init__(self, count: int):
        self.gallery = open_dataset("gallery")
        super().__init__(f"gallery × {count}", f"gallery-repeated-{count}")
        self.count = count

    def __len__(self) -> int:
        return self.count

    def image(self, index: int) -> np.ndarray:
        return self.gallery.image(index % len(self.gallery))


def models() -> tuple[LoadedModel, LoadedModel, list[str]]:
    a = load_model("mobilenet")
    model = keras.models.clone_model(a.model)
    rng = np.random.default_rng(0)
    model.set_weights([w * (1 + 0.01 * rng.standard_normal(w.shape)).astype(w.dtype) for w in a.model.get_weights()])
    b = LoadedModel(model, a.info)
    spatial = spatial_layers(a.model)
    relus = [layer.path for layer in spatial if layer.kind in ("ReLU", "Activation")]  # 27: every block's output
    return a, b, (relus + [layer.path for layer in spatial if layer.path not in relus][-1:])[:LAYER_COUNT]


def plain_predict(a: LoadedModel, b: LoadedModel, dataset: Dataset) -> float:
    """Both models' ``predict`` over the images, read and resized the same way: the floor."""
    start = time.perf_counter()
    batches = ((indices, pixel_batch(images, a.info)) for indices, images in dataset.batches(BATCH_SIZE))
    for _, pixels in prefetched(batches):
        inputs = preprocessed(pixels, a.info.preprocessing)
        a.model.predict(inputs, batch_size=BATCH_SIZE, verbose=0)
        b.model.predict(inputs, batch_size=BATCH_SIZE, verbose=0)
    return time.perf_counter() - start


def parts(a: LoadedModel, b: LoadedModel, layers: list[str], dataset: Dataset) -> dict[str, float]:
    """The traced pass over decoded batches (decoded before timing), with each part added in turn; the
    variants take turns batch by batch, so a neighbour's load falls on all of them alike."""
    batches = [tf.constant(pixel_batch(images, a.info)) for _, images in dataset.batches(BATCH_SIZE)]
    paired = tuple((path, path) for path in layers)
    names = [" + ".join(("forward passes",) + PARTS[:count]) for count in range(len(PARTS) + 1)]
    runs = [comparison_pass(a, b, tuple(layers), tuple(layers), paired, PARTS[:count]) for count in range(len(PARTS) + 1)]
    times = dict.fromkeys(names, 0.0)
    for run in runs:
        for pixels in (batches[0], batches[-1]):  # traced before timing, for the last (smaller) batch too
            run(pixels, pixels)
    for pixels in batches:
        for name, run in zip(names, runs):
            start = time.perf_counter()
            run(pixels, pixels)
            times[name] += time.perf_counter() - start
    return times


def compare(a: LoadedModel, b: LoadedModel, layers: list[str], dataset: Dataset) -> float:
    start = time.perf_counter()
    compare_models(a, b, dataset, len(dataset), layers=layers, cache=ResultCache(Path(tempfile.mkdtemp())))
    return time.perf_counter() - start


def memory_child(count: int) -> None:
    a, b, layers = models()
    compare(a, b, layers, Repeated(count))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        return memory_child(args.memory_child)
    shown = " ".join(flag for flag in SPEED_FLAGS if flag in cpu_flags()) or "none of " + " ".join(SPEED_FLAGS)
    limited = os.environ.get("ONEDNN_MAX_CPU_ISA")  # e.g. AVX2: oneDNN's kernels as on a CPU without AVX-512
    shown += f" (oneDNN limited to {limited} by ONEDNN_MAX_CPU_ISA)" if limited else ""
    print(f"CPU flags: {shown}; {cores()} CPU cores for this process; load average {os.getloadavg()[0]:.1f} "
          "(a shared machine: other processes' load makes these numbers noisy)")
    a, b, layers = models()
    print(f"MobileNet vs MobileNet with weights perturbed by 1 %, {len(layers)} layers ({layers[0]} … {layers[-1]}), "
          f"{args.images:,} gallery-size images, batches of {BATCH_SIZE}")
    warm = Repeated(BATCH_SIZE)
    plain_predict(a, b, warm), compare(a, b, layers, warm)  # traces and first-call costs, not measured
    dataset = Repeated(args.images)
    floor = plain_predict(a, b, dataset)
    cost = compare(a, b, layers, dataset)
    print(f"plain predict of both models: {floor:.1f} s; CKA of {len(layers)} layers + activation change: {cost:.1f} s; "
          f"ratio {cost / floor:.2f} (target ≤ 1.3)")
    print("where the time goes (the traced pass over the same images, decoded beforehand):")
    previous = 0.0
    for name, seconds in parts(a, b, layers, dataset).items():
        print(f"  {name:<44} {seconds:6.1f} s  (+{seconds - previous:.1f} s, {seconds / floor:.2f} of the floor)")
        previous = seconds
    print(f"  {'compare_models (+ decoding, transfers, sums)':<44} {cost:6.1f} s  (+{cost - previous:.1f} s)")
    for count in (500, 2000):
        found = subprocess.run([sys.executable, __file__, "--memory-child", str(count)], capture_output=True, text=True,
                               check=True).stdout.split()[-1]
        print(f"peak RSS comparing over {count:,} images: {found} MiB")


if __name__ == "__main__":
    main()
