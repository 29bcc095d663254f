"""Can a map be trusted: the model randomization check (Adebayo et al. 2018), MuFidelity, average stability
and complexity, each on a case whose answer is known in advance.

A "method" that returns the image's Sobel edges ignores the model, so randomizing the model cannot
change it; Grad-CAM on a trained LeNet must change. A linear model's weights × input is its perfect
explanation (MuFidelity 1, its negative −1). The weights a check randomizes live on a copy of the
model and come back bit for bit; other sessions' maps never see them.
"""

from __future__ import annotations

import gc
import re
import threading
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from scipy import ndimage
from scipy.stats import spearmanr

import convvis_core as cv
from convvis_core.cache import ResultCache
from convvis_core.cam import METHODS, ClassTarget, FilterTarget, GradCAM, heatmap
from convvis_core.cam.base import HeatmapMethod, Scene
from convvis_core.cam.complexity import complexity
from convvis_core.cam.fidelity import mu_fidelity
from convvis_core.cam.randomization import (RandomizationError, Randomizer, randomizable, randomization_steps,
                                            sanity_check)
from convvis_core.cam.scoring import verdict
from convvis_core.cam.stability import average_stability
from convvis_core.cam.trust import trust_scores
from convvis_core.cli import main
from convvis_core.errors import ConvVisError, LayerError
from convvis_core.graph import flat_graph
from convvis_core.models import LoadedModel, ModelInfo
from convvis_core.samples import load_sample
from test_cam_methods import rebuilt
from test_own_models import nested_lenet  # noqa: F401  (a fixture: LeNet's convolutions as a nested base)
from test_road import TITLES, scored_with

NO_CACHE = ResultCache(None)


def digit() -> Image.Image:
    return load_sample("digit_3")


class SobelEdges(HeatmapMethod):
    """Test-only: the image's edge magnitude (Sobel), whatever the model."""

    name, title, uses_layer = "edges", "Sobel edges", False

    def raw_maps(self, scenes):
        return [np.hypot(ndimage.sobel(scene.pixels[0, ..., 0], 0), ndimage.sobel(scene.pixels[0, ..., 0], 1))
                for scene in scenes]


def test_a_map_that_ignores_the_model_keeps_similarity_1_under_every_randomization_and_is_flagged(lenet):
    for mode in ("cascading", "independent"):
        check = sanity_check(lenet, digit(), SobelEdges(), ClassTarget(3), mode=mode, depth="all", cache=NO_CACHE)
        assert check.steps == ("logits", "fc1", "conv2", "conv1")  # every weighted layer, from the output down
        np.testing.assert_allclose(check.spearman, 1.0)
        np.testing.assert_allclose(check.ssim, 1.0)
    cascading = sanity_check(lenet, digit(), SobelEdges(), ClassTarget(3), cache=NO_CACHE)
    assert cascading.flagged is True
    assert cascading.sentence().startswith("Sobel edges does not depend on the model's weights: once every weighted "
                                           "layer is re-initialized (4 steps)")


def test_gradcam_of_a_trained_model_falls_below_0_5_once_the_layers_above_are_randomized_and_is_not_flagged(lenet):
    check = sanity_check(lenet, digit(), "gradcam", ClassTarget(3), "conv2_relu", cache=NO_CACHE)
    assert (check.layer, check.steps, check.above) == ("conv2_relu", ("logits", "fc1"), (True, True))
    assert check.spearman[-1] < 0.5 and check.flagged is False
    assert "Grad-CAM depends on the model above conv2_relu" in check.sentence()
    # the same as Spearman of |map| computed here, on a model whose head is replaced by the same fresh weights
    with randomizable(lenet) as copy:
        original = heatmap(copy, digit(), "gradcam", ClassTarget(3), "conv2_relu").values
        randomizer = Randomizer(copy.model, seed=0)
        for step in randomization_steps(copy, "conv2_relu", ClassTarget(3)):
            randomizer.randomize(step)
        randomized = heatmap(copy, digit(), "gradcam", ClassTarget(3), "conv2_relu").values
        randomizer.restore()
    assert check.spearman[-1] == pytest.approx(spearmanr(np.abs(original).ravel(), np.abs(randomized).ravel())[0])


def test_each_layer_is_reinitialized_by_its_own_initializers_seeded_and_a_batchnorm_joins_its_convolution():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((10, 10, 1))
    x = keras.layers.Conv2D(4, 3, name="conv", kernel_initializer="he_normal")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Conv2D(3, 3, name="top", bias_initializer="ones")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="head")(x))  # a fused softmax head
    for variable in model.weights:  # trained-looking values, none equal to an initializer's constant
        variable.assign(np.random.default_rng(len(variable.path)).normal(0.5, 0.1, variable.shape))
    loaded = LoadedModel(model, ModelInfo("bn", "BN", "test", (10, 10), 1, "unit", ("a", "b")))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (10, 10), np.uint8))
    steps = randomization_steps(loaded, "relu", ClassTarget(1), depth="all")
    assert [(step.name, step.above) for step in steps] == [("head", True), ("top", True), ("conv + bn", False)]
    with randomizable(loaded) as copy:
        heatmap(copy, image, "gradcam", ClassTarget(1), "relu")  # builds the head's linear twin
        randomizer = Randomizer(copy.model, seed=0)
        for step in steps:
            randomizer.randomize(step)
        layer = copy.model.get_layer
        assert np.all(layer("bn").gamma.numpy() == 1) and np.all(layer("bn").beta.numpy() == 0)
        assert np.all(layer("bn").moving_mean.numpy() == 0) and np.all(layer("bn").moving_variance.numpy() == 1)
        assert np.all(layer("top").bias.numpy() == 1) and np.all(layer("head").bias.numpy() == 0)
        kernel = layer("conv").kernel.numpy()  # he_normal: a normal of std sqrt(2 / fan_in) / 0.8796 (fan_in 9) cut at 2 std
        assert np.abs(kernel).max() <= 2 * np.sqrt(2 / 9) / 0.87962566 and kernel.std() > 0.2
        limit = np.sqrt(6 / (3 + 2))  # glorot_uniform of the head: fan_in 3, fan_out 2
        head = layer("head").kernel.numpy()
        assert np.abs(head).max() <= limit and not np.allclose(head, model.get_layer("head").kernel.numpy())
        again = Randomizer(copy.model, seed=0)
        again.randomize(steps[0])
        np.testing.assert_array_equal(layer("head").kernel.numpy(), head)  # seeded: the same layer, the same weights
        twin = flat_graph(copy.model).copies("head")[0]
        np.testing.assert_array_equal(twin.kernel.numpy(), head)  # the logits' twin follows the head
        again.restore()
        randomizer.restore()
        for mine, theirs in zip(copy.model.weights + twin.weights, model.weights + model.get_layer("head").weights):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    check = sanity_check(loaded, image, "gradcam", ClassTarget(1), "relu", cache=NO_CACHE)
    assert check.spearman[0] < 0.999  # randomizing a fused head changes the gradient of its logits


class Failing(HeatmapMethod):
    """Test-only: Grad-CAM that fails on its ``fail_at``-th call."""

    name, title = "failing", "Failing"

    def __init__(self, fail_at: int):
        self.fail_at, self.calls = fail_at, 0

    def raw_maps(self, scenes):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("the map computation broke")
        return GradCAM().raw_maps(scenes)


def assert_same_weights(copy: LoadedModel, model: keras.Model) -> None:
    assert len(copy.model.weights) == len(model.weights)
    for mine, theirs in zip(copy.model.weights, model.weights):
        assert mine.path == theirs.path
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=mine.path)


def test_the_copys_weights_are_restored_bit_for_bit_even_when_the_map_computation_raises(lenet):
    trained = [variable.numpy().copy() for variable in lenet.model.weights]
    for mode in ("cascading", "independent"):
        with pytest.raises(RuntimeError, match="broke"):
            sanity_check(lenet, digit(), Failing(fail_at=3), ClassTarget(3), mode=mode, depth="all", cache=NO_CACHE)
        with randomizable(lenet) as copy:
            assert_same_weights(copy, lenet.model)
    sanity_check(lenet, digit(), "gradcam", ClassTarget(3), depth="all", cache=NO_CACHE)
    with randomizable(lenet) as copy:
        assert copy.model is not lenet.model
        assert_same_weights(copy, lenet.model)
    for variable, value in zip(lenet.model.weights, trained):  # the shared model was never touched
        np.testing.assert_array_equal(variable.numpy(), value)


def test_a_models_copy_goes_when_the_model_goes():
    """The copy is kept per model (weakly, as probes are): a server that drops a model drops its copy."""
    def checked() -> tuple[weakref.ref, weakref.ref]:
        inputs = keras.Input((8, 8, 1))
        x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(3, 3, activation="relu", name="conv")(inputs))
        loaded = LoadedModel(keras.Model(inputs, keras.layers.Dense(2, name="logits")(x)),
                             ModelInfo("gone", "Gone", "test", (8, 8), 1, "unit", ("a", "b")))
        image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8), np.uint8))
        sanity_check(loaded, image, "saliency", ClassTarget(1), cache=NO_CACHE)
        with randomizable(loaded) as copy:
            return weakref.ref(loaded.model), weakref.ref(copy.model)

    model, copy = checked()
    for _ in range(2):  # the model's collection drops the copy's entry; the next collects the copy's cycles
        gc.collect()
    assert model() is None and copy() is None


TRACES = []


def _traced_gradient(probe, pixels, index, extra):
    TRACES.append(1)  # Python runs here only while tracing
    with tf.GradientTape() as tape:
        tape.watch(pixels)
        value = tf.reduce_sum(probe.kind.value(probe.target_model(probe.preprocess(pixels), training=False), index, extra))
    return tape.gradient(value, pixels)


class CountingGradient(HeatmapMethod):
    """Test-only: the gradient's magnitude through a traced pass of its own that counts its tracings."""

    name, title, uses_layer = "counting", "Counting gradient", False

    def raw_maps(self, scenes: list[Scene]):
        return [np.abs(scene.probe.call(_traced_gradient, scene.pixels, scene.target).numpy()[0]).max(axis=-1)
                for scene in scenes]


def test_maps_recomputed_after_each_assignment_see_the_new_weights_without_tracing_again(lenet):
    TRACES.clear()
    check = sanity_check(lenet, digit(), CountingGradient(), ClassTarget(3), depth="all", cache=NO_CACHE)
    assert len(TRACES) == 1  # five maps (the original and four steps), one tracing
    assert np.all(check.spearman < 0.9) and len(set(np.round(check.spearman, 6))) == 4  # each step a new map


def test_randomizing_for_one_session_never_leaks_into_another_sessions_maps(lenet):
    """Session A's check pauses with the head randomized; meanwhile session B computes Grad-CAM on the shared
    model (the trained map), then runs its own check, which waits for A's and equals a check run alone."""
    image, target = digit(), ClassTarget(3)
    trained = heatmap(lenet, image, "gradcam", target, "conv2_relu").values
    alone = sanity_check(lenet, image, "gradcam", target, "conv2_relu", cache=NO_CACHE)
    paused, resumed, seen = threading.Event(), threading.Event(), {}

    class Pausing(HeatmapMethod):
        name, title = "gradcam", "Grad-CAM"

        def __init__(self):
            self.calls = 0

        def raw_maps(self, scenes):
            self.calls += 1
            if self.calls == 2:  # the first randomized step
                paused.set()
                assert resumed.wait(60)
            return GradCAM().raw_maps(scenes)

    def session_a():
        seen["a"] = sanity_check(lenet, image, Pausing(), target, "conv2_relu", cache=NO_CACHE)

    def session_b():
        assert paused.wait(60)
        seen["map"] = heatmap(lenet, image, "gradcam", target, "conv2_relu").values
        resumed.set()
        seen["b"] = sanity_check(lenet, image, "gradcam", target, "conv2_relu", cache=NO_CACHE)

    threads = [threading.Thread(target=session_a), threading.Thread(target=session_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    np.testing.assert_array_equal(seen["map"], trained)
    for session in ("a", "b"):
        np.testing.assert_array_equal(seen[session].spearman, alone.spearman)
        np.testing.assert_array_equal(seen[session].ssim, alone.ssim)


def test_a_check_is_cached_under_its_settings(lenet, tmp_path):
    cache = ResultCache(tmp_path)
    first = sanity_check(lenet, digit(), "gradcam", ClassTarget(3), cache=cache)
    again = sanity_check(lenet, digit(), "gradcam", ClassTarget(3), cache=cache)
    assert (first.from_cache, again.from_cache) == (False, True)
    np.testing.assert_array_equal(again.spearman, first.spearman)
    assert again.steps == first.steps and again.target == first.target == "3 (class 3)"
    other_seed = sanity_check(lenet, digit(), "gradcam", ClassTarget(3), seed=1, cache=cache)
    assert not other_seed.from_cache and not np.array_equal(other_seed.spearman, first.spearman)


def test_checks_of_other_methods_and_images_reuse_the_weights_drawn_for_the_seed(lenet):
    """The new weights depend on the model, the seed and the step only: drawn once, then every check on the copy
    (the page's three methods, another image) assigns the same values, so its maps equal a first check's."""
    from convvis_core.cam.randomization import DRAWS

    fresh = ResultCache(None)
    seed = 7  # not used by any other test here, so nothing is drawn for it yet
    before = DRAWS["steps"]
    first = sanity_check(lenet, digit(), "gradcam", ClassTarget(3), depth="all", seed=seed, cache=fresh)
    drawn = DRAWS["steps"] - before
    assert drawn == len(first.steps) > 1
    sanity_check(lenet, digit(), "gradcam++", ClassTarget(3), depth="all", seed=seed, cache=fresh)
    sanity_check(lenet, load_sample("digit_5"), "gradcam", ClassTarget(5), depth="all", seed=seed, cache=fresh)
    again = sanity_check(lenet, digit(), "gradcam", ClassTarget(3), depth="all", seed=seed, cache=fresh)
    assert DRAWS["steps"] - before == drawn  # none drawn again
    np.testing.assert_array_equal(again.spearman, first.spearman)


# --- the metrics -----------------------------------------------------------------------------------

SIZE = 12


def linear_models() -> list[LoadedModel]:
    """One linear classifier (3 logits of the pixels / 255), with its scaling outside (preprocessing "unit"),
    inside (a Rescaling layer, "raw"), and inside a nested base."""
    keras.utils.set_random_seed(2)
    dense = keras.layers.Dense(3, name="logits")
    inputs = keras.Input((SIZE, SIZE, 3))
    outside = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    inside = rebuilt(outside, keras.layers.Rescaling(1 / 255))
    base = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(),
                             keras.layers.Dense(3, name="logits")], name="base")
    base.layers[-1].set_weights(dense.get_weights())
    nested = keras.Model(inputs, base(inputs))
    names = ("a", "b", "c")
    return [LoadedModel(model, ModelInfo(key, key, "test", (SIZE, SIZE), 3, mode, names))
            for model, key, mode in ((outside, "outside", "unit"), (inside, "inside", "raw"), (nested, "nested", "raw"))]


def test_mufidelity_of_a_linear_models_weights_times_input_is_1_and_of_its_negative_minus_1():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), np.uint8))
    models = linear_models()
    kernel = models[0].model.get_layer("logits").kernel.numpy()[:, 1].reshape(SIZE, SIZE, 3)
    perfect = (kernel * np.asarray(image, np.float64) / 255).sum(axis=-1)  # the logit is the sum of these
    for loaded in models:
        for sign in (1, -1):
            assert mu_fidelity(loaded, image, sign * perfect, ClassTarget(1), baseline="black", grid=4,
                               samples=32) == pytest.approx(sign, abs=0.01), loaded.info.key
    unrelated = np.random.default_rng(1).random((SIZE, SIZE))
    assert abs(mu_fidelity(models[0], image, unrelated, ClassTarget(1), baseline="black", grid=4, samples=32)) < 0.5


def test_stability_of_any_method_on_a_constant_image_is_0(lenet):
    """A constant image has no pixel range, so its noisy copies are itself: whatever a method makes of it (a
    map shaped by the convolutions' padding, or no map: Score-CAM and Integrated Gradients' blur baseline is
    the image itself), the map does not move. The digit's maps do."""
    gray = Image.new("L", (28, 28), 128)
    for name, method in METHODS.items():
        assert average_stability(lenet, gray, method, ClassTarget(3), samples=2) == 0.0, name
        assert average_stability(lenet, digit(), method, ClassTarget(3), samples=2) > 0.0, name


def test_complexity_of_one_pixel_is_0_and_of_a_uniform_map_is_log_n():
    one = np.zeros((28, 28))
    one[5, 7] = 0.3
    assert complexity(one) == 0.0
    assert complexity(np.full((28, 28), 0.2)) == pytest.approx(np.log(784))
    assert complexity(np.array([[1.0, -1.0]])) == pytest.approx(np.log(2))  # of the magnitude
    with pytest.raises(ConvVisError, match="all zero"):
        complexity(np.zeros((4, 4)))


def lenet_variants(lenet: LoadedModel, nested: LoadedModel) -> list[LoadedModel]:
    names = lenet.info.class_names
    inside = LoadedModel(rebuilt(lenet.model, keras.layers.Rescaling(1 / 255)),
                         ModelInfo("lenet_inside", "LeNet, rescaling inside", "test", (28, 28), 1, "raw", names))
    return [lenet, inside, nested]


def test_the_same_check_and_metrics_with_the_preprocessing_inside_or_outside_nested_or_flat(lenet, nested_lenet):
    results = []
    for loaded in lenet_variants(lenet, nested_lenet):
        layer = "lenet_features/conv2_relu" if loaded is nested_lenet else "conv2_relu"
        check = sanity_check(loaded, digit(), "gradcam", ClassTarget(3), layer, depth="all", cache=NO_CACHE)
        found = heatmap(loaded, digit(), "gradcam", ClassTarget(3), layer)
        results.append((check, trust_scores(loaded, digit(), "gradcam", found, cache=NO_CACHE)))
    (reference, scores), others = results[0], results[1:]
    assert results[2][0].steps == ("logits", "fc1", "lenet_features/conv2", "lenet_features/conv1")
    for check, other_scores in others:
        np.testing.assert_allclose(check.spearman, reference.spearman, atol=1e-4)
        np.testing.assert_allclose(check.ssim, reference.ssim, atol=1e-4)
        np.testing.assert_allclose(list(other_scores.values().values()), list(scores.values().values()), atol=1e-4)


# --- bad input, the verdict, the page ---------------------------------------------------------------

def test_bad_inputs_get_messages_that_say_what_to_do(lenet):
    inputs = keras.Input((10, 10, 1))
    conv = keras.layers.Conv2D(3, 3, activation="relu", name="conv")(inputs)
    model = keras.Model(inputs, keras.layers.Softmax()(keras.layers.GlobalAveragePooling2D()(conv)))
    loaded = LoadedModel(model, ModelInfo("bare", "Bare", "test", (10, 10), 1, "unit", ("a", "b", "c")))
    with pytest.raises(RandomizationError, match="No layer with weights lies between conv and the target .* Explain "
                                                 "an earlier layer"):
        sanity_check(loaded, Image.new("L", (10, 10), 50), "gradcam", ClassTarget(0), "conv", cache=NO_CACHE)
    with pytest.raises(RandomizationError, match="between conv2_relu and the target \\(filter 0 of conv2_relu"):
        sanity_check(lenet, digit(), "gradcam", FilterTarget("conv2_relu", 0), "conv2_relu", cache=NO_CACHE)
    with pytest.raises(LayerError, match="has no layer named 'conv9'. Did you mean: conv2"):
        sanity_check(lenet, digit(), "gradcam", ClassTarget(3), "conv9", cache=NO_CACHE)
    with pytest.raises(LayerError, match="'fc1' has no spatial"):
        sanity_check(lenet, digit(), "gradcam", ClassTarget(3), "fc1", cache=NO_CACHE)
    with pytest.raises(ConvVisError, match="Unknown randomization mode 'sideways'"):
        sanity_check(lenet, digit(), "gradcam", mode="sideways")
    with pytest.raises(ConvVisError, match="one value per pixel of the model's input \\(28×28\\)"):
        mu_fidelity(lenet, digit(), np.ones((7, 7)), ClassTarget(3))
    with pytest.raises(ConvVisError, match="grid needs 2 to 28 cells"):
        mu_fidelity(lenet, digit(), np.ones((28, 28)), ClassTarget(3), grid=40)
    with pytest.raises(ConvVisError, match="strictly between none and all"):
        mu_fidelity(lenet, digit(), np.ones((28, 28)), ClassTarget(3), subset=1.0)
    with pytest.raises(ConvVisError, match="at least one noisy copy"):
        average_stability(lenet, digit(), METHODS["gradcam"], ClassTarget(3), samples=0)


def test_a_map_that_fails_the_sanity_check_is_never_recommended_whatever_its_scores():
    best = verdict({"a": scored_with(0.1, 0.9, 0.3), "b": scored_with(0.3, 0.5, 0.1)}, failed={"a"})
    assert (best.best_deletion, best.best_insertion, best.best_road, best.failed) == ("b", "b", "b", ("a",))
    assert "Not recommended whatever their scores: **Grad-CAM**" in best.sentence(TITLES)
    assert "**Score-CAM** removes the evidence fastest" in best.sentence(TITLES)
    none = verdict({"a": scored_with(0.1, 0.9, 0.3)}, failed={"a"})
    assert none.best_deletion is None and none.sentence(TITLES).startswith("Every map here fails the sanity check")


def test_the_command_line_prints_the_cascading_curve_the_flag_and_the_metrics(lenet, tmp_path, capsys):
    assert main(["cam", "lenet_mnist", "digit_3", "--layer", "conv2_relu", "--class", "3", "--sanity",
                 "--out", str(tmp_path / "cam.png")]) == 0
    printed = capsys.readouterr().out
    check = sanity_check(lenet, load_sample("digit_3"), "gradcam", ClassTarget(3), "conv2_relu")
    rows = re.findall(r"^\s+(\d)\s+(\S+)\s+(-?[0-9.]+)\s+(-?[0-9.]+)$", printed, re.MULTILINE)
    assert [(name, float(rank)) for _, name, rank, _ in rows] == [
        (name, pytest.approx(rank, abs=5e-4)) for name, rank in zip(check.steps, check.spearman)]
    assert check.sentence() in printed and "Spearman rank correlation of |map| with the original" in printed
    for title in ("MuFidelity ↑", "Stability ↓", "Complexity ↓"):
        assert re.search(rf"^  {title}\s+-?[0-9.]+  \S", printed, re.MULTILINE), title
    assert "(log 784 = 6.66 here)" in printed


def test_the_api_checks_a_batch_as_the_core_checks_each_image(lenet):
    digits = [load_sample("digit_3"), load_sample("digit_4")]
    method = cv.GradCAM(lenet, "conv2_relu")
    checks = cv.sanity_check(method, digits, [3, 4])
    for i, (image, target) in enumerate(zip(digits, (3, 4))):
        alone = sanity_check(lenet, image, "gradcam", ClassTarget(target), "conv2_relu", cache=NO_CACHE)
        np.testing.assert_allclose(checks.spearman[i], alone.spearman)
        np.testing.assert_allclose(checks.ssim[i], alone.ssim)
        assert checks.flagged[i] is alone.flagged is False
    assert checks.steps == ("logits", "fc1") and len(checks.rows()) == 4
    assert "Grad-CAM depends on the model above conv2_relu" in checks._repr_html_()
    metrics = cv.trust_metrics(method, digits, [3, 4])
    maps = method(digits, [3, 4])
    alone = trust_scores(lenet, digits[1], "gradcam", maps.found[1], cache=NO_CACHE)
    assert metrics.mu_fidelity[1] == pytest.approx(alone.mu_fidelity)
    assert metrics.stability[1] == pytest.approx(alone.stability)
    assert metrics.complexity[1] == pytest.approx(complexity(maps.maps[1]))
    assert "MuFidelity ↑" in metrics._repr_html_() and "lower is better" in metrics.title()
