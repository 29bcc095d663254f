"""Cost of the heatmap methods that only read the model's outputs, against a plain ``predict`` of as many
images: RISE with 2,000 masks and Occlusion with about 2,500 windows on MobileNet (goal: each at most
1.1× the predict), then the deletion/insertion curves of one map at 16 and at 50 steps.

Each method builds its masked or occluded copies inside one traced pass, batch by batch; the
floor is Keras' own ``model.predict`` over the same number of already preprocessed images in batches
of the same size (32); a second is ConvVis' own traced score pass (``Probe.scores``, each batch run
whole) over plain images. The methods run each batch as one slice per core
(:func:`convvis_core.parallel.in_slices`), which is why they beat both. The work is cut into chunks (RISE: 4 × 500 masks; Occlusion: 4 × 625
windows), method and predict taking turns chunk by chunk, so a neighbour's load on this shared
machine falls on both alike; both are traced before timing.

    .venv/bin/python bench/black_box_cost.py [--chunks 4]
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
import tensorflow as tf  # noqa: E402

from convvis_core.cam import RISE, ClassTarget, Occlusion, faithfulness, heatmap  # noqa: E402
from convvis_core.cam.base import BATCH_SIZE, probe_for  # noqa: E402
from convvis_core.batches import model_input, pixel_batch  # noqa: E402
from convvis_core.models import LoadedModel, load_model  # noqa: E402
from convvis_core.parallel import cores  # noqa: E402
from convvis_core.precision import SPEED_FLAGS, cpu_flags  # noqa: E402
from convvis_core.samples import load_sample  # noqa: E402

MASKS_PER_CHUNK = 500
OCCLUSION = {"patch": 32, "stride": 8}  # 25 × 25 = 625 windows on 224 px (the page's default: 32 and 16, 169)
TARGET = ClassTarget(285)  # Egyptian cat


def predict(loaded: LoadedModel, batch: np.ndarray, count: int) -> float:
    """Seconds for Keras' ``predict`` of ``count`` preprocessed images in batches of ``len(batch)``."""
    full, rest = divmod(count, len(batch))
    data = tf.data.Dataset.from_tensors(batch).repeat(full)
    if rest:
        data = data.concatenate(tf.data.Dataset.from_tensors(batch[:rest]))
    start = time.perf_counter()
    loaded.model.predict(data, verbose=0)
    return time.perf_counter() - start


def traced_scores(loaded: LoadedModel, pixels: np.ndarray, count: int) -> float:
    """Seconds for ConvVis' traced score pass over ``count`` images (0..255 pixels) in batches of ``len(pixels)``."""
    probe = probe_for(loaded, None, TARGET)
    start = time.perf_counter()
    for first in range(0, count, len(pixels)):
        probe.scores(pixels[:min(len(pixels), count - first)], TARGET)
    return time.perf_counter() - start


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def side_by_side(name: str, explain, images: int, chunks: int, loaded: LoadedModel, batch: np.ndarray,
                 pixels: np.ndarray) -> None:
    """``explain()`` (``images`` forward passes) against predicting as many images, taking turns."""
    explain(), predict(loaded, batch, images), traced_scores(loaded, pixels, images)  # traces, not measured
    ours = floor = traced = 0.0
    for _ in range(chunks):
        floor += predict(loaded, batch, images)
        ours += timed(explain)
        traced += traced_scores(loaded, pixels, images)
    print(f"{name:<30} {ours:6.1f} s   predict of {chunks * images:,} images {floor:6.1f} s   ratio {ours / floor:.2f} "
          f"(goal <= 1.1);   traced score pass {traced:6.1f} s, ratio {ours / traced:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=4)
    args = parser.parse_args()
    shown = " ".join(flag for flag in SPEED_FLAGS if flag in cpu_flags()) or "none of " + " ".join(SPEED_FLAGS)
    print(f"CPU flags: {shown}; {cores()} CPU cores for this process; load average {os.getloadavg()[0]:.1f} "
          "(a shared machine: other processes' load makes these numbers noisy)")
    loaded, image = load_model("mobilenet"), load_sample("chelsea")
    print(f"MobileNet, chelsea, class 285, blurred baseline; TensorFlow {tf.__version__}; batches of {BATCH_SIZE}")
    rng = np.random.default_rng(0)
    pixels = model_input(image, loaded.info)
    batch = (pixels + rng.normal(0, 0.01, (BATCH_SIZE,) + pixels.shape[1:])).astype(np.float32)  # distinct images
    raw = np.clip(pixel_batch(image, loaded.info, dtype=np.float32) + rng.normal(0, 2, (BATCH_SIZE,) + pixels.shape[1:]), 0, 255)
    raw = raw.astype(np.float32)

    rise = RISE(masks=MASKS_PER_CHUNK)
    side_by_side(f"RISE, {args.chunks} × {MASKS_PER_CHUNK} masks", lambda: rise.explain(loaded, image, TARGET),
                 MASKS_PER_CHUNK, args.chunks, loaded, batch, raw)
    occlusion = Occlusion(**OCCLUSION)
    windows = len(occlusion.corners(loaded.info.input_size)) + 1  # + the intact image
    side_by_side(f"Occlusion, {args.chunks} × {windows} images", lambda: occlusion.explain(loaded, image, TARGET),
                 windows, args.chunks, loaded, batch, raw)
    default = Occlusion()
    print(f"(Occlusion's defaults, patch {default.sizes(loaded.info.input_size)[0]} px, stride "
          f"{default.sizes(loaded.info.input_size)[1]} px: {len(default.corners(loaded.info.input_size))} windows, "
          f"{timed(lambda: default.explain(loaded, image, TARGET)):.1f} s; RISE's default 500 masks: one chunk above)")

    gradcam = heatmap(loaded, image, "gradcam", TARGET)
    faithfulness(loaded, image, gradcam, steps=16), faithfulness(loaded, image, gradcam)  # traced
    for steps in (16, 50):
        seconds = min(timed(lambda: faithfulness(loaded, image, gradcam, steps=steps)) for _ in range(3))
        floor = min(predict(loaded, batch, 2 * (steps + 1)) for _ in range(3))
        print(f"deletion + insertion, {steps} steps ({2 * (steps + 1)} images): {seconds:.2f} s "
              f"(predict of as many: {floor:.2f} s; best of 3)")


if __name__ == "__main__":
    main()
