"""Top-k scan throughput: ConvVis' streamed scan against plain ``predict`` of the truncated model, one run.

Both see the same images. ``predict`` gets them already preprocessed (its input preparation is not
timed) and returns every map; the scan starts from the uint8 dataset (preparation timed) and keeps only
the running top-k, bottom-k and per-image maxima for every filter. Goal: at least 0.9 of predict's
images/s. Peak memory: Python and numpy allocations (tracemalloc, in separate untimed runs; TensorFlow's
own buffers are not counted, they are alike for both). Run: ``python bench/topk_throughput.py [--images 256]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from convvis_core.batches import pixel_batch, preprocessed  # noqa: E402
from convvis_core.cache import ResultCache  # noqa: E402
from convvis_core.datasets.base import ArrayDataset  # noqa: E402
from convvis_core.datasets.packaged import mnist_dataset  # noqa: E402
from convvis_core.layers import find_layer  # noqa: E402
from convvis_core.models import load_model  # noqa: E402
from convvis_core.topk import scan  # noqa: E402

CASES = (("mobilenet", "conv_pw_13_relu"), ("lenet_mnist", "conv2_relu"))


def best_times(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall-clock seconds of each run, the runs interleaved so that both meet the same load
    (the machine may be shared; the minimum is the least disturbed)."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def python_peak_mb(run: Callable[[], object]) -> float:
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def bench(model_name: str, layer_path: str, images: int, batch_size: int, repeats: int) -> None:
    loaded = load_model(model_name)
    layer = find_layer(loaded.model, layer_path)
    digits = mnist_dataset().images
    dataset = ArrayDataset(f"{images} MNIST digits", f"bench-{images}", digits[:images])
    inputs = preprocessed(pixel_batch(dataset.images, loaded.info), loaded.info.preprocessing).numpy()
    truncated = keras.Model(loaded.model.inputs, loaded.model.get_layer(layer_path).output)

    def run_predict() -> object:
        return truncated.predict(inputs, batch_size=batch_size, verbose=0)

    def run_scan() -> object:
        return scan(loaded, dataset, layer_path, batch_size=batch_size, cache=ResultCache(None))

    run_predict()  # tracing and one-time start-up, outside the timings
    run_scan()
    seconds = best_times({"predict": run_predict, "scan": run_scan}, repeats)
    predict_seconds, scan_seconds = seconds["predict"], seconds["scan"]
    scan_peak, predict_peak = python_peak_mb(run_scan), python_peak_mb(run_predict)

    height, width = loaded.info.input_size
    print(f"{model_name} {layer_path} ({layer.shape_text}), {images} MNIST digits -> {height}×{width}×"
          f"{loaded.info.channels}, batch {batch_size}, best of {repeats}")
    print(f"  predict (truncated model):     {images / predict_seconds:8.1f} images/s   peak Python memory "
          f"{predict_peak:7.1f} MiB")
    print(f"  ConvVis scan ({layer.channels:>4} filters):   {images / scan_seconds:8.1f} images/s   peak Python memory "
          f"{scan_peak:7.1f} MiB")
    print(f"  scan / predict throughput: {predict_seconds / scan_seconds:.2f}  (goal >= 0.90)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU cores, TensorFlow {tf.__version__}, Keras {keras.__version__}")
    for model_name, layer_path in CASES:
        bench(model_name, layer_path, args.images if model_name == "mobilenet" else 5000, args.batch_size,
              args.repeats)


if __name__ == "__main__":
    main()
