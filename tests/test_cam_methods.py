"""HiResCAM, XGradCAM, EigenCAM, Ablation-CAM and Integrated Gradients, each checked against its
published formula computed here by hand (a split model and ``tf.GradientTape``, numpy for the rest),
on the shipped LeNet; then the same maps wherever the preprocessing lives, in mixed precision,
after a save and reload, on a model with a skip connection (Ablation-CAM), and IG's completeness."""

from __future__ import annotations


import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from test_attribution_methods import CHEAP
from test_memory import resident_bytes

from convvis_core.batches import model_input, pixel_batch
from convvis_core.cam import (METHODS, AblationCAM, ClassTarget, EigenCAM, EmptyHeatmapError, FilterTarget, HiResCAM,
                              IntegratedGradients, XGradCAM, heatmap)
from convvis_core.cam.integrated_gradients import integrated_gradients
from convvis_core.errors import ConvVisError
from convvis_core.models import LoadedModel, ModelInfo
from convvis_core.models.lenet_mnist import build_lenet
from convvis_core.samples import load_sample

LAYER, CLASS = "conv2_relu", 7
NEW_METHODS = ("hirescam", "xgradcam", "eigencam", "ablationcam", "integrated_gradients")


@pytest.fixture(scope="module")
def digit() -> Image.Image:
    return load_sample("digit_7")


def split_pass(lenet: LoadedModel, image: Image.Image) -> tuple[np.ndarray, np.ndarray, float]:
    """conv2_relu's activations A (14, 14, 50), dS/dA and the class-7 logit S, from a model split by hand."""
    model = lenet.model
    split = keras.Model(model.inputs[0], [model.get_layer(LAYER).output, model.get_layer("logits").output])
    with tf.GradientTape() as tape:
        activations, logits = split(tf.constant(model_input(image, lenet.info)), training=False)
        score = logits[0, CLASS]
    gradients = tape.gradient(score, activations)
    return activations.numpy()[0].astype(np.float64), gradients.numpy()[0].astype(np.float64), float(score)


def shown(cam: np.ndarray, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    """ReLU, bilinear resize to the input, min-max normalization: how every map is shown."""
    cam = np.maximum(cam, 0.0)
    cam = tf.image.resize(cam[None, :, :, None].astype(np.float32), size, method="bilinear").numpy()[0, :, :, 0]
    return (cam - cam.min()) / (cam.max() - cam.min())


def ours(loaded: LoadedModel, image: Image.Image, method: str, layer: str = LAYER, target: int = CLASS,
         baseline: str = "blur") -> np.ndarray:
    result = heatmap(loaded, image, method, ClassTarget(target), layer, baseline=baseline, **CHEAP)
    assert result.values.dtype == np.float32 and result.values.min() == 0.0 and result.values.max() == 1.0
    assert result.layer == (layer if METHODS[method].uses_layer else None)
    return result.values


def test_hirescam_equals_the_formula(lenet, digit):
    activations, gradients, _ = split_pass(lenet, digit)
    expected = shown((gradients * activations).sum(axis=-1))  # element-wise, then summed over channels
    np.testing.assert_allclose(ours(lenet, digit, "hirescam"), expected, atol=1e-4)


def test_xgradcam_equals_the_formula(lenet, digit):
    activations, gradients, _ = split_pass(lenet, digit)
    weights = (gradients * activations).sum(axis=(0, 1)) / (activations.sum(axis=(0, 1)) + 1e-7)
    expected = shown((weights * activations).sum(axis=-1))
    np.testing.assert_allclose(ours(lenet, digit, "xgradcam"), expected, atol=1e-4)
    assert not np.allclose(expected, shown((gradients.mean(axis=(0, 1)) * activations).sum(-1)), atol=1e-2)  # not Grad-CAM


def get_2d_projection(activations: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's ``get_2d_projection`` for one (C, h, w) map stack, as it is written there."""
    reshaped = activations.reshape(activations.shape[0], -1).transpose()
    reshaped = reshaped - reshaped.mean(axis=0)
    _, _, vt = np.linalg.svd(reshaped, full_matrices=True)
    return (reshaped @ vt[0, :]).reshape(activations.shape[1:])


def test_eigencam_equals_the_first_principal_component_and_ignores_the_target(lenet, digit):
    activations, _, _ = split_pass(lenet, digit)
    projection = get_2d_projection(np.moveaxis(activations, -1, 0))
    if np.corrcoef(projection.ravel(), activations.sum(-1).ravel())[0, 1] < 0:
        projection = -projection  # the singular vector's sign: high where the layer is active
    np.testing.assert_allclose(ours(lenet, digit, "eigencam"), shown(projection), atol=1e-4)
    np.testing.assert_array_equal(ours(lenet, digit, "eigencam", target=3), ours(lenet, digit, "eigencam"))
    assert "class-agnostic" in EigenCAM.__doc__.lower()


def test_ablationcam_equals_the_formula_with_every_channel_zeroed_by_hand(lenet, digit):
    activations, _, logit = split_pass(lenet, digit)
    model = lenet.model

    def rest(maps: np.ndarray) -> np.ndarray:  # conv2_relu -> the logits, layer by layer
        x = tf.constant(maps, tf.float32)
        for name in ("pool2", "flatten", "fc1", "logits"):
            x = model.get_layer(name)(x)
        return x.numpy()[:, CLASS]

    assert rest(activations[None])[0] == pytest.approx(logit, rel=1e-5) and logit > 0
    ablated = np.repeat(activations[None], activations.shape[-1], axis=0)
    for channel in range(activations.shape[-1]):
        ablated[channel, ..., channel] = 0
    weights = (logit - rest(ablated)) / logit
    expected = shown((weights * activations).sum(axis=-1))
    np.testing.assert_allclose(ours(lenet, digit, "ablationcam"), expected, atol=1e-4)
    one_at_a_time = AblationCAM(batch_size=1).explain(lenet, digit, ClassTarget(CLASS), LAYER).values
    np.testing.assert_allclose(one_at_a_time, expected, atol=1e-4)


def test_ablationcam_says_why_when_the_target_comes_before_the_layer(lenet, digit):
    with pytest.raises(EmptyHeatmapError, match="does not depend on the layer"):
        heatmap(lenet, digit, "ablationcam", FilterTarget("conv1_relu", 3), LAYER)
    with pytest.raises(EmptyHeatmapError, match="gradient is zero everywhere"):  # as Grad-CAM says it
        heatmap(lenet, digit, "hirescam", FilterTarget("conv1_relu", 3), LAYER)
    at_the_layer = heatmap(lenet, digit, "ablationcam", FilterTarget(LAYER, 3), LAYER).values  # the filter itself
    activations, _, _ = split_pass(lenet, digit)
    np.testing.assert_allclose(at_the_layer, shown(activations[..., 3]), atol=1e-4)


def hand_integrated_gradients(lenet: LoadedModel, image: Image.Image, steps: int) -> np.ndarray:
    """The paper's formula from a black picture, in pixels (x/255 inside), trapezoid rule."""
    x = tf.constant(pixel_batch(image, lenet.info, dtype=np.float32))
    alphas = tf.reshape(tf.linspace(0.0, 1.0, steps + 1), (-1, 1, 1, 1))
    path = alphas * x  # x' = 0
    with tf.GradientTape() as tape:
        tape.watch(path)
        logits = lenet.model.get_layer("logits").output
        total = tf.reduce_sum(keras.Model(lenet.model.inputs[0], logits)(path / 255.0)[:, CLASS])
    gradients = tape.gradient(total, path).numpy().astype(np.float64)
    integral = (gradients[1:] + gradients[:-1]).sum(axis=0) / (2 * steps)
    return (x.numpy()[0] * integral).astype(np.float32)


def test_integrated_gradients_equal_the_formula_and_add_up_to_the_change_in_the_logit(lenet, digit):
    attributions, scene = integrated_gradients(lenet, digit, ClassTarget(CLASS), steps=32, baseline="black")
    assert attributions.shape == (28, 28, 1) and scene.target == ClassTarget(CLASS) and not scene.baseline.any()
    expected = hand_integrated_gradients(lenet, digit, 32)
    np.testing.assert_allclose(attributions, expected, atol=1e-4 * np.abs(expected).max())
    values = scene.probe.values(np.concatenate([scene.pixels, scene.baseline]), scene.target)
    assert attributions.sum() == pytest.approx(values[0] - values[1], rel=0.01)  # completeness
    registered = hand_integrated_gradients(lenet, digit, METHODS["integrated_gradients"].steps)
    np.testing.assert_allclose(ours(lenet, digit, "integrated_gradients", baseline="black"),
                               shown(registered.sum(axis=-1)), atol=1e-4)
    for baseline in ("blur", "mean"):  # the caller's baseline, kept
        attributions, scene = integrated_gradients(lenet, digit, ClassTarget(CLASS), 32, baseline)
        values = scene.probe.values(np.concatenate([scene.pixels, scene.baseline]), scene.target)
        assert scene.baseline.any() and attributions.sum() == pytest.approx(values[0] - values[1], rel=0.01)


def test_integrated_gradients_refuse_no_steps_and_say_why_a_map_is_empty(lenet):
    for steps in (0, -3, 2.5):
        with pytest.raises(ConvVisError, match="Integrated Gradients needs at least 1 step"):
            IntegratedGradients(steps=steps)
    method = IntegratedGradients()
    method.steps = 0  # changed after construction: refused when it runs
    with pytest.raises(ConvVisError, match="at least 1 step"):
        method.explain(lenet, load_sample("digit_4"), ClassTarget(4))
    black = Image.new("L", (28, 28))
    with pytest.raises(EmptyHeatmapError, match="the same as its baseline"):
        heatmap(lenet, black, "integrated_gradients", ClassTarget(4), baseline="black")
    assert METHODS["integrated_gradients"].steps == 64  # within 5 % of completeness on MobileNet (see below)
    assert all(name in METHODS for name in NEW_METHODS)


def rebuilt(model: keras.Model, *first: keras.layers.Layer) -> keras.Model:
    """The same chain of layers (same weights), after ``first`` layers put in front."""
    inputs = keras.Input(model.inputs[0].shape[1:])
    x = inputs
    for layer in first:
        x = layer(x)
    for layer in model.layers[1:]:
        twin = type(layer).from_config(layer.get_config())
        x = twin(x)
        twin.set_weights(layer.get_weights())
    return keras.Model(inputs, x, name=f"{model.name}_rebuilt")


def test_the_same_maps_whether_the_model_rescales_inside_or_is_fed_scaled_pixels(lenet, digit):
    """Every method, for x / 255 (0 after preprocessing is black) and x / 127.5 - 1 (0 is grey: where
    Score-CAM masking the preprocessed input went wrong)."""
    names = lenet.info.class_names
    inside = LoadedModel(rebuilt(lenet.model, keras.layers.Rescaling(1 / 255)),
                         ModelInfo("lenet_rescaling", "LeNet, rescaling inside", "test", (28, 28), 1, "raw", names))
    tf_inside = LoadedModel(rebuilt(lenet.model, keras.layers.Rescaling(1 / 127.5, offset=-1)),
                            ModelInfo("lenet_tf_inside", "LeNet, tf scaling inside", "test", (28, 28), 1, "raw", names))
    tf_outside = LoadedModel(rebuilt(lenet.model), ModelInfo("lenet_tf", "LeNet, tf scaling outside", "test",
                                                              (28, 28), 1, "tf", names))
    for method in METHODS:
        np.testing.assert_allclose(ours(inside, digit, method), ours(lenet, digit, method), atol=1e-4, err_msg=method)
        np.testing.assert_allclose(ours(tf_inside, digit, method), ours(tf_outside, digit, method), atol=1e-4,
                                   err_msg=f"{method}, tf")


def test_ablationcam_through_a_skip_connection_past_the_layer_equals_the_formula():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((16, 16, 3))
    early = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="early")(inputs)
    explained = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="explained")(early)
    late = keras.layers.Conv2D(6, 3, padding="same", name="late")(explained)
    joined = keras.layers.Add(name="skip")([late, early])  # the earlier layer, past the explained one
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(keras.layers.ReLU(name="joined_relu")(joined))
    logits = keras.layers.Dense(3, name="logits")(pooled)
    model = keras.Model(inputs, keras.layers.Softmax(name="probabilities")(logits))
    model.get_layer("logits").bias.assign([1.0, 1.0, 1.0])  # y > 0: the paper's quotient as it is
    loaded = LoadedModel(model, ModelInfo("skip", "Skip", "test", (16, 16), 3, "unit", ("a", "b", "c")))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), np.uint8))

    x = tf.constant(model_input(image, loaded.info))
    early_maps = model.get_layer("early")(x)
    maps = model.get_layer("explained")(early_maps).numpy()[0]

    def rest(batch: np.ndarray) -> np.ndarray:
        joined = model.get_layer("skip")([model.get_layer("late")(tf.constant(batch)),
                                          tf.repeat(early_maps, len(batch), axis=0)])
        return model.get_layer("logits")(model.get_layer("pool")(tf.nn.relu(joined))).numpy()

    full = rest(maps[None])[0]
    target = int(np.argmax(full))
    np.testing.assert_allclose(full, keras.Model(inputs, logits)(x).numpy()[0], rtol=1e-5)  # the split is right
    y = full[target]
    assert y > 0
    ablated = np.repeat(maps[None], maps.shape[-1], axis=0)
    for channel in range(maps.shape[-1]):
        ablated[channel, ..., channel] = 0
    weights = (y - rest(ablated)[:, target]) / y
    expected = shown((weights * maps).sum(axis=-1), (16, 16))
    np.testing.assert_allclose(ours(loaded, image, "ablationcam", "explained", target), expected, atol=1e-4)


def test_mixed_precision_maps_are_finite_and_close_to_the_float32_twin(lenet, digit):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_lenet()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.set_weights(lenet.model.get_weights())
    assert model.get_layer("conv2").compute_dtype == "float16"
    half = LoadedModel(model, ModelInfo("lenet_half", "LeNet, mixed precision", "test", (28, 28), 1, "unit",
                                        lenet.info.class_names))
    for method in NEW_METHODS:
        values = ours(half, digit, method)
        assert np.isfinite(values).all(), method
        assert np.abs(values - ours(lenet, digit, method)).max() < 0.02, method  # float16: about 1e-3


def test_a_saved_and_reloaded_model_gives_the_same_maps(lenet, digit, tmp_path):
    path = tmp_path / "lenet.keras"
    lenet.model.save(path)
    reloaded = LoadedModel(keras.models.load_model(path, compile=False, safe_mode=True), lenet.info)
    for method in NEW_METHODS:
        np.testing.assert_allclose(ours(reloaded, digit, method), ours(lenet, digit, method), atol=1e-6,
                                   err_msg=method)


def test_the_new_methods_have_their_names_and_defaults():
    assert [(m.name, m.title) for m in (HiResCAM(), XGradCAM(), EigenCAM(), AblationCAM(), IntegratedGradients())] == [
        ("hirescam", "HiResCAM"), ("xgradcam", "XGradCAM"), ("eigencam", "EigenCAM"), ("ablationcam", "Ablation-CAM"),
        ("integrated_gradients", "Integrated Gradients")]
    assert not EigenCAM.needs_gradients and not AblationCAM.needs_gradients and not IntegratedGradients.uses_layer


@pytest.mark.slow
def test_integrated_gradients_add_up_on_mobilenet(mobilenet):
    """MobileNet's logit along the path is rough (ReLU6 kinks; from a black picture it rises from 1 to
    19 between α = 0.03 and 0.3), so the sum needs many steps: off by 12% (black) or 21% (the blurred
    baseline) with 32 steps, within 5% from 64, and within 0.5% from the blurred baseline with 384,
    512 and 1024 steps (black: 0.02%, 0.9%, 0.15%); about 25 s on 2 cores."""
    image = load_sample("chelsea")
    attributions, scene = integrated_gradients(mobilenet, image, ClassTarget(285), steps=384, baseline="blur")
    values = scene.probe.values(np.concatenate([scene.pixels, scene.baseline]), scene.target)
    assert attributions.shape == (224, 224, 3)
    assert attributions.sum() == pytest.approx(values[0] - values[1], rel=0.01), (attributions.sum(), values)


@pytest.mark.slow
@pytest.mark.parametrize("method", NEW_METHODS)
def test_100_runs_in_flat_memory(lenet, method):
    image = load_sample("digit_4")
    for _ in range(5):
        heatmap(lenet, image, method, ClassTarget(4), LAYER)
    warm = resident_bytes()
    for _ in range(95):
        heatmap(lenet, image, method, ClassTarget(4), LAYER)
    last = resident_bytes()
    print(f"{method}: {warm / 2**20:.0f} MB after 5 runs, {last / 2**20:.0f} MB after 100")
    assert last <= 1.5 * warm, f"{method}: {warm / 2**20:.0f} MB → {last / 2**20:.0f} MB"
