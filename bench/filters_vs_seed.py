"""Feature visualization speed: the seed's keras.io loop against ConvVis' core, same settings, one run.

Settings (issue 3): ResNet50V2 (weights=None), conv3_block4_out, 180 px, 30 steps of L2-normalized
ascent of 10, 16 filters. Run: ``python bench/filters_vs_seed.py [--filters 16]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from convvis_core.featureviz import preset, visualize_filters  # noqa: E402
from convvis_core.cache import ResultCache  # noqa: E402
from convvis_core.models import LoadedModel, ModelInfo  # noqa: E402

SIZE, LAYER, STEPS, LEARNING_RATE = 180, "conv3_block4_out", 30, 10.0


def seed_loop(model: keras.Model, filters: list[int]) -> list[np.ndarray]:
    """The keras.io example as the seeds run it (a Python int filter index re-traces per filter)."""
    feature_extractor = keras.Model(inputs=model.inputs, outputs=model.get_layer(name=LAYER).output)

    def compute_loss(input_image, filter_index):
        activation = feature_extractor(input_image)
        return tf.reduce_mean(activation[:, 2:-2, 2:-2, filter_index])

    @tf.function
    def gradient_ascent_step(img, filter_index, learning_rate):
        with tf.GradientTape() as tape:
            tape.watch(img)
            loss = compute_loss(img, filter_index)
        grads = tf.math.l2_normalize(tape.gradient(loss, img))
        return loss, img + learning_rate * grads

    images = []
    for filter_index in filters:
        img = (tf.random.uniform((1, SIZE, SIZE, 3)) - 0.5) * 0.25
        for _ in range(STEPS):
            loss, img = gradient_ascent_step(img, filter_index, LEARNING_RATE)
        images.append(img[0].numpy())
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    filters = list(range(args.filters))
    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50V2(weights=None, include_top=False)
    model(tf.zeros((1, SIZE, SIZE, 3)))  # one-time TensorFlow start-up, outside both timings
    loaded = LoadedModel(model, ModelInfo("resnet50v2-random", "ResNet50V2 (random weights)", "bench",
                                          (SIZE, SIZE), 3, "tf"))
    settings = preset("keras.io example").replace(size=SIZE, steps=STEPS, batch_size=args.batch_size)

    start = time.perf_counter()
    seed_loop(model, filters)
    seed_seconds = time.perf_counter() - start

    start = time.perf_counter()
    results = visualize_filters(loaded, LAYER, filters, settings, cache=ResultCache(None))
    ours_seconds = time.perf_counter() - start
    raised = sum(r.final_activation > r.start_activation for r in results)

    print(f"ResNet50V2 {LAYER}, {SIZE} px, {STEPS} steps, {len(filters)} filters, "
          f"{os.cpu_count()} CPU cores, TensorFlow {tf.__version__}")
    print(f"seed loop (keras.io example):   {seed_seconds:7.2f} s  ({seed_seconds / len(filters):.2f} s per filter)")
    print(f"ConvVis core (batch {args.batch_size:>2}):      {ours_seconds:7.2f} s  ({ours_seconds / len(filters):.2f} s per filter; "
          f"{raised}/{len(filters)} filters raised)")
    print(f"speed-up: {seed_seconds / ours_seconds:.2f}x")


if __name__ == "__main__":
    main()
