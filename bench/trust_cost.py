"""Cost of the model randomization check, and what it finds on MobileNet (Adebayo et al. 2018's result).

1. Cost: the cascading check of Grad-CAM at conv_pw_13_relu (the layers above it re-initialized from the
   output down, a map per step, on the model's copy) against the same number of Grad-CAM maps on the
   unchanged model, side by side (median of ``--repeats``, alternating, after a warm-up of both: the
   first check on a model copies it and traces the copy's passes once, printed apart). Both for the
   layers above conv_pw_13_relu (the check the flag needs) and for every weighted layer (the paper's
   full cascade). Target: at most 1.2× the maps it needs. Then the proof that the copy is restored bit
   for bit, and that the model itself was never touched.
2. The cascading curves (Spearman rank correlation of |map| with the original, per step, every weighted
   layer from the output down) of the gradient (``saliency``), Grad-CAM and, where present in METHODS,
   Guided Backpropagation and Guided Grad-CAM, on the Egyptian cat.

    .venv/bin/python bench/trust_cost.py [--repeats 5]
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

import numpy as np  # noqa: E402

from convvis_core.cache import ResultCache  # noqa: E402
from convvis_core.cam import METHODS, ClassTarget, heatmap  # noqa: E402
from convvis_core.cam.randomization import (Randomizer, Resemblance, randomizable, randomization_steps,  # noqa: E402
                                            sanity_check)
from convvis_core.models import load_model  # noqa: E402
from convvis_core.samples import load_sample  # noqa: E402
from convvis_testing.timing import machine_line, side_by_side, timed  # noqa: E402

LAYER = "conv_pw_13_relu"
CURVES = ("saliency", "gradcam", "guided_backprop", "guided_gradcam")  # those METHODS holds


def median_time(run: Callable[[], object], repeats: int) -> float:
    """Median CPU seconds of ``run``."""
    return statistics.median(timed(run)[1] for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(machine_line())
    loaded, image = load_model("mobilenet"), load_sample("chelsea")
    trained = [variable.numpy().copy() for variable in loaded.model.weights]
    target = ClassTarget(285)
    start = time.perf_counter()
    heatmap(loaded, image, "gradcam", target, LAYER)
    first_map = time.perf_counter() - start
    start = time.perf_counter()
    sanity_check(loaded, image, "gradcam", target, LAYER, cache=ResultCache(None))
    first_check = time.perf_counter() - start
    print(f"MobileNet, Grad-CAM at {LAYER} of the Egyptian cat; median of {args.repeats} runs each, after a warm-up.\n"
          f"The first map on the model (tracing) took {first_map:.2f} s; the first check on it {first_check:.2f} s "
          "(copying the model once, tracing the copy's passes once, and its maps)")
    for depth in ("above", "all"):
        steps = len(randomization_steps(loaded, LAYER, target, depth))
        check = lambda: sanity_check(loaded, image, "gradcam", target, LAYER, depth=depth,  # noqa: E731
                                     cache=ResultCache(None))
        maps = lambda: [heatmap(loaded, image, "gradcam", target, LAYER) for _ in range(steps + 1)]  # noqa: E731
        check(), maps()
        (check_s, check_cpu), (maps_s, maps_cpu) = side_by_side(check, maps, args.repeats)
        verdict = "within" if check_s <= 1.2 * maps_s else "OVER"
        print(f"  layers {'above ' + LAYER if depth == 'above' else 'all weighted'} ({steps} step{'s' * (steps > 1)}): "
              f"check {check_s:.2f} s ({check_cpu:.2f} s CPU); {steps + 1} Grad-CAM maps {maps_s:.2f} s "
              f"({maps_cpu:.2f} s CPU); ratio {check_s / maps_s:.2f} wall, {check_cpu / maps_cpu:.2f} CPU "
              f"({verdict} the 1.2 target)")
    original = heatmap(loaded, image, "gradcam", target, LAYER).values
    with randomizable(loaded) as copy:
        randomizer = Randomizer(copy.model, seed=0)
        step = randomization_steps(loaded, LAYER, target)[0]
        drawing = median_time(lambda: randomizer.draw(step), args.repeats)
        drawn = randomizer.draw(step)
        swapping = median_time(lambda: (randomizer.assign(step, drawn), randomizer.restore()), args.repeats)
        ranking = median_time(lambda: Resemblance(original), args.repeats)
        resemblance = Resemblance(original)
        measuring = median_time(lambda: (resemblance.spearman(original[::-1]), resemblance.ssim(original[::-1])),
                                args.repeats)
    print(f"  the check's own work on {step.name} (CPU seconds, median): drawing its new weights {drawing:.3f}, "
          f"putting them in place and restoring {swapping:.3f}, ranking the original map {ranking:.3f}, "
          f"Spearman and SSIM of a map {measuring:.3f}")
    with randomizable(loaded) as copy:
        restored = all(np.array_equal(mine.numpy(), theirs.numpy())
                       for mine, theirs in zip(copy.model.weights, loaded.model.weights, strict=True))
    untouched = all(np.array_equal(variable.numpy(), value) for variable, value in zip(loaded.model.weights, trained))
    print(f"  the copy's {len(trained)} variables equal the model's bit for bit after every check: {restored}; "
          f"the model itself untouched: {untouched}")

    print("\nCascading curves (every weighted layer from the output down; Spearman rank correlation of |map| with "
          "the original; a convolution and its BatchNormalization are one step):")
    curves = {name: sanity_check(loaded, image, name, target, LAYER, depth="all", cache=ResultCache(None))
              for name in CURVES if name in METHODS}
    steps = next(iter(curves.values())).steps
    width = 2 + max(len(METHODS[name].title) for name in curves)
    print(f"  {'step':<36}" + "".join(f"{METHODS[name].title:>{width}}" for name in curves))
    for index, step in enumerate(steps):
        print(f"  {step:<36}" + "".join(f"{check.spearman[index]:>{width}.3f}" for check in curves.values()))
    for check in curves.values():
        print(f"  {check.sentence()}")
    missing = [name for name in CURVES if name not in METHODS]
    if missing:
        print(f"  (not in METHODS on this branch: {', '.join(missing)})")


if __name__ == "__main__":
    main()
