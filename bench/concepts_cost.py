"""What the Concepts page costs on MobileNet at 224 px, against the model passes it cannot avoid.

TCAV: one concept (50 drawn stripes) against 10 random sets of 50 photo crops at 3 layers, for 50 crops of the
cat photo (class 285, Egyptian cat), against the floor written plainly in Keras: the 550 concept and random images
forward once up to the deepest layer (a sub-model's ``predict``), the 50 target images forward and backward once
(a traced gradient of the class's score with respect to the earliest layer). Then the same test of a second concept against the same random sets (their activations and random
CAVs come from the cache), and where the first test's time goes. Image sets are made before timing (their cost is
printed apart). Each section is a function, so another method's cost is one more function.

    .venv/bin/python bench/concepts_cost.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from convvis_core.batches import pixel_batch  # noqa: E402
from convvis_core.cache import ResultCache  # noqa: E402
from convvis_core.cam.base import BATCH_SIZE  # noqa: E402
from convvis_core.cam.targets import ClassTarget  # noqa: E402
from convvis_core.concepts.image_sets import ImageSet, crops_set, probe_set, random_sets  # noqa: E402
from convvis_core.concepts.probes import ProbeConcept  # noqa: E402
from convvis_core.concepts.tcav import PASSES, tcav  # noqa: E402
from convvis_core.models import LoadedModel, load_model  # noqa: E402
from convvis_core.parallel import cores  # noqa: E402
from convvis_core.precision import SPEED_FLAGS, cpu_flags  # noqa: E402
from convvis_core.preprocessing import preprocess  # noqa: E402
from convvis_core.samples import load_sample  # noqa: E402

LAYERS = ["conv_pw_9_relu", "conv_pw_11_relu", "conv_pw_13_relu"]
CAT = 285  # Egyptian cat
IMAGES, RUNS = 50, 10


def header() -> None:
    shown = " ".join(flag for flag in SPEED_FLAGS if flag in cpu_flags()) or "none of " + " ".join(SPEED_FLAGS)
    print(f"CPU flags: {shown}; {cores()} CPU cores for this process; load average {os.getloadavg()[0]:.1f} "
          "(a shared machine: other processes' load makes these numbers noisy)")


def timed(work) -> tuple[float, object]:
    start = time.perf_counter()
    found = work()
    return time.perf_counter() - start, found


def floor(loaded: LoadedModel, forward: list[ImageSet], backward: ImageSet) -> float:
    """The passes no concept test can avoid, written plainly in Keras: every concept and random image forward once
    up to the deepest layer tested (a sub-model's ``predict``), the target's images forward through the whole model
    and backward down to the earliest layer tested."""
    model, mode = loaded.model, loaded.info.preprocessing
    deepest = keras.Model(model.inputs, model.get_layer(LAYERS[-1]).output)
    both = keras.Model(model.inputs, [model.get_layer(LAYERS[0]).output, model.output])

    @tf.function(reduce_retracing=True)
    def gradient(pixels: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            earliest, scores = both(preprocess(pixels, mode), training=False)
            score = tf.reduce_sum(scores[:, CAT])
        return tape.gradient(score, earliest)

    def batches(found: ImageSet):
        for start in range(0, len(found), BATCH_SIZE):
            yield pixel_batch(list(found.images[start:start + BATCH_SIZE]), loaded.info).astype(np.float32)

    gradient(next(batches(backward)))  # traced before timing
    start = time.perf_counter()
    for found in forward:
        for pixels in batches(found):
            deepest.predict(preprocess(pixels, mode), batch_size=BATCH_SIZE, verbose=0)
    for pixels in batches(backward):
        gradient(tf.constant(pixels)).numpy()
    return time.perf_counter() - start


def tcav_section() -> None:
    loaded = load_model("mobilenet")
    size = loaded.info.input_size
    made, (stripes, dots, cats, random) = timed(lambda: (
        probe_set(ProbeConcept("stripes"), IMAGES, size), probe_set(ProbeConcept("dots"), IMAGES, size),
        crops_set(load_sample("chelsea"), IMAGES, "the cat photo", size=size),
        random_sets("photos", RUNS, IMAGES, size)))
    print(f"TCAV on MobileNet (224 px) at {', '.join(LAYERS)}: {IMAGES} concept images, {IMAGES} target images (crops of "
          f"the cat photo, class {CAT}), {RUNS} random sets of {IMAGES} photo crops; sets made in {made:.1f} s (not "
          "counted below)")
    warm = random[:3]
    tcav(loaded, dots, cats, ClassTarget(CAT), LAYERS, warm, cache=ResultCache(None))  # traces, not measured
    floor(loaded, [stripes], cats)
    passes = floor(loaded, [stripes, *random], cats)
    cache = ResultCache(Path(tempfile.mkdtemp(prefix="convvis-concepts-bench-")))
    before = {kind: PASSES[kind] for kind in ("forward", "forward+backward")}
    images = IMAGES * (RUNS + 2)
    marks: dict[str, float] = {"start": time.perf_counter()}

    def progress(done: int, total: int) -> None:  # the images come first, then the CAVs
        marks["images"] = time.perf_counter() if done <= images else marks["images"]

    first, result = timed(lambda: tcav(loaded, stripes, cats, ClassTarget(CAT), LAYERS, random, progress=progress,
                                       cache=cache))
    passed = {kind: PASSES[kind] - count for kind, count in before.items()}
    through = marks["images"] - marks["start"]
    print(f"floor (the {IMAGES * (RUNS + 1)} concept and random images forward to {LAYERS[-1]}, the {IMAGES} target "
          f"images forward and backward to {LAYERS[0]}): {passes:.1f} s")
    print(f"TCAV, {len(LAYERS)} layers × {RUNS} runs (+ {RUNS} random CAVs a layer), on-disk cache empty: {first:.1f} s; "
          f"ratio {first / passes:.2f} (target ≤ 1.3); images through the model: {passed['forward']} forward, "
          f"{passed['forward+backward']} forward and backward")
    print(f"  where it goes: images through the model (and their activations stored) {through:.1f} s "
          f"({through / passes:.2f} of the floor), {2 * RUNS * len(LAYERS)} CAVs fitted and scored {first - through:.1f} s")
    for score in result.layers:
        print(f"  {score.summary()}")
    second, other = timed(lambda: tcav(loaded, dots, cats, ClassTarget(CAT), LAYERS, random, cache=cache))
    print(f"a second concept (dots) against the same random sets: {second:.1f} s ({second / passes:.2f} of the floor: "
          f"its own {IMAGES} images forward, random activations and random CAVs from the cache)")
    cache.forget_memory()
    again, _ = timed(lambda: tcav(loaded, stripes, cats, ClassTarget(CAT), LAYERS, random, cache=cache))
    print(f"the first test again, from the disk cache: {again:.2f} s")


def main() -> None:
    header()
    tcav_section()


if __name__ == "__main__":
    main()
