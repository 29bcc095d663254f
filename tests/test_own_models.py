"""Users' own transfer-learning models: a real ImageNet base nested inside a new model.

Every heatmap method at a layer inside the base must equal its formula computed by hand on the
split model (the base up to the layer, then the rest of the model applied to that tensor under
``tf.GradientTape``), and activations, filter pictures and top-k values must equal those of the
same network built flat. Models that cannot be flattened faithfully are refused.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import ImageFilter

from convvis_core.activations import feature_maps
from convvis_core.batches import model_input
from convvis_core.cam import ClassTarget, heatmap
from convvis_core.datasets.catalog import open_dataset
from convvis_core.cache import ResultCache
from convvis_core.compare.changes import weight_change
from convvis_core.compare.similarity import compare_models, matching_layers
from convvis_core.errors import ModelError
from convvis_core.featureviz import PRESETS, visualize_filters
from convvis_core.images import as_model_sees_it
from convvis_core.layers import default_layer, spatial_layers
from convvis_core.live import LiveProcessor
from convvis_core.models import LoadedModel, load_uploaded_model
from convvis_core.predictions import top_k
from convvis_core.presentation.overlays import overlay
from convvis_core.samples import PHOTOS, load_sample
from convvis_core.topk import scan
from convvis_testing.models import copy_model

pytestmark = pytest.mark.slow
CAMS = ("gradcam", "gradcam++", "layercam", "scorecam")


def mobilenet_base(mobilenet: LoadedModel) -> keras.Model:
    """keras.applications' MobileNet without its top, carrying the offline ImageNet weights."""
    base = keras.applications.MobileNet(include_top=False, weights=None, input_shape=(224, 224, 3))
    for layer in base.layers:
        if layer.weights:
            layer.set_weights(mobilenet.model.get_layer(layer.name).get_weights())
    return base


def fitted_head(features: np.ndarray, classes: int) -> list[np.ndarray]:
    """Weights of a softmax Dense head fitted for a few steps on pooled features (not trivial)."""
    keras.utils.set_random_seed(0)
    head = keras.Sequential([keras.Input(features.shape[1:]), keras.layers.Dense(classes, activation="softmax")])
    head.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    head.fit(features, np.arange(len(features)) % classes, epochs=15, verbose=0)
    return head.layers[-1].get_weights()


def photos(info) -> np.ndarray:
    return np.concatenate([model_input(load_sample(sample.name), info) for sample in PHOTOS[:8]])


def upload(model: keras.Model, tmp_path: Path, name: str) -> LoadedModel:
    """The model as a user uploads it: saved to .keras, checked and loaded from the bytes."""
    path = tmp_path / name
    model.save(path)
    return load_uploaded_model(path.read_bytes(), name)


def transfer_model(base: keras.Model, fit_inputs: np.ndarray) -> keras.Model:
    """Input → base → pooling → a Dense(5, softmax) head fitted on the base's features of ``fit_inputs``."""
    inputs = keras.Input((224, 224, 3))
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(base(inputs, training=False))
    head = keras.layers.Dense(5, activation="softmax", name="flowers")
    model = keras.Model(inputs, head(pooled), name="flower_classifier")
    head.set_weights(fitted_head(keras.Model(inputs, pooled).predict(fit_inputs, verbose=0), 5))
    return model


@pytest.fixture(scope="module")
def mobilenet_transfer(mobilenet, tmp_path_factory) -> LoadedModel:
    model = transfer_model(mobilenet_base(mobilenet), photos(mobilenet.info))
    return upload(model, tmp_path_factory.mktemp("m"), "flowers.keras")


@pytest.fixture(scope="module")
def efficientnet_transfer(efficientnet, tmp_path_factory) -> LoadedModel:
    source = efficientnet.model
    base = keras.Model(source.inputs[0], source.get_layer("head_relu").output, name="efficientnet_lite0_base")
    inputs = keras.Input((224, 224, 3))
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(base(inputs))
    head = keras.layers.Dense(3, activation="softmax", name="birds")
    model = keras.Model(inputs, head(pooled), name="bird_classifier")
    head.set_weights(fitted_head(keras.Model(inputs, pooled).predict(photos(efficientnet.info), verbose=0), 3))
    return upload(model, tmp_path_factory.mktemp("e"), "birds.keras")


@pytest.fixture(scope="module")
def nested_lenet(lenet, tmp_path_factory) -> LoadedModel:
    """LeNet with its conv stack as a Sequential base inside a functional model (same weights)."""
    def copy(name: str) -> keras.layers.Layer:
        layer = lenet.model.get_layer(name)
        clone = type(layer).from_config(layer.get_config())
        clone.build(layer.input.shape)
        clone.set_weights(layer.get_weights())
        return clone

    stack = keras.Sequential([keras.Input((28, 28, 1))] + [copy(name) for name in
                             ("conv1", "conv1_relu", "pool1", "conv2", "conv2_relu")], name="lenet_features")
    inputs = keras.Input((28, 28, 1))
    x = stack(inputs)
    for name in ("pool2", "flatten", "fc1", "logits", "predictions"):
        x = copy(name)(x)
    return upload(keras.Model(inputs, x, name="lenet_nested"), tmp_path_factory.mktemp("l"), "lenet_nested.keras")


@pytest.fixture(scope="module")
def two_levels(mobilenet, tmp_path_factory) -> LoadedModel:
    """Raw pixels → a 'preprocessing base' (Rescaling + the MobileNet base inside it) → head."""
    inner_input = keras.Input((224, 224, 3))
    scaled = keras.layers.Rescaling(1 / 127.5, offset=-1, name="scale")(inner_input)
    middle = keras.Model(inner_input, mobilenet_base(mobilenet)(scaled), name="preprocessing_base")
    model = transfer_model(middle, (photos(mobilenet.info) + 1) * 127.5)  # raw pixels in
    return upload(model, tmp_path_factory.mktemp("t"), "two_levels.keras")


def blurred(image, info) -> np.ndarray:
    """The model input of the image blurred (σ = 5 % of its side): Score-CAM's 'removed' picture."""
    seen = as_model_sees_it(image, info)
    return model_input(seen.filter(ImageFilter.GaussianBlur(0.05 * max(seen.size))), info)


def hand_cam(method: str, activations: tf.Tensor, rest, score, inputs: np.ndarray, removed=None) -> np.ndarray:
    """A CAM by its formula: ``rest(A)`` gives the class logit from the layer's activations A,
    ``score(images)`` the class probability (for Score-CAM, which keeps each mask's share of the image
    over the ``removed`` picture: the blend of preprocessed inputs equals the preprocessed blend of
    pixels, every preprocessing being affine per pixel); normalized to 0..1 at the input size."""
    A = activations[0].numpy().astype(np.float64)
    if method == "scorecam":
        masks = tf.image.resize(tf.transpose(activations, [3, 1, 2, 0]), inputs.shape[1:3], "bilinear").numpy()
        low, high = masks.min(axis=(1, 2, 3), keepdims=True), masks.max(axis=(1, 2, 3), keepdims=True)
        masks = np.divide(masks - low, high - low, out=np.zeros_like(masks), where=high > low)
        scores = score(np.concatenate([removed, removed + (inputs - removed) * masks]))  # the baseline, then each mask
        weights = scores[1:] - scores[0]
    else:
        with tf.GradientTape() as tape:
            tape.watch(activations)
            logit = rest(activations)
        g = tape.gradient(logit, activations)[0].numpy().astype(np.float64)
        if method == "gradcam":
            weights = g.mean(axis=(0, 1))
        elif method == "gradcam++":
            alpha = g**2 / (2 * g**2 + A.sum(axis=(0, 1)) * g**3 + 1e-7)
            weights = (np.where(g != 0, alpha, 0.0) * np.maximum(g, 0)).sum(axis=(0, 1))
        else:  # layercam
            weights = np.maximum(g, 0)
    cam = np.maximum((A * weights).sum(axis=-1), 0).astype(np.float32)
    cam = tf.image.resize(cam[None, :, :, None], inputs.shape[1:3], "bilinear").numpy()[0, :, :, 0]
    return (cam - cam.min()) / (cam.max() - cam.min())


def dense_logit(model: keras.Model, head: str, class_index: int):
    kernel, bias = model.get_layer(head).get_weights()
    return lambda pooled: tf.matmul(pooled, kernel[:, class_index:class_index + 1])[:, 0] + bias[class_index]


def probability(model: keras.Model, class_index: int):
    return lambda images: model.predict(images, verbose=0)[:, class_index]


@pytest.mark.parametrize("method,layer", [("gradcam", "conv_pw_11_relu"), ("gradcam++", "conv_pw_11_relu"),
                                          ("layercam", "conv_pw_11_relu"), ("scorecam", "conv_pw_1_relu")])
def test_cams_inside_a_nested_mobilenet_equal_the_split_model_by_hand(mobilenet_transfer, method, layer):
    model, image, cls = mobilenet_transfer.model, load_sample("flower"), 2
    assert mobilenet_transfer.info.preprocessing == "tf"  # inferred from the base's keras.applications name
    inputs = model_input(image, mobilenet_transfer.info)
    base = model.get_layer("mobilenet_1.00_224")
    position = [layer_.name for layer_ in base.layers].index(layer)
    activations = tf.constant(keras.Model(base.inputs, base.get_layer(layer).output)(inputs))

    def rest(a):  # MobileNet is a chain: the base's later layers, the pooling, the head's logit
        for later in base.layers[position + 1:]:
            a = later(a, training=False)
        return dense_logit(model, "flowers", cls)(model.get_layer("pool")(a))

    expected = hand_cam(method, activations, rest, probability(model, cls), inputs,
                        blurred(image, mobilenet_transfer.info))
    ours = heatmap(mobilenet_transfer, image, method, ClassTarget(cls), f"mobilenet_1.00_224/{layer}")
    np.testing.assert_allclose(ours.values, expected, atol=1e-4)


@pytest.mark.parametrize("method", CAMS[:3])
def test_cams_at_the_end_of_a_nested_efficientnet_equal_the_formula(efficientnet_transfer, method):
    model, image, cls = efficientnet_transfer.model, load_sample("coffee"), 1
    assert efficientnet_transfer.info.preprocessing == "efficientnet_lite"
    inputs = model_input(image, efficientnet_transfer.info)
    activations = tf.constant(model.get_layer("efficientnet_lite0_base")(inputs, training=False))
    rest = lambda a: dense_logit(model, "birds", cls)(model.get_layer("pool")(a))  # noqa: E731
    expected = hand_cam(method, activations, rest, None, inputs)
    ours = heatmap(efficientnet_transfer, image, method, ClassTarget(cls), "efficientnet_lite0_base/head_relu")
    np.testing.assert_allclose(ours.values, expected, atol=1e-4)


@pytest.mark.parametrize("method", CAMS)
def test_cams_inside_a_sequential_base_equal_the_formula(nested_lenet, method):
    model, image, cls = nested_lenet.model, load_sample("digit_3"), 3
    inputs = model_input(image, nested_lenet.info)
    activations = tf.constant(model.get_layer("lenet_features")(inputs))

    def rest(a):
        for name in ("pool2", "flatten", "fc1"):
            a = model.get_layer(name)(a)
        return dense_logit(model, "logits", cls)(a)

    expected = hand_cam(method, activations, rest, probability(model, cls), inputs, blurred(image, nested_lenet.info))
    ours = heatmap(nested_lenet, image, method, ClassTarget(cls), "lenet_features/conv2_relu")
    np.testing.assert_allclose(ours.values, expected, atol=1e-4)


def test_cams_two_levels_deep_behind_a_rescaling_layer_equal_the_formula(two_levels):
    model, image, cls = two_levels.model, load_sample("chelsea"), 0
    assert two_levels.info.preprocessing == "raw"  # its first layer rescales: raw 0..255 pixels go in
    inputs = model_input(image, two_levels.info)
    activations = tf.constant(model.get_layer("preprocessing_base")(inputs))
    rest = lambda a: dense_logit(model, "flowers", cls)(model.get_layer("pool")(a))  # noqa: E731
    for method in CAMS[:3]:
        expected = hand_cam(method, activations, rest, None, inputs)
        ours = heatmap(two_levels, image, method, ClassTarget(cls), "preprocessing_base/mobilenet_1.00_224/conv_pw_13_relu")
        np.testing.assert_allclose(ours.values, expected, atol=1e-4, err_msg=method)


def test_activations_inside_bases_equal_the_flat_models(mobilenet, mobilenet_transfer, two_levels):
    image = load_sample("chelsea")
    flat = feature_maps(mobilenet, image, ["conv_pw_5_relu", "conv_pw_13_relu"])
    for loaded, prefix in ((mobilenet_transfer, "mobilenet_1.00_224/"),
                           (two_levels, "preprocessing_base/mobilenet_1.00_224/")):
        nested = feature_maps(loaded, image, [prefix + "conv_pw_5_relu", prefix + "conv_pw_13_relu"])
        for path, maps in flat.items():
            np.testing.assert_allclose(nested[prefix + path], maps, atol=1e-4, err_msg=prefix + path)


def test_filter_pictures_and_topk_inside_a_base_equal_the_flat_model(lenet, nested_lenet):
    settings = PRESETS["keras.io example"].replace(steps=20, size=28)
    ours = visualize_filters(nested_lenet, "lenet_features/conv2_relu", [0, 1, 2, 3], settings, cache=ResultCache(None))
    flat = visualize_filters(lenet, "conv2_relu", [0, 1, 2, 3], settings, cache=ResultCache(None))
    for a, b in zip(ours, flat):
        assert np.abs(a.image.astype(int) - b.image.astype(int)).max() <= 1
        assert a.final_activation == pytest.approx(b.final_activation, rel=1e-4, abs=1e-5)
        assert a.final_activation > a.start_activation + 0.5
    dataset = open_dataset("mnist")
    nested_index = scan(nested_lenet, dataset, "lenet_features/conv2_relu", 200, cache=ResultCache(None))
    flat_index = scan(lenet, dataset, "conv2_relu", 200, cache=ResultCache(None))
    np.testing.assert_allclose(nested_index.maxima, flat_index.maxima, atol=1e-4)
    np.testing.assert_array_equal(nested_index.top.index[:, :8], flat_index.top.index[:, :8])


def test_a_leading_rescaling_layer_means_raw_pixels_and_the_right_class(mobilenet, tmp_path):
    """Uploaded with its own Rescaling, the ImageNet MobileNet must still see a cat in Chelsea."""
    base = mobilenet_base(mobilenet)
    inputs = keras.Input((224, 224, 3))
    x = base(keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs))
    head = keras.layers.Dense(1000, activation="softmax", name="imagenet")
    model = keras.Model(inputs, head(keras.layers.GlobalAveragePooling2D()(x)), name="cat_finder")
    kernel, bias = mobilenet.model.get_layer("conv_preds").get_weights()
    head.set_weights([kernel.reshape(1024, 1000), bias])
    loaded = upload(model, tmp_path, "cat_finder.keras")
    assert loaded.info.preprocessing == "raw" and "Rescaling" in loaded.info.preprocessing_why
    image = load_sample("chelsea")
    pixels = np.asarray(as_model_sees_it(image, loaded.info), np.float32)[None]  # resized, not rescaled
    expected = int(np.argmax(model.predict(pixels, verbose=0)[0]))
    assert top_k(loaded, image)[0].class_index == expected == 285  # Egyptian cat
    assert top_k(loaded.with_preprocessing("unit"), image)[0].class_index != 285  # scaled twice: wrong


def test_models_that_cannot_be_flattened_are_refused(tmp_path, mobilenet):
    inputs = keras.Input((32, 32, 3))
    inner = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, name="conv")], name="shared_base")
    twice = keras.layers.Add()([inner(inputs), inner(keras.layers.Rescaling(0.5)(inputs))])
    siamese = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(twice), name="siamese")
    with pytest.raises(ModelError, match="'shared_base' is called more than once"):
        spatial_layers(siamese)
    with pytest.raises(ModelError, match="called more than once"):
        upload(siamese, tmp_path, "siamese.keras")
    conv = keras.layers.Conv2D(3, 3, padding="same", name="reused")
    shared = keras.Model(inputs, conv(conv(inputs)), name="shared_layers")
    with pytest.raises(ModelError, match="'reused' is shared"):
        default_layer(shared)


def test_a_cam_inside_the_base_is_not_empty_where_two_graphs_gave_zero(mobilenet_transfer):
    """The reported failure: Grad-CAM at every layer inside a nested base came out empty."""
    for layer in ("conv_pw_11_relu", "conv_pw_13_relu"):
        result = heatmap(mobilenet_transfer, load_sample("flower"), "gradcam", None, f"mobilenet_1.00_224/{layer}")
        assert result.values.max() == 1.0 and result.values.std() > 0.05


@pytest.mark.parametrize("fixture,prefix", [("mobilenet_transfer", "mobilenet_1.00_224/"),
                                            ("two_levels", "preprocessing_base/mobilenet_1.00_224/")])
def test_live_frames_inside_a_base_and_behind_a_rescaling_layer_equal_the_heatmaps_page(fixture, prefix, request):
    loaded = request.getfixturevalue(fixture)
    frame = np.asarray(load_sample("flower").convert("RGB").resize((640, 480)))
    processor = LiveProcessor.for_model(loaded, layer=prefix + "conv_pw_11_relu", method="gradcam")
    result = processor.process(frame)
    image = load_sample("flower").convert("RGB").resize((640, 480))
    expected = heatmap(loaded, image, "gradcam", layer=prefix + "conv_pw_11_relu")  # equals the formula (above)
    assert result.problem is None and expected.target.index == result.explained
    difference = np.abs(np.asarray(overlay(image, expected.values, 0.5, "jet")).astype(int) - result.overlay)
    assert difference.max() <= 3 and difference.mean() < 0.05, (difference.max(), difference.mean())
    predicted = top_k(loaded, image)
    assert [p.class_index for p in result.top] == [p.class_index for p in predicted]
    np.testing.assert_allclose([p.probability for p in result.top], [p.probability for p in predicted], atol=1e-5)


def test_compare_inside_a_base_finds_a_head_only_change_and_the_base_flat_or_behind_a_rescaling_layer(
        mobilenet, mobilenet_transfer, two_levels, tmp_path):
    """A nested model against a copy with a new head: the base's layers match by their nested paths, with CKA 1
    and no weight change. The flat ImageNet MobileNet against the transfer model built on it, and the same base
    behind a Rescaling layer instead of preprocessing outside: each base layer matches its nested twin (the
    path one ends with the other's), with CKA 1 and, against the flat model, no weight change."""
    dataset = open_dataset("gallery")
    retrained = copy_model(mobilenet_transfer, "new-head")
    kernel, bias = retrained.model.get_layer("flowers").get_weights()
    retrained.model.get_layer("flowers").set_weights([np.roll(kernel, 1, axis=1), bias])
    result = compare_models(mobilenet_transfer, retrained, dataset, cache=ResultCache(tmp_path))
    assert "mobilenet_1.00_224/conv_pw_13_relu" in result.matched and "mobilenet_1.00_224/conv1" in result.matched
    for path in result.matched:
        assert result.layer_cka(path) == pytest.approx(1.0, abs=1e-5), path
    assert np.max(weight_change(mobilenet_transfer, retrained, "mobilenet_1.00_224/conv_pw_5")) == 0.0

    nested = [layer.path for layer in spatial_layers(mobilenet_transfer.model)]
    base = [path.removeprefix("mobilenet_1.00_224/") for path in nested]  # the flat model's head lies beyond them
    assert matching_layers(mobilenet, mobilenet_transfer).pairs == tuple(zip(base, nested)) and len(base) > 80
    for path, counterpart in zip(base, nested):
        weights = weight_change(mobilenet, mobilenet_transfer, path, counterpart)
        assert weights is None or np.max(weights) == 0.0, path
    some = ["conv1", "conv_pw_5", "conv_pw_5_relu", "conv_pw_13_relu"]  # the pass over 3 of ~90 layers: seconds
    flat = compare_models(mobilenet, mobilenet_transfer, dataset, 8, some, cache=ResultCache(tmp_path))
    assert flat.matching.pairs == tuple((path, "mobilenet_1.00_224/" + path) for path in some)
    for path in some:
        assert flat.layer_cka(path) == pytest.approx(1.0, abs=1e-4), path
        assert np.allclose(flat.activation_change(path), 0.0, atol=1e-4), path
    assert weight_change(mobilenet, mobilenet_transfer, "conv_pw_5", "mobilenet_1.00_224/conv_pw_5") is not None

    inside = ["mobilenet_1.00_224/" + name for name in ("conv1", "conv_pw_5_relu", "conv_pw_13_relu")]
    behind = compare_models(mobilenet_transfer, two_levels, dataset, 8, inside, cache=ResultCache(tmp_path))
    assert behind.counterpart("mobilenet_1.00_224/conv1") == "preprocessing_base/mobilenet_1.00_224/conv1"
    for name in ("conv1", "conv_pw_5_relu", "conv_pw_13_relu"):
        assert behind.layer_cka("mobilenet_1.00_224/" + name) == pytest.approx(1.0, abs=1e-4), name
