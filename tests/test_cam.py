"""Heatmaps: maps checked against ground truth (a model trained here to find a square), against an
independent Grad-CAM written from the formula, and by their faithfulness on real photos (the page:
test_heatmaps_page.py)."""

from __future__ import annotations

import dataclasses
import functools
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from convvis_core.batches import model_input
from convvis_core.cam import (ClassTarget, EmptyHeatmapError, FilterTarget, ScoreCAM, default_target, faithfulness,
                              heatmap)
from convvis_core.errors import ConvVisError
from convvis_core.models import LoadedModel, ModelInfo
from convvis_core.samples import load_sample

SIDE, SQUARE = 32, 6


def squares(count: int, seed: int, square: int = SQUARE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise images, half of them (label 1) with a bright square (of side ``square``) somewhere; and
    each square's corner."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 150, (count, SIDE, SIDE))
    labels = rng.integers(0, 2, count)
    corners = rng.integers(0, SIDE - square + 1, (count, 2))
    for image, label, (top, left) in zip(images, labels, corners):
        if label:
            image[top:top + square, left:left + square] = 255
    return images.astype(np.uint8), labels, corners


@functools.lru_cache(maxsize=None)
def square_detector(square: int = SQUARE) -> LoadedModel:
    """A small CNN trained here on :func:`squares` (of side ``square``): class 1 = a square is present.
    Trained once per size and session (seeded, so the same model): tests that share it only read it."""
    keras.utils.set_random_seed(0)
    images, labels, _ = squares(600, seed=0, square=square)
    model = keras.Sequential([
        keras.Input((SIDE, SIDE, 1)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
        keras.layers.MaxPooling2D(name="pool"),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2, name="logits"),
        keras.layers.Softmax(name="probabilities"),
    ])
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(images[..., None] / 255.0, labels, epochs=8, batch_size=32, verbose=0)
    return LoadedModel(model, ModelInfo("squares", "Squares", "test", (SIDE, SIDE), 1, "unit", ("absent", "present")))


def test_gradcam_finds_the_square_a_model_learned_to_detect():
    loaded = square_detector()
    model = loaded.model

    held_out, held_labels, corners = squares(200, seed=1)
    assert (model.predict(held_out[..., None] / 255.0, verbose=0).argmax(-1) == held_labels).mean() > 0.95
    hits = []
    for image, (top, left) in zip(held_out[held_labels == 1], corners[held_labels == 1]):
        values = heatmap(loaded, Image.fromarray(image), "gradcam", ClassTarget(1), "conv2").values
        row, column = np.unravel_index(np.argmax(values), values.shape)
        hits.append(top <= row < top + SQUARE and left <= column < left + SQUARE)
    assert len(hits) > 80 and np.mean(hits) >= 0.9, np.mean(hits)


def test_gradcam_equals_the_formula_computed_independently(mobilenet):
    model, image = mobilenet.model, load_sample("chelsea")
    x = tf.constant(model_input(image, mobilenet.info))
    logits = model.get_layer("predictions").input  # the softmax layer's input
    probe = keras.Model(model.inputs[0], [model.get_layer("conv_pw_13_relu").output, logits])
    with tf.GradientTape() as tape:
        activations, scores = probe(x, training=False)
        score = scores[0, 285]
    gradients = tape.gradient(score, activations)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(activations * weights, axis=-1, keepdims=True))
    cam = tf.image.resize(cam, (224, 224), method="bilinear").numpy()[0, :, :, 0]
    expected = (cam - cam.min()) / (cam.max() - cam.min())
    np.testing.assert_allclose(tf.nn.softmax(scores).numpy(), model(x).numpy(), atol=1e-6)  # they are the logits

    result = heatmap(mobilenet, image, "gradcam", ClassTarget(285), "conv_pw_13_relu")
    assert result.values.shape == (224, 224) and result.values.dtype == np.float32
    np.testing.assert_allclose(result.values, expected, atol=1e-4)
    assert heatmap(mobilenet, image, "gradcam").target == ClassTarget(285)  # default: the top class, pinned


def test_scorecam_in_batches_equals_one_mask_at_a_time(lenet):
    digit = load_sample("digit_7")
    one_by_one = ScoreCAM(batch_size=1).explain(lenet, digit, layer="conv2_relu")
    batched = ScoreCAM(batch_size=16).explain(lenet, digit, layer="conv2_relu")  # 50 channels: 16, 16, 16, rest
    assert one_by_one.target == batched.target == ClassTarget(7)
    np.testing.assert_allclose(batched.values, one_by_one.values, atol=1e-5)
    assert batched.values.max() == 1.0 and batched.values.min() == 0.0


@pytest.mark.parametrize("photo", ["chelsea", "coffee"])
def test_gradcam_is_more_faithful_than_random_and_inverted_maps(mobilenet, photo):
    """Deletion must fall faster along Grad-CAM's order than along its inverse, and insertion rise faster
    than along random orders. Deletion beats random orders on coffee (0.07 vs > 0.2), not on chelsea:
    there Grad-CAM ranks the forehead first, and scattered random pixels wreck the fur texture MobileNet
    reads (0.32 vs about 0.15-0.2), which is the kind of verdict the page exists to show."""
    image, steps = load_sample(photo), 16  # orders, not areas to the third decimal: 16 steps, a third of the cost
    gradcam = heatmap(mobilenet, image, "gradcam")
    scores = faithfulness(mobilenet, image, gradcam, steps=steps)
    inverted = faithfulness(mobilenet, image, dataclasses.replace(gradcam, values=1 - gradcam.values), steps=steps)
    randoms = [faithfulness(mobilenet, image, dataclasses.replace(
        gradcam, values=np.random.default_rng(seed).random((224, 224)).astype(np.float32)), steps=steps)
        for seed in range(2)]
    assert scores.fractions[0] == 0 and scores.fractions[-1] == 1 and len(scores.fractions) == 17
    assert scores.deletion[0] == pytest.approx(scores.insertion[-1], abs=1e-5)  # both: the intact image
    assert scores.deletion_auc < inverted.deletion_auc
    assert scores.insertion_auc > max(r.insertion_auc for r in randoms)
    if photo == "coffee":
        assert scores.deletion_auc < min(r.deletion_auc for r in randoms)


def hand_built_model() -> LoadedModel:
    """Two convolutions and no classes; conv2's filter 0 reads every conv1 map negatively, filter 1 positively."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIDE, SIDE, 3))
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, padding="same", name="conv2")(features))
    kernel, bias = model.get_layer("conv2").get_weights()
    kernel[..., 0], kernel[..., 1] = -np.abs(kernel[..., 0]), np.abs(kernel[..., 1])
    model.get_layer("conv2").set_weights([kernel, bias])
    return LoadedModel(model, ModelInfo("hand_built", "Hand-built", "test", (SIDE, SIDE), 3, "unit"))


def test_filter_targets_explain_models_without_classes_and_empty_maps_say_why():
    loaded = hand_built_model()
    image = Image.fromarray(np.pad(np.full((8, 8, 3), 255, np.uint8), ((4, 20), (20, 4), (0, 0))))
    assert isinstance(default_target(loaded, image, "conv1"), FilterTarget)
    for method in ("gradcam", "scorecam", "layercam", "smoothgrad"):
        result = heatmap(loaded, image, method, FilterTarget("conv2", 1), "conv1")
        assert result.values.shape == (SIDE, SIDE) and np.isfinite(result.values).all()
        assert result.values.min() == 0.0 and result.values.max() == 1.0
    with pytest.raises(EmptyHeatmapError, match="all channel weights are negative"):
        heatmap(loaded, image, "gradcam", FilterTarget("conv2", 0), "conv1")
    with pytest.raises(ConvVisError, match="has no classes"):
        heatmap(loaded, image, "gradcam", ClassTarget(0))
    with pytest.raises(ConvVisError, match="out of range"):
        heatmap(loaded, image, "gradcam", FilterTarget("conv2", 2))


def test_cli_writes_the_overlay_and_prints_the_target_and_its_aucs(mobilenet, tmp_path):
    out = tmp_path / "cam.png"
    result = subprocess.run([sys.executable, "-m", "convvis_core", "cam", "mobilenet", "chelsea", "--method", "gradcam",
                             "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "target: Egyptian cat (class 285)" in result.stdout
    deletion, insertion = (float(re.search(rf"{kind} AUC:\s+([0-9.]+)", result.stdout).group(1))
                           for kind in ("deletion", "insertion"))
    assert 0 <= deletion < insertion <= 1
    with Image.open(out) as written:
        assert written.size == (224, 224) and written.mode == "RGB"
