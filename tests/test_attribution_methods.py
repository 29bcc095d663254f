"""Guided Backpropagation, Guided Grad-CAM, Gradient × Input, Occlusion and RISE, each checked against its
formula written out here (a hand-built forward pass with guided ReLUs, a loop over windows or masks
through Keras, PIL's bilinear resize for RISE's masks); Occlusion and RISE on a model trained here to
find a square; the deletion/insertion step rule; Integrated Gradients' completeness check on a model
whose f(x) − f(baseline) and path sum are known by hand; the same maps inside a nested base; bad settings.
(The same maps with the preprocessing inside or outside the model: tests/test_cam_methods.py, for every
method in ``METHODS``, these included.)"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from test_cam import SQUARE, square_detector, squares
from test_own_models import nested_lenet  # noqa: F401  (a fixture: LeNet's conv stack as a nested Sequential)

from convvis_core.batches import pixel_batch
from convvis_core.cam import METHODS, RISE, ClassTarget, IntegratedGradients, Occlusion, faithfulness, heatmap
from convvis_core.cam.faithfulness import STEPS, importance_masks
from convvis_core.cam.methods import method_named
from convvis_core.cli import main as cli_main
from convvis_core.errors import ConvVisError
from convvis_core.models import LoadedModel, ModelInfo
from convvis_core.samples import load_sample

NEW_METHODS = ("guided_backprop", "guided_gradcam", "gradient_input", "occlusion", "rise")
CHEAP = {"masks": 64, "patch": 7, "stride": 7}  # for loops over every method that test plumbing, not a map's quality:
# 64 masks and 16 windows on LeNet instead of 500 and 169 (method_named gives each method only its own settings)


def shown(values: np.ndarray) -> np.ndarray:
    """Min-max normalized to 0..1, as every map is shown."""
    return (values - values.min()) / (values.max() - values.min())


def tiny_classifier(seed: int = 1) -> LoadedModel:
    """Two layers with weights (a ReLU convolution, a dense head) on 8 × 8 grey pictures scaled by 1/255."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv")(inputs)
    logits = keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, keras.layers.Softmax(name="probabilities")(logits))
    return LoadedModel(model, ModelInfo("tiny", "Tiny", "test", (8, 8), 1, "unit", ("a", "b")))


def noise(side: int, seed: int, channels: int = 1) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, channels), np.uint8)
    return Image.fromarray(pixels[..., 0] if channels == 1 else pixels)


def probability(loaded: LoadedModel, pixels: np.ndarray, cls: int) -> np.ndarray:
    """The class's probability for a batch of 0..255 pixels, by Keras itself."""
    return loaded.model.predict(pixels / 255.0, verbose=0)[:, cls].astype(np.float64)


@pytest.fixture(scope="module")
def detector() -> LoadedModel:
    return square_detector()


def test_occlusion_with_a_patch_the_size_of_the_square_peaks_on_it_and_rise_agrees(detector):
    """Black baseline (the papers'): a blurred square is still a bright blob the detector sees."""
    images, labels, corners = squares(30, seed=1)
    for image, (top, left) in list(zip(images[labels == 1], corners[labels == 1]))[:6]:
        picture = Image.fromarray(image)
        occlusion = heatmap(detector, picture, "occlusion", ClassTarget(1), baseline="black", patch=SQUARE, stride=2)
        rise = heatmap(detector, picture, "rise", ClassTarget(1), baseline="black", masks=1000)
        row, column = np.unravel_index(np.argmax(occlusion.values), occlusion.values.shape)
        assert top <= row < top + SQUARE and left <= column < left + SQUARE
        assert occlusion.layer is None and rise.layer is None
        assert np.corrcoef(occlusion.values.ravel(), rise.values.ravel())[0, 1] > 0.6


def test_occlusion_equals_its_formula():
    loaded, image = tiny_classifier(), noise(8, 0)
    pixels = pixel_batch(image, loaded.info, dtype=np.float32)
    intact = probability(loaded, pixels, 0)[0]
    total, covered = np.zeros((8, 8)), np.zeros((8, 8))
    starts = (0, 2, 4, 5)  # every 2 px, and one window flush with the far edge
    for top in starts:
        for left in starts:
            occluded = pixels.copy()
            occluded[0, top:top + 3, left:left + 3] = 0  # the black baseline
            total[top:top + 3, left:left + 3] += intact - probability(loaded, occluded, 0)[0]
            covered[top:top + 3, left:left + 3] += 1
    expected = shown(np.maximum(total / covered, 0))
    ours = heatmap(loaded, image, "occlusion", ClassTarget(0), baseline="black", patch=3, stride=2)
    np.testing.assert_allclose(ours.values, expected, atol=1e-5)
    assert len(Occlusion(3, 2).corners((8, 8))) == 16 and Occlusion(3).sizes((8, 8)) == (3, 1)
    assert Occlusion().sizes((224, 224)) == (32, 16) and len(Occlusion().corners((224, 224))) == 169  # the defaults
    assert Occlusion().sizes((28, 28)) == (4, 2)


def test_rise_equals_its_formula_and_its_masks_are_pils_bilinear_upsampling():
    loaded, image = tiny_classifier(), noise(8, 1)
    method = RISE(masks=40, grid=3, batch_size=16)  # 16 + 16 + 8: the last batch padded
    grids, shifts = method.coarse((8, 8))
    masks = method.mask_pictures((8, 8))
    assert grids.shape == (40, 3, 3) and set(np.unique(grids)) == {0.0, 1.0} and shifts.max() < 3
    for grid, (down, right), mask in zip(grids, shifts, masks):  # cells of ⌈8 / 3⌉ = 3 px, over 4 cells
        upsampled = np.asarray(Image.fromarray(grid, "F").resize((12, 12), Image.BILINEAR))
        np.testing.assert_allclose(mask, upsampled[down:down + 8, right:right + 8], atol=1e-6)
    pixels = pixel_batch(image, loaded.info, dtype=np.float32)
    scores = probability(loaded, pixels * masks[..., None], 1)  # black baseline: x ⊙ m
    expected = shown(np.tensordot(scores, masks, axes=1) / (40 * 0.5))
    ours = method.explain(loaded, image, ClassTarget(1), baseline="black")
    np.testing.assert_allclose(ours.values, expected, atol=1e-5)
    again = method.explain(loaded, image, ClassTarget(1), baseline="black")
    np.testing.assert_array_equal(again.values, ours.values)  # seeded


@tf.custom_gradient
def guided_clip(z: tf.Tensor, high: float) -> tuple[tf.Tensor, object]:
    """ReLU clipped at ``high``; backwards, the gradient only where 0 < z < high and it is positive."""
    def backward(upstream):
        passes = tf.cast((z > 0) & (z < high) & (upstream > 0), upstream.dtype)
        return upstream * passes, None
    return tf.clip_by_value(z, 0.0, high), backward


def relu_model() -> LoadedModel:
    """A fused Conv2D(activation="relu"), a plain convolution followed by a ReLU6 layer (MobileNet's), a head."""
    keras.utils.set_random_seed(5)
    inputs = keras.Input((10, 10, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(5, 3, padding="same", name="conv2")(x)
    x = keras.layers.ReLU(max_value=6.0, name="relu6")(x)
    logits = keras.layers.Dense(3, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    model.get_layer("conv1").kernel.assign(model.get_layer("conv1").kernel * 8)  # some units pass 6
    return LoadedModel(model, ModelInfo("relus", "ReLUs", "test", (10, 10), 3, "unit", ("a", "b", "c")))


def hand_pass(loaded: LoadedModel, image: Image.Image, cls: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`relu_model` written out with guided ReLUs: the class logit's guided gradient with respect to
    the pixels (H, W, C); and, from the plain pass, the ReLU6 layer's activations and Grad-CAM there."""
    model = loaded.model
    pixels = tf.constant(pixel_batch(image, loaded.info, dtype=np.float32))
    conv1, conv2, head = (model.get_layer(name) for name in ("conv1", "conv2", "logits"))
    with tf.GradientTape() as tape:
        tape.watch(pixels)
        x = guided_clip(tf.nn.conv2d(pixels / 255.0, conv1.kernel, 1, "SAME") + conv1.bias, np.inf)
        x = guided_clip(tf.nn.conv2d(x, conv2.kernel, 1, "SAME") + conv2.bias, 6.0)
        logit = (tf.reduce_mean(x, axis=(1, 2)) @ head.kernel + head.bias)[0, cls]
    logits = keras.Model(model.inputs[0], head.output)
    assert logit.numpy() == pytest.approx(logits(pixels / 255.0)[0, cls].numpy(), rel=1e-5)  # the hand pass: the model
    activations = x.numpy()[0]  # forwards, guided ReLUs are ReLUs
    weights = head.kernel.numpy()[:, cls] / 100  # d logit / d activation at each of the 10 × 10 positions (GAP)
    return tape.gradient(logit, pixels).numpy()[0], activations, np.maximum((activations * weights).sum(axis=-1), 0)


def test_guided_backprop_equals_the_guided_gradient_by_hand_and_leaves_the_model_alone():
    loaded, image, cls = relu_model(), noise(10, 2, 3), 1
    model = loaded.model
    plain_before = heatmap(loaded, image, "saliency", ClassTarget(cls)).values
    weights = [w.copy() for w in model.get_weights()]
    gradients, activations, _ = hand_pass(loaded, image, cls)
    assert (activations == 6).any() and (activations == 0).any()  # both ends of the ReLU6 are reached
    guided = heatmap(loaded, image, "guided_backprop", ClassTarget(cls))
    np.testing.assert_allclose(guided.values, shown(np.abs(gradients).max(axis=-1)), atol=1e-5)
    assert np.abs(guided.values - plain_before).max() > 0.1  # not the plain gradient
    assert model.get_layer("conv1").activation is keras.activations.relu  # the model is as it was
    np.testing.assert_array_equal(heatmap(loaded, image, "saliency", ClassTarget(cls)).values, plain_before)
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_guided_gradcam_is_the_guided_gradient_times_gradcam():
    """At the ReLU6 layer, whose map is the image's size (no upsampling to write out)."""
    loaded, image, cls = relu_model(), noise(10, 2, 3), 2
    gradients, _, gradcam = hand_pass(loaded, image, cls)
    assert 0.3 < (gradcam > 0).mean() < 0.9
    ours = heatmap(loaded, image, "guided_gradcam", ClassTarget(cls), "relu6")
    assert ours.layer == "relu6"
    np.testing.assert_allclose(ours.values, shown(np.abs(gradients).max(axis=-1) * gradcam), atol=1e-5)
    np.testing.assert_allclose(heatmap(loaded, image, "gradcam", ClassTarget(cls), "relu6").values, shown(gradcam),
                               atol=1e-5)  # the hand Grad-CAM is right


def test_gradient_times_input_is_the_gradient_times_the_pixels(lenet):
    digit = load_sample("digit_7")
    pixels = tf.constant(pixel_batch(digit, lenet.info, dtype=np.float32))
    logits = keras.Model(lenet.model.inputs[0], lenet.model.get_layer("logits").output)
    with tf.GradientTape() as tape:
        tape.watch(pixels)
        logit = logits(pixels / 255.0)[0, 7]
    gradients = tape.gradient(logit, pixels).numpy()[0]
    expected = shown(np.maximum((gradients * pixels.numpy()[0]).sum(axis=-1), 0))
    np.testing.assert_allclose(heatmap(lenet, digit, "gradient_input", ClassTarget(7)).values, expected, atol=1e-5)


def test_deletion_and_insertion_remove_at_most_2_percent_of_the_pixels_per_step(lenet):
    """Gradient × Input is sharp (most of its evidence lies on the digit's few strokes, where a black
    baseline removes it): 16 steps of 6 % misjudge its deletion area (0.040 here) where 50 steps of 2 %
    come within 0.001 of 200 steps' 0.028."""
    digit = load_sample("digit_7")
    sharp = heatmap(lenet, digit, "gradient_input", ClassTarget(7))
    curves = faithfulness(lenet, digit, sharp, baseline="black")
    assert STEPS == 50 and len(curves.fractions) == STEPS + 1 and curves.fractions[1] == pytest.approx(0.02)
    removed = importance_masks(sharp.values, STEPS).reshape(STEPS + 1, -1).sum(axis=1)
    assert removed[1] == round(0.02 * 28 * 28) and np.diff(removed).max() <= round(0.02 * 28 * 28) + 1  # whole pixels
    fine = faithfulness(lenet, digit, sharp, steps=200, baseline="black").deletion_auc
    coarse = faithfulness(lenet, digit, sharp, steps=16, baseline="black")
    assert len(coarse.fractions) == 17  # the step count stays a setting
    assert abs(curves.deletion_auc - fine) < 0.002 < abs(coarse.deletion_auc - fine) / 4


def path_model() -> LoadedModel:
    """logit₀ = mean over the 16 pixels of ReLU(0.01·x − 1.4), raw 0..255 pixels: a pixel of 200 turns on at
    α = 0.7 of the way from black; a pixel of 100 never does."""
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Conv2D(1, 1, activation="relu", name="kink")(inputs)
    logits = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    model.get_layer("kink").set_weights([np.full((1, 1, 1, 1), 0.01, np.float32), np.array([-1.4], np.float32)])
    model.get_layer("logits").set_weights([np.array([[1.0, -1.0]], np.float32), np.zeros(2, np.float32)])
    return LoadedModel(model, ModelInfo("path", "Path", "test", (4, 4), 1, "raw", ("on", "off")))


def test_integrated_gradients_warn_when_the_attributions_do_not_add_up(lenet, capsys, tmp_path):
    """8 pixels of 200, 8 of 100: f(x) − f(black) = 8 · (2 − 1.4) / 16 = 0.3. With 4 steps the trapezoid
    sees the kink at α = 0.7 only at α = 0.75 and 1: each bright pixel gets 200 · 0.01/16 · (1/4 + 1/8),
    0.375 in all (25 % over); with 256 steps, 77 points past the kink (the last one weighing half): 76.5 / 256
    = 0.2988 (0.4 % under)."""
    loaded = path_model()
    image = Image.fromarray(np.repeat(np.array([[200], [100]], np.uint8), 8, axis=0).reshape(4, 4))
    coarse = heatmap(loaded, image, "integrated_gradients", ClassTarget(0), baseline="black", steps=4).completeness
    assert coarse.change == pytest.approx(0.3, rel=1e-5) and coarse.attribution_sum == pytest.approx(0.375, rel=1e-5)
    assert coarse.steps == 4 and coarse.gap == pytest.approx(0.25, rel=1e-4)
    assert "25.0% apart, more than 5%" in coarse.warning() and "try more (e.g. 16)" in coarse.warning()
    fine = heatmap(loaded, image, "integrated_gradients", ClassTarget(0), baseline="black", steps=256).completeness
    assert fine.attribution_sum == pytest.approx(76.5 / 256, rel=1e-4) and fine.warning() is None
    assert fine.sentence() == "Σ attributions = 0.2988, f(image) − f(baseline) = 0.3 (0.4% apart, 256 steps)"
    assert heatmap(loaded, image, "gradcam", ClassTarget(0), "kink").completeness is None

    out = str(tmp_path / "ig.png")  # the command line prints the check, and the warning when it fails
    assert cli_main(["cam", "lenet_mnist", "digit_7", "--method", "integrated_gradients", "--steps", "2",
                     "--baseline", "black", "--out", out]) == 0
    printed = capsys.readouterr().out
    assert "completeness:  Σ attributions = " in printed and "apart, 2 steps)" in printed
    assert "warning: The attributions add up to" in printed
    assert cli_main(["cam", "lenet_mnist", "digit_7", "--method", "integrated_gradients", "--baseline", "black",
                     "--out", out]) == 0
    printed = capsys.readouterr().out
    assert "64 steps)" in printed and "warning" not in printed and "deletion AUC:" in printed and "50 steps" in printed


@pytest.mark.parametrize("method", NEW_METHODS)
def test_the_same_maps_inside_a_nested_base_as_in_the_flat_model(lenet, nested_lenet, method):  # noqa: F811
    digit, black = load_sample("digit_3"), {"baseline": "black", "masks": 64}  # blurred, this 3 stays a sure 3
    flat = heatmap(lenet, digit, method, ClassTarget(3), "conv2_relu", **black)
    nested = heatmap(nested_lenet, digit, method, ClassTarget(3), "lenet_features/conv2_relu", **black)
    np.testing.assert_allclose(nested.values, flat.values, atol=1e-5)


def test_bad_settings_are_refused_with_a_reason(lenet, capsys):
    digit = load_sample("digit_7")
    for setting in ({"patch": 0}, {"stride": 0}, {"patch": 2.5}, {"stride": -1}):
        with pytest.raises(ConvVisError, match="Occlusion's (patch|stride) must be a whole number of pixels, at least"):
            Occlusion(**setting)
    with pytest.raises(ConvVisError, match=r"patch of 40 px is larger than the image as the model sees it "
                                           r"\(28×28 px\): choose a patch of at most 28 px"):
        heatmap(lenet, digit, "occlusion", ClassTarget(7), patch=40)
    for masks in (0, -5, 1.5):
        with pytest.raises(ConvVisError, match="RISE needs at least 1 random mask"):
            RISE(masks=masks)
    with pytest.raises(ConvVisError, match="strictly between 0 and 1"):
        RISE(keep=1.0)
    with pytest.raises(ConvVisError, match="grid of 30 cells per side is finer than the image"):
        RISE(masks=4, grid=30).explain(lenet, digit, ClassTarget(7))
    with pytest.raises(ValueError, match="Unknown heatmap setting"):
        method_named("rise", mask=10)
    assert method_named("rise", masks=64, steps=8).masks == 64  # a setting of another method is left out
    assert method_named("gradcam", masks=64) is METHODS["gradcam"]
    assert isinstance(method_named("integrated_gradients", steps=8), IntegratedGradients)
    assert cli_main(["cam", "lenet_mnist", "digit_7", "--method", "occlusion", "--patch", "40"]) == 2
    assert "error: Occlusion's patch of 40 px is larger than the image" in capsys.readouterr().err
