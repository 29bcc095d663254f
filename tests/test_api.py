"""The notebook API (convvis_core.api): a model held in memory gives the maps the app gives the same model
uploaded; a batch gives the maps of one image at a time; results show and save themselves; bad input is
refused with the core's own messages; every documented name exists and every exported one is documented."""

from __future__ import annotations

import io
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image
from test_attribution_methods import CHEAP

import convvis_core
import convvis_core.api as api
from convvis_core import (ATTRIBUTIONS, ClassTarget, ConvVisError, FilterTarget, GradCAM, ImageError, LayerError,
                          Model, ModelError, TargetError)
from convvis_core.activations import feature_maps
from convvis_core.cam import faithfulness as core_faithfulness
from convvis_core.cam import heatmap
from convvis_core.cam.methods import settings_for
from convvis_core.cam.road import road
from convvis_core.circuits import circuit as core_circuit
from convvis_core.datasets.packaged import mnist_dataset
from convvis_core.images import as_model_sees_it
from convvis_core.models import load_uploaded_model
from convvis_core.presentation.grids import enlarged
from convvis_core.presentation.overlays import overlay
from convvis_core.topk import scan

ROOT = Path(__file__).resolve().parents[1]
DIGITS = 4


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """Four real MNIST digits, (4, 28, 28) uint8, as a notebook holds them."""
    return mnist_dataset().images[:DIGITS]


def uploaded(model: keras.Model, tmp_path: Path) -> Model:
    """The same model saved to .keras and loaded as the app loads an upload."""
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    return load_uploaded_model(path.read_bytes(), model.name)


def colour_batch(size: int, count: int = 3) -> np.ndarray:
    """Smooth colour pictures with a bright blob each (uint8), so class maps have somewhere to point."""
    rows, columns = np.mgrid[0:size, 0:size] / size
    pictures = []
    for k in range(count):
        blob = np.exp(-((rows - 0.3 - 0.2 * k) ** 2 + (columns - 0.6 + 0.15 * k) ** 2) / 0.02)
        pictures.append(np.stack([blob * 255, rows * 200, columns * 150 + 40 * k], axis=-1))
    return np.clip(np.stack(pictures), 0, 255).astype(np.uint8)


def functional() -> keras.Model:
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv2")(x)
    return keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x)),
                       name="functional_net")


def sequential_rescaling() -> keras.Model:
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Rescaling(1 / 255.0, name="rescale"),
                             keras.layers.Conv2D(6, 3, activation="relu", name="conv"), keras.layers.MaxPooling2D(),
                             keras.layers.Flatten(), keras.layers.Dense(10)], name="sequential_net")


def nested_base() -> keras.Model:
    base = keras.applications.MobileNet(alpha=0.25, weights=None, input_shape=(32, 32, 3), include_top=False)
    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(base(inputs))
    return keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(pooled), name="transfer_net")


class FunctionalSubclass(keras.Model):
    """Subclassing where Keras keeps the graph: a Functional built in __init__."""

    def __init__(self):
        inputs = keras.Input((32, 32, 3))
        x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
        super().__init__(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)), name="subclassed_net")


@pytest.mark.parametrize("build, size, expected", [
    (functional, 32, "unit"), (sequential_rescaling, 28, "raw"), (nested_base, 32, "tf")],
    ids=["functional", "sequential-with-rescaling", "nested-keras-applications-base"])
def test_a_model_built_in_the_notebook_gives_the_maps_of_the_same_model_uploaded(build, size, expected, tmp_path):
    keras.utils.set_random_seed(0)
    model = build()
    held, saved = Model.from_keras(model), uploaded(model, tmp_path)
    assert held.info.preprocessing == saved.info.preprocessing == expected
    assert held.info.preprocessing_why == saved.info.preprocessing_why
    assert f"preprocessing: {expected} " in held.describe() and held.info.preprocessing_why in held.describe()
    assert (held.info.input_size, held.info.channels, held.info.output_info) == \
           (saved.info.input_size, saved.info.channels, saved.info.output_info)
    images = colour_batch(size)
    ours, theirs = GradCAM(held)(images), GradCAM(saved)(images)
    assert ours.targets == theirs.targets
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))  # bit-equal: the same computation
    assert np.isfinite(np.asarray(ours)).any()


def test_subclassing_works_where_keras_keeps_a_graph_and_is_refused_with_a_reason_where_not(tmp_path):
    keras.utils.set_random_seed(0)
    subclassed = FunctionalSubclass()
    twin = keras.Model(subclassed.inputs, subclassed.outputs, name="twin")  # its graph as a plain Functional
    images = colour_batch(32)
    np.testing.assert_array_equal(np.asarray(GradCAM(Model.from_keras(subclassed))(images)),
                                  np.asarray(GradCAM(uploaded(twin, tmp_path))(images)))

    class CallOnly(keras.Model):
        def __init__(self):
            super().__init__(name="call_only")
            self.conv, self.head = keras.layers.Conv2D(4, 3), keras.layers.Dense(2)

        def call(self, x):
            return self.head(keras.ops.mean(self.conv(x), axis=(1, 2)))

    call_only = CallOnly()
    call_only(np.zeros((1, 16, 16, 3), np.float32))
    with pytest.raises(ModelError, match="'call_only' is a subclassed model: its graph cannot be read"):
        Model.from_keras(call_only)
    with pytest.raises(ModelError, match="has no input shape yet"):
        Model.from_keras(keras.Sequential([keras.layers.Conv2D(4, 3)]))


def test_a_keras_model_or_a_registry_name_can_stand_for_the_model(lenet, digits):
    np.testing.assert_array_equal(np.asarray(GradCAM("lenet_mnist")(digits)), np.asarray(GradCAM(lenet)(digits)))
    keras.utils.set_random_seed(0)
    model = functional()
    np.testing.assert_array_equal(np.asarray(GradCAM(model)(colour_batch(32))),
                                  np.asarray(GradCAM(Model.from_keras(model))(colour_batch(32))))


def test_given_preprocessing_and_class_names_are_used_and_said():
    model = Model.from_keras(functional(), preprocessing="tf", class_names=["cat", "dog", "car", "cup"])
    assert model.info.preprocessing == "tf" and model.info.class_names == ("cat", "dog", "car", "cup")
    assert "preprocessing: tf " in model.describe() and "given to from_keras" in model.describe()
    maps = GradCAM(model)(colour_batch(32, 1), targets=2)
    assert "car (class 2)" in maps._repr_html_()


@pytest.mark.parametrize("name", list(ATTRIBUTIONS))
def test_a_batch_gives_the_maps_of_one_image_at_a_time(name, lenet, digits):
    method = ATTRIBUTIONS[name](lenet, **settings_for(name, CHEAP))
    batch = method(digits)
    pictures = [Image.fromarray(digit) for digit in digits]
    one_by_one = np.stack([heatmap(lenet, picture, name, **CHEAP).values
                           for picture in pictures])  # the app's call
    np.testing.assert_allclose(np.asarray(batch), one_by_one, atol=1e-5)
    assert not np.isnan(np.asarray(batch)).any()
    chosen = [3, 1, 4, 1]  # each image for its own class
    np.testing.assert_allclose(np.asarray(method(digits, chosen)),
                               np.stack([np.asarray(method(digit[None], target))[0]
                                         for digit, target in zip(digits, chosen)]), atol=1e-5)


def test_targets_default_to_each_images_top_class_and_take_indices_or_target_objects(lenet, digits):
    logits = lenet.model.predict(digits[..., None].astype(np.float32) / 255.0, verbose=0)
    top = [ClassTarget(int(index)) for index in np.argmax(logits, axis=-1)]
    assert len(set(top)) > 1  # the digits are not all read as one class: the default is per image
    assert GradCAM(lenet)(digits).targets == tuple(top)
    assert GradCAM(lenet)(digits, 7).targets == (ClassTarget(7),) * DIGITS
    filtered = GradCAM(lenet, "conv2_relu")(digits, FilterTarget("conv2_relu", 5))
    assert filtered.targets == (FilterTarget("conv2_relu", 5),) * DIGITS and filtered.layer == "conv2_relu"


def test_images_come_as_arrays_pil_images_or_paths_alike(lenet, digits, tmp_path):
    paths = []
    for i, digit in enumerate(digits):
        paths.append(tmp_path / f"digit{i}.png")
        Image.fromarray(digit).save(paths[-1])
    as_array = np.asarray(GradCAM(lenet)(digits))
    for same in (digits[..., None], digits.astype(np.float32) / 255.0, [Image.fromarray(d) for d in digits],
                 [str(path) for path in paths], list(digits)):
        np.testing.assert_array_equal(np.asarray(GradCAM(lenet)(same)), as_array)


def test_heatmaps_show_each_map_over_its_image_with_its_target_named_and_save_as_png(lenet, digits, tmp_path):
    maps = GradCAM(lenet)(digits[:3], targets=[3, 5, 8])
    png = Image.open(io.BytesIO(maps._repr_png_()))
    side = 28 * (160 // 28)  # digits are enlarged by a whole factor to be seen
    assert png.format == "PNG" and png.size == (3 * (side + 4) + 4, side + 14 + 2 * 4)
    seen = enlarged(as_model_sees_it(Image.fromarray(digits[1]), lenet.info), 160)
    drawn = np.asarray(overlay(seen, np.asarray(maps)[1], 0.5, "jet"))
    np.testing.assert_array_equal(np.asarray(png.convert("RGB"))[18:18 + side, 8 + side:8 + 2 * side], drawn)
    page = maps._repr_html_()
    assert all(f"#{i} · {digit} (class {digit})" in page for i, digit in enumerate([3, 5, 8]))
    assert "Grad-CAM at pool2" in page
    saved = Image.open(maps.save(tmp_path / "maps.png"))
    assert saved.format == "PNG" and saved.size == png.size


def test_a_map_that_would_be_empty_is_nan_with_its_reason(lenet, digits):
    maps = GradCAM(lenet, "conv1_relu")(digits[:2], FilterTarget("conv1_relu", 0))
    assert np.isfinite(np.asarray(maps)).all()
    empty = GradCAM(lenet, "conv2_relu")(digits[:2], FilterTarget("conv1_relu", 0))  # the target comes before the layer
    assert np.isnan(np.asarray(empty)).all() and all("gradient is zero" in why for why in empty.why_empty)
    assert empty.targets == (None, None) and "no map:" in empty._repr_html_()


def test_faithfulness_of_a_batch_equals_each_maps_own_scores(lenet, digits):
    maps = GradCAM(lenet)(digits[:3])
    scores = api.faithfulness(maps)
    for i, found in enumerate(maps.found):
        picture = Image.fromarray(digits[i])
        alone = core_faithfulness(lenet, picture, found)
        assert scores.deletion_auc[i] == pytest.approx(alone.deletion_auc, abs=1e-5)
        assert scores.insertion_auc[i] == pytest.approx(alone.insertion_auc, abs=1e-5)
        assert scores.road[i] == pytest.approx(road(lenet, picture, found).combined, abs=1e-5)
    assert "deletion AUC" in scores._repr_html_() and len(scores.rows()) == 3


def test_filters_show_a_grid_of_pictures_with_their_activations(lenet, tmp_path):
    pictures = api.filters(lenet, "conv2_relu", [0, 1, 2], steps=8)
    assert pictures.images.shape == (3, 28, 28) and pictures.preset == "pixels at model size"
    assert [result.filter_index for result in pictures.results] == [0, 1, 2]
    page = pictures._repr_html_()
    assert "conv2_relu: 3 filters" in page
    shown = [page.index(f"#{result.filter_index} · {result.final_activation:.3g}") for result in pictures.results]
    assert np.argsort(shown).tolist() == np.argsort(-pictures.activations, kind="stable").tolist()  # strongest first
    grid = Image.open(pictures.save(tmp_path / "filters.png"))
    assert grid.size == pictures.picture.size == (2 * (56 + 4) + 4, 2 * (56 + 4 + 14) + 4)  # 2×2, 28 px tiles doubled


def test_visualize_takes_any_objective_of_the_algebra_and_shows_its_pictures(lenet, tmp_path):
    """The issue's one line, on LeNet: a difference of two channels; along one channel's unit vector a
    Direction is that channel; the pictures are the core's (the same cache) and show their objective."""
    from convvis_core.featureviz.render import visualize as core_visualize

    difference = convvis_core.Channel("conv2_relu", 3) - 0.5 * convvis_core.Channel("conv2_relu", 7)
    pictures = convvis_core.visualize(lenet, difference, steps=8, count=2)
    core = core_visualize(lenet, difference, steps=8, count=2)
    np.testing.assert_array_equal(pictures.images, np.stack([result.image for result in core]))
    assert pictures.images.shape == (2, 28, 28) and np.all(pictures.activations > 0)
    assert "Channel(&quot;conv2_relu&quot;, 3) - 0.5 * Channel(&quot;conv2_relu&quot;, 7): 2 pictures" in pictures._repr_html_()
    assert Image.open(pictures.save(tmp_path / "objective.png")).size == pictures.picture.size
    along = convvis_core.visualize(lenet, convvis_core.Direction("conv2_relu", tuple(np.eye(50)[3])), steps=8)
    channel = convvis_core.visualize(lenet, convvis_core.Channel("conv2_relu", 3), steps=8)
    np.testing.assert_allclose(along.images.astype(int), channel.images.astype(int), atol=1)
    with pytest.raises(convvis_core.SettingsError, match="must name the layer"):
        convvis_core.visualize(lenet, convvis_core.parse("Filter()"))


def test_the_other_views_are_one_call_each_and_equal_the_core(lenet, digits):
    maps = api.activations(lenet, digits[:2], "conv1_relu")
    for i in range(2):
        np.testing.assert_allclose(np.asarray(maps)[i], feature_maps(lenet, Image.fromarray(digits[i]),
                                                                     ["conv1_relu"])["conv1_relu"], atol=1e-5)
    found = api.top_k_images(lenet, "mnist", "conv2_relu", 3, k=4, count=64)
    assert found.examples == tuple(scan(lenet, mnist_dataset(), "conv2_relu", 64).top.examples(3, 4))
    assert Image.open(io.BytesIO(found._repr_png_())).width > 0
    drawn = api.circuit(lenet, "conv2_relu", 3)
    assert drawn.rows() == core_circuit(lenet, "conv2_relu", 3).table(6) and drawn.rows()[0]["rank"] == 1
    same = api.compare(lenet, lenet, "mnist", count=32)
    assert same.rows() and all(row["CKA"] == pytest.approx(1.0, abs=1e-4) for row in same.rows())
    assert all(row["weight change"] == 0.0 for row in same.rows() if row["weight change"] == row["weight change"])


def test_a_unit_gathers_its_picture_weights_circuits_examples_and_map(lenet, digits, tmp_path):
    found = api.unit(lenet, "conv2_relu", 3, dataset="mnist", image=digits[0], k=3)
    assert found.weights is not None and found.inputs is not None and found.examples is not None
    np.testing.assert_array_equal(np.asarray(found.heatmap),
                                  np.asarray(GradCAM(lenet, "conv2_relu")(digits[:1], FilterTarget("conv2_relu", 3))))
    assert len(found.sections()) == 3 and "weights" in found._repr_html_()
    assert Image.open(found.save(tmp_path / "unit.png")).size == found.picture.size


def test_bad_input_is_refused_with_the_cores_messages(lenet, digits, tmp_path):
    picture = Image.fromarray(digits[0])
    with pytest.raises(LayerError) as raised:
        GradCAM(lenet, "conv9")
    with pytest.raises(LayerError) as core:
        heatmap(lenet, picture, "gradcam", layer="conv9")
    assert str(raised.value) == str(core.value) and "conv9" in str(raised.value)

    with pytest.raises(TargetError) as raised:
        GradCAM(lenet)(digits, targets=10)
    with pytest.raises(TargetError) as core:
        heatmap(lenet, picture, "gradcam", ClassTarget(10))
    assert str(raised.value) == str(core.value) == ("Class 10 is out of range: output 'predictions' has 10 classes "
                                                    "(0–9).")
    with pytest.raises(TargetError, match="4 images but 2 targets"):
        GradCAM(lenet)(digits, targets=[1, 2])

    flat = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)], name="flat")
    held = Model.from_keras(flat)  # an image model, but without a spatial layer
    with pytest.raises(LayerError) as raised:
        GradCAM(held)(digits)
    with pytest.raises(LayerError) as core:
        heatmap(uploaded(flat, tmp_path), picture, "gradcam")
    assert str(raised.value) == str(core.value) and "no layer with a spatial (4-D) output" in str(raised.value)

    vector = keras.Sequential([keras.Input((10,)), keras.layers.Dense(3)], name="vector")
    with pytest.raises(ModelError) as raised:
        Model.from_keras(vector)
    with pytest.raises(ModelError) as core:
        uploaded(vector, tmp_path)
    assert str(raised.value) == str(core.value) and "ConvVis needs images of shape" in str(raised.value)

    for wrong, says in ((np.zeros((2, 28, 28, 2), np.uint8), "with 1, 3 or 4 channels"),
                        (np.zeros((28, 28, 3), np.uint8), "looks like one colour image"),
                        (np.full((1, 28, 28), -1.5, np.float32), "before any preprocessing"),
                        ([], "No images")):
        with pytest.raises(ImageError, match=says):
            GradCAM(lenet)(wrong)
    assert issubclass(TargetError, ConvVisError) and issubclass(ImageError, ConvVisError)


def test_every_exported_name_exists_and_is_documented_and_every_documented_name_is_exported():
    for name in convvis_core.__all__:
        assert hasattr(convvis_core, name), name
    assert set(api.__all__) <= set(convvis_core.__all__)
    documented = set(re.findall(r"^#{2,4} `(\w+)", (ROOT / "docs" / "api.md").read_text(), re.MULTILINE))
    assert documented and documented <= set(convvis_core.__all__), documented - set(convvis_core.__all__)
    assert set(api.__all__) <= documented, set(api.__all__) - documented
