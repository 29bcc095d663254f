"""Heatmap speed and agreement: ConvVis' Grad-CAM and Score-CAM against tf-keras-vis, one process;
then ConvVis' other methods against its own Grad-CAM and Score-CAM.

Same model (MobileNet, offline), image (chelsea), layer (conv_pw_13_relu), class (285, Egyptian
cat) and settings: Score-CAM uses every channel (tf-keras-vis' ``max_N=-1``) in batches of 32, and
both libraries score the class probability, softmax over the logits (tf-keras-vis gets the model
with ``ReplaceToLinear``, else it would softmax the probabilities again). tf-keras-vis is told not to
move to the nearest Conv layer (``seek_penultimate_conv_layer=False``): by default it would silently
explain ``conv_pw_13`` (before batch norm and ReLU) instead. Both are warmed up first, then timed
alternately ``--repeats`` times; medians are printed. Needs ``pip install -r requirements-bench.txt``.

The second part times, side by side in the same way (all warmed up, then in turn), each newer
method per image at the same layer and class: HiResCAM, XGradCAM and EigenCAM against Grad-CAM
(goal <= 1.5x: one pass each, only the weighting differs), Ablation-CAM against Score-CAM (goal
<= 1x: both weigh channels by removing them, Ablation-CAM from the layer on, Score-CAM through the
whole network), and Integrated Gradients (its default steps, no layer) for scale.

Run: ``python bench/cam_vs_tf_keras_vis.py [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from scipy.ndimage import zoom  # noqa: E402  (tf-keras-vis' own upsampling)
from tf_keras_vis import __version__ as tf_keras_vis_version  # noqa: E402
from tf_keras_vis.gradcam import Gradcam  # noqa: E402
from tf_keras_vis.scorecam import Scorecam  # noqa: E402
from tf_keras_vis.utils.model_modifiers import ReplaceToLinear  # noqa: E402
from tf_keras_vis.utils.scores import CategoricalScore  # noqa: E402

from convvis_core.batches import model_input, pixel_batch  # noqa: E402
from convvis_core.cam import (AblationCAM, ClassTarget, EigenCAM, GradCAM, HiResCAM, IntegratedGradients,  # noqa: E402
                              ScoreCAM, XGradCAM)
from convvis_core.cam.base import Scene, probe_for  # noqa: E402
from convvis_core.cam.baselines import baseline_pixels  # noqa: E402
from convvis_core.models import load_model  # noqa: E402
from convvis_core.parallel import cores  # noqa: E402
from convvis_core.precision import SPEED_FLAGS, cpu_flags  # noqa: E402
from convvis_core.samples import load_sample  # noqa: E402

LAYER, CLASS, BATCH_SIZE = "conv_pw_13_relu", 285, 32


def timed_pair(ours: Callable[[], object], theirs: Callable[[], object], repeats: int) -> tuple[float, float, object, object]:
    """Both warmed up once (tracing, model building), then timed alternately ``repeats`` times, so
    that load from other processes hits both alike; the medians and the last results."""
    results = [ours(), theirs()]
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for slot, run in enumerate((ours, theirs)):
            start = time.perf_counter()
            results[slot] = run()
            times[slot].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1]), results[0], results[1]


def timed_all(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Each run warmed up once, then all timed in turn ``repeats`` times; the median of each."""
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    keras.utils.disable_interactive_logging()  # tf-keras-vis' model.predict progress bars
    loaded = load_model("mobilenet")
    image = load_sample("chelsea")
    inputs = model_input(image, loaded.info)
    target, score = ClassTarget(CLASS), CategoricalScore([CLASS])
    gradcam, scorecam = GradCAM(), ScoreCAM(batch_size=BATCH_SIZE)
    their_gradcam = Gradcam(loaded.model, model_modifier=ReplaceToLinear(), clone=True)
    their_scorecam = Scorecam(loaded.model, model_modifier=ReplaceToLinear(), clone=True)

    ours_gc, theirs_gc, our_gradcam_map, their_gradcam_map = timed_pair(
        lambda: gradcam.explain(loaded, image, target, LAYER),
        lambda: their_gradcam(score, inputs, penultimate_layer=LAYER, seek_penultimate_conv_layer=False)[0],
        args.repeats)
    ours_sc, theirs_sc, our_scorecam_map, their_scorecam_map = timed_pair(
        lambda: scorecam.explain(loaded, image, target, LAYER),
        lambda: their_scorecam(score, inputs, penultimate_layer=LAYER, seek_penultimate_conv_layer=False,
                               max_N=-1, batch_size=BATCH_SIZE)[0],
        args.repeats)

    # The same Grad-CAM at the layer's own 7×7 resolution, before either library upsamples it.
    probe = probe_for(loaded, LAYER, target)
    pixels = pixel_batch(image, loaded.info, dtype=np.float32)
    scene = Scene(probe, pixels, baseline_pixels(image, loaded.info), target, LAYER)
    our_coarse = gradcam.raw_map(scene)
    their_coarse = their_gradcam(score, inputs, penultimate_layer=LAYER, seek_penultimate_conv_layer=False,
                                 expand_cam=False)[0]
    activations = probe.capture(pixels, target, gradients=False)[0][0]
    flat = int((activations.max(axis=(0, 1)) == activations.min(axis=(0, 1))).sum())
    zero = int((~activations.reshape(-1, activations.shape[-1]).any(axis=0)).sum())

    ours = {method.title: method for method in (gradcam, HiResCAM(), XGradCAM(), EigenCAM(), scorecam,
                                                AblationCAM(batch_size=BATCH_SIZE), IntegratedGradients())}
    medians = timed_all({title: (lambda method=method: method.explain(loaded, image, target, LAYER))
                         for title, method in ours.items()}, args.repeats)

    shown = " ".join(flag for flag in SPEED_FLAGS if flag in cpu_flags()) or "none of " + " ".join(SPEED_FLAGS)
    print(f"CPU flags: {shown}; {cores()} CPU cores for this process")
    print(f"MobileNet {LAYER} ({activations.shape[0]}×{activations.shape[1]}×{activations.shape[2]}), chelsea, "
          f"class {CLASS}; {os.cpu_count()} CPU cores, TensorFlow {tf.__version__}, Keras {keras.__version__}, "
          f"tf-keras-vis {tf_keras_vis_version}; median of {args.repeats} after a warm-up")
    print(f"Grad-CAM   ConvVis {ours_gc:7.3f} s   tf-keras-vis {theirs_gc:7.3f} s   "
          f"ratio {ours_gc / theirs_gc:.2f} (goal <= 1)")
    print(f"Score-CAM  ConvVis {ours_sc:7.3f} s   tf-keras-vis {theirs_sc:7.3f} s   "
          f"ratio {ours_sc / theirs_sc:.2f} (goal <= 0.5); {activations.shape[2]} channels each, "
          f"ConvVis skips the {flat} flat ones (their weight is exactly 0)")
    print(f"Grad-CAM Pearson correlation: {pearson(our_coarse, their_coarse):.4f} at 7×7 (goal >= 0.99), "
          f"{pearson(our_gradcam_map.values, their_gradcam_map):.4f} at 224×224; with tf-keras-vis' upsampling "
          f"(scipy zoom, corner-aligned) applied to ours: {pearson(zoom(our_coarse, 32, order=1), their_gradcam_map):.4f}")
    print(f"Score-CAM Pearson correlation at 224×224: {pearson(our_scorecam_map.values, their_scorecam_map):.4f} "
          "(ConvVis keeps each mask's share of the picture over its blurred copy and weighs a channel by the "
          "probability's rise over that copy, tf-keras-vis masks to black and weighs by the "
          "probability itself)")
    print(f"ConvVis' methods per image at {LAYER}, class {CLASS}, 224×224, median of {args.repeats} after a warm-up, "
          "all timed in turn:")
    for title, goal, reference in (("HiResCAM", 1.5, "Grad-CAM"), ("XGradCAM", 1.5, "Grad-CAM"), ("EigenCAM", 1.5, "Grad-CAM"),
                                   ("Ablation-CAM", 1.0, "Score-CAM"), ("Integrated Gradients", None, "Grad-CAM")):
        ratio = medians[title] / medians[reference]
        steps = IntegratedGradients().steps
        aim = f"(goal <= {goal:.1f})" if goal else f"({steps} steps: {steps + 1} input gradients; no goal)"
        print(f"  {title:<21} {medians[title]:7.3f} s   {reference} {medians[reference]:7.3f} s   ratio {ratio:5.2f} {aim}")
    print(f"  Ablation-CAM runs {activations.shape[2] - zero} of {activations.shape[2]} channels ({zero} are zero "
          f"everywhere) from the layer on, in batches of {BATCH_SIZE}; Score-CAM {activations.shape[2] - flat} "
          "through the whole network")


if __name__ == "__main__":
    main()
