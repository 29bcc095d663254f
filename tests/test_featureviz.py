"""Feature visualization: real models, activations checked by an independent forward pass (the pages:
test_filters_page.py, test_unit_page.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from convvis_core.cache import ResultCache
from convvis_core.errors import ConvVisError, LayerError
from convvis_core.featureviz import PRESETS, Settings, visualize_filters
from convvis_core.presentation.filter_grids import caption, filter_grid
from convvis_core.featureviz import objectives
from convvis_core.featureviz.parameterizations import PARAMETERIZATIONS as REGISTERED
from convvis_core.featureviz.parameterizations import FourierImage, Parameterization, make_parameterization
from convvis_core.featureviz.settings import PARAMETERIZATIONS
from convvis_core.featureviz.presets import FAST, SMALL_INPUTS, by_preference, default_preset, fitted_preset
from convvis_core.featureviz.render import RENDER_STATS, cached_under, diverse_pictures, prepare_in_background
from convvis_core.featureviz.transforms import fused
from convvis_core.featureviz.selection import parse_filters
from convvis_core.models import LoadedModel, ModelInfo
from convvis_core.preprocessing import preprocess

QUICK = PRESETS["quick preview"].replace(steps=24, size=224, batch_size=8)


def direct_channel_mean(model: keras.Model, layer: str, image: np.ndarray, filter_index: int, mode: str) -> float:
    """The channel's mean activation on a uint8 image, by a plain Keras sub-model (independent of ConvVis)."""
    probe = keras.Model(model.inputs[0], model.get_layer(layer).output)
    probe.input_spec = None  # convolutional up to the layer: any image size
    x = preprocess(image.astype(np.float32)[None], mode)
    return float(np.asarray(probe(x))[0, :, :, filter_index].mean())


def test_optimized_images_raise_their_filters_far_above_the_start(mobilenet):
    layer, filters = "conv_pw_8_relu", list(range(8))
    results = visualize_filters(mobilenet, layer, filters, QUICK, cache=ResultCache(None))
    assert [r.filter_index for r in results] == filters
    grey = np.full((224, 224, 3), 128, np.uint8)
    for result in results:
        assert result.image.shape == (224, 224, 3) and result.image.dtype == np.uint8
        reached = direct_channel_mean(mobilenet.model, layer, result.image, result.filter_index, "tf")
        assert reached == pytest.approx(result.final_activation, abs=0.05 + 0.02 * abs(reached))
        baseline = direct_channel_mean(mobilenet.model, layer, grey, result.filter_index, "tf")
        assert reached > max(result.start_activation, baseline) + 2.0  # MobileNet's ReLU6 caps it at 6
        assert not result.dead


def test_the_fast_preset_raises_eight_filters_far_above_the_start_and_repeats_exactly(mobilenet):
    """The default recipe for ImageNet models, shortened: an independent forward pass confirms what it reached."""
    layer, filters = "conv_pw_8_relu", list(range(8))
    assert default_preset(mobilenet.info.input_size) == FAST
    settings = PRESETS[FAST].replace(steps=32)
    results = visualize_filters(mobilenet, layer, filters, settings, cache=ResultCache(None))
    grey = np.full((128, 128, 3), 128, np.uint8)
    for result in results:
        reached = direct_channel_mean(mobilenet.model, layer, result.image, result.filter_index, "tf")
        assert reached == pytest.approx(result.final_activation, abs=0.05 + 0.02 * abs(reached))
        baseline = direct_channel_mean(mobilenet.model, layer, grey, result.filter_index, "tf")
        assert reached > max(result.start_activation, baseline) + 2.0, (result.filter_index, reached, baseline)
        assert not result.dead and not result.weak
    again = visualize_filters(mobilenet, layer, filters[:2], settings.replace(batch_size=2), cache=ResultCache(None))
    for first, second in zip(results, again):  # same seed: the same picture, whatever the batch
        np.testing.assert_allclose(first.image.astype(int), second.image.astype(int), atol=2)
    other = visualize_filters(mobilenet, layer, filters[:1], settings.replace(seed=1), cache=ResultCache(None))
    assert np.abs(other[0].image.astype(int) - results[0].image.astype(int)).mean() > 10  # another seed, another start


def test_fused_transforms_feed_one_shape_and_are_pad_and_crop_without_scale_or_rotation():
    images = tf.constant(np.random.default_rng(0).uniform(size=(2, 20, 20, 3)).astype(np.float32))
    shift_only = fused(pad=3, jitter=2, scale=0.0, degrees=0.0, final_jitter=1)
    padded = np.pad(images.numpy(), [(0, 0), (3, 3), (3, 3), (0, 0)], constant_values=0.5)
    offsets = set()
    for step in range(12):
        out = shift_only(images, tf.constant([0, step])).numpy()
        assert out.shape == (2, 23, 23, 3)  # 20 + 2 * 3 - 2 - 1
        matches = [(y, x) for y in range(4) for x in range(4) if np.allclose(out, padded[:, y:y + 23, x:x + 23], atol=1e-5)]
        assert len(matches) == 1, step  # an exact crop of the padded image, offsets 0..jitter + final jitter
        offsets.add(matches[0])
    assert len(offsets) > 3  # the offset is random per step
    lucid = fused(pad=12, jitter=8, scale=0.1, degrees=10.0, final_jitter=4)
    shapes = {lucid(images, tf.constant([1, step])).shape for step in range(8)}
    assert shapes == {(2, 20 + 24 - 12, 20 + 24 - 12, 3)}  # scaled and rotated, yet one input size for the model
    yy, xx = np.mgrid[:21, :21]
    blob = np.exp(-((yy - 10) ** 2 + (xx - 10) ** 2) / 8.0).astype(np.float32)[None, ..., None]
    for step in range(6):  # the canvas centre lands within the jitters (4 + 2 px, scaled and turned) of the output's
        moved = lucid(tf.constant(blob), tf.constant([2, step])).numpy()[0, ..., 0]
        y, x = np.unravel_index(np.argmax(moved), moved.shape)
        assert max(abs(y - 16), abs(x - 16)) <= 7.5 and moved.max() > 0.8, (step, y, x)


def test_small_inputs_default_to_pixels_at_model_size_which_leave_no_lenet_filter_weak(lenet):
    """Where the bounded Fourier picture leaves LeNet's conv2 filters 0 and 2 below zero (see the weak
    test below), the default for 28×28 inputs reaches every one of the first 16 filters of both layers."""
    name = default_preset(lenet.info.input_size)
    settings = fitted_preset(name, lenet.info.input_size)
    assert name == SMALL_INPUTS and settings.size == 28 and settings.parameterization == "pixel"
    for layer in ("conv1_relu", "conv2_relu"):
        results = visualize_filters(lenet, layer, list(range(16)), settings.replace(batch_size=16), cache=ResultCache(None))
        assert not [r.filter_index for r in results if r.weak or r.dead], layer
        assert min(r.optimized_value for r in results) > 0.05


def test_a_prepared_layer_is_traced_before_the_request_and_the_first_frame_follows_the_first_step(lenet):
    settings = PRESETS["quick preview"].replace(steps=12, size=28, batch_size=4, rotate=4.0)  # a step no other test traces
    traces = RENDER_STATS.traces["conv2_relu", 3]
    prepare_in_background(lenet, "conv2_relu", 6, settings).join()  # 6 filters: two chunks of 3
    assert RENDER_STATS.traces["conv2_relu", 3] == traces + 1
    frames = []
    visualize_filters(lenet, "conv2_relu", list(range(6)), settings, cache=ResultCache(None),
                      on_frame=lambda step, images: frames.append((step, sorted(images))), preview_every=8)
    assert frames == [(1, [0, 1, 2]), (8, [0, 1, 2]), (12, [0, 1, 2]), (1, [3, 4, 5]), (8, [3, 4, 5]), (12, [3, 4, 5])]
    assert RENDER_STATS.traces["conv2_relu", 3] == traces + 1  # the request used the prepared trace


def test_fourier_images_are_finite_in_range_and_match_an_inverse_fft():
    param = FourierImage(size=32, channels=3, decorrelate=False)
    spectrum = np.zeros((1, 2, 3, 32, 17), np.float32)
    spectrum[0, 0, :, 0, 2] = 1.0  # one horizontal frequency, 2 cycles per image, real part only
    image = param.to_image(tf.constant(spectrum)).numpy()[0]
    expected_wave = np.fft.irfft2(spectrum[0, 0, 0] * np.asarray(param.scale)[0, 0], s=(32, 32)) / 4.0
    np.testing.assert_allclose(image[..., 0], 1 / (1 + np.exp(-expected_wave)), atol=1e-5)
    random = param.to_image(tf.constant(param.initial(list(range(4)), seed=3) * 100)).numpy()
    assert np.isfinite(random).all() and random.min() >= 0 and random.max() <= 1
    np.testing.assert_array_equal(param.initial([5], 3), param.initial([1, 5], 3)[1:])  # per-filter start


def test_a_repeat_is_served_from_disk_with_identical_pixels_and_corrupt_files_are_recomputed(lenet, tmp_path):
    settings = PRESETS["quick preview"].replace(steps=8, size=28)
    first = visualize_filters(lenet, "conv2_relu", [0, 1, 2], settings, cache=ResultCache(tmp_path))
    assert not any(r.from_cache for r in first)
    files = sorted(tmp_path.glob("*/*.npz"))
    assert len(files) == 3
    again = visualize_filters(lenet, "conv2_relu", [0, 1, 2], settings, cache=ResultCache(tmp_path))  # "restart"
    assert all(r.from_cache for r in again)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.image, b.image)
        assert a.final_activation == b.final_activation
    victim = files[0]
    victim.write_bytes(victim.read_bytes()[:100])  # a partial write
    third = visualize_filters(lenet, "conv2_relu", [0, 1, 2], settings, cache=ResultCache(tmp_path))
    assert sum(not r.from_cache for r in third) == 1
    for a, b in zip(first, third):
        np.testing.assert_allclose(a.image.astype(int), b.image.astype(int), atol=2)
    changed = visualize_filters(lenet, "conv2_relu", [0], settings.replace(seed=1), cache=ResultCache(tmp_path))
    assert not changed[0].from_cache  # every setting is part of the key


def test_a_dead_filter_is_reported_and_drawn_grey():
    inputs = keras.Input((16, 16, 3))
    conv = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv")
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(conv(inputs)))
    kernel = np.random.default_rng(0).normal(size=(3, 3, 3, 3)).astype(np.float32)
    kernel[..., 1] = 0.0
    conv.set_weights([kernel, np.array([0.1, -1.0, 0.1], np.float32)])  # filter 1: always -1 before ReLU
    loaded = LoadedModel(model, ModelInfo("hand", "hand-built", "test", (16, 16), 3, "unit"))
    results = visualize_filters(loaded, "conv", [0, 1, 2], QUICK.replace(size=16), cache=ResultCache(None))
    assert [r.dead for r in results] == [False, True, False]
    assert results[1].final_activation == 0.0
    grid = np.asarray(filter_grid(results, columns=3, labels=False, margin=0))
    assert (grid[:, 32:] == 128).all() and grid[:, :32].std() > 0  # dead tile: flat grey, sorted last


def test_a_filter_the_recipe_does_not_reach_is_weak_not_dead(lenet):
    """LeNet's conv2 filters 0 and 2 stay below zero before their ReLU under the bounded Fourier recipe
    (their pictures barely fire them), yet unbounded pixels with L2-normalized steps drive them high."""
    filters = [0, 1, 2, 3]
    bounded = visualize_filters(lenet, "conv2_relu", filters, QUICK.replace(steps=16, size=28), cache=ResultCache(None))
    assert [r.weak for r in bounded] == [True, False, True, False]
    assert not any(r.dead for r in bounded)  # their gradients are not zero: they are not dead
    assert all(r.optimized_value < -0.2 and r.final_activation < 0.01 for r in (bounded[0], bounded[2]))
    pixels = visualize_filters(lenet, "conv2_relu", filters, PRESETS["keras.io example"].replace(steps=16, size=28),
                               cache=ResultCache(None))
    assert not any(r.weak or r.dead for r in pixels)
    assert min(r.final_activation for r in pixels) > 1.0
    assert [caption(r) for r in bounded[2:]] == [f"#2 · {bounded[2].final_activation:.3g} · weak",
                                                 f"#3 · {bounded[3].final_activation:.3g}"]


def test_class_logit_images_are_classified_as_their_class(lenet):
    settings = PRESETS["Lucid"].replace(objective=objectives.ClassLogit(), steps=48, pad=2, jitter=2, final_jitter=1, rotate=5.0)
    results = visualize_filters(lenet, "", [3, 8], settings, cache=ResultCache(None))
    for result in results:
        probabilities = lenet.model.predict(result.image[None, ..., None].astype(np.float32) / 255, verbose=0)[0]
        assert probabilities.argmax() == result.filter_index, probabilities


def test_the_step_is_traced_once_for_all_filter_indices(lenet):
    settings = PRESETS["quick preview"].replace(steps=3, size=28, batch_size=2, seed=7)
    before = RENDER_STATS.traces["conv1", 2]
    visualize_filters(lenet, "conv1", [0, 1], settings, cache=ResultCache(None))
    traces = RENDER_STATS.traces["conv1", 2]
    assert traces - before in (0, 1)  # traced now, or by an earlier test with the same traced settings
    for filters in ([2, 3], [10, 11]):
        visualize_filters(lenet, "conv1", filters, settings, cache=ResultCache(None))
    assert RENDER_STATS.traces["conv1", 2] == traces


def test_results_do_not_depend_on_batching(lenet):
    settings = PRESETS["quick preview"].replace(steps=6, size=28)
    together = visualize_filters(lenet, "conv1", [4, 5, 6], settings.replace(batch_size=3), cache=ResultCache(None))
    alone = visualize_filters(lenet, "conv1", [5], settings.replace(batch_size=1), cache=ResultCache(None))
    np.testing.assert_allclose(together[1].image.astype(int), alone[0].image.astype(int), atol=2)


def test_bad_requests_are_clear_errors(lenet):
    with pytest.raises(LayerError, match="Filter 50 is out of range: conv1 has 20 channels"):
        visualize_filters(lenet, "conv1", [0, 50], cache=ResultCache(None))
    with pytest.raises(LayerError, match="no layer named 'conv9'"):
        visualize_filters(lenet, "conv9", [0], cache=ResultCache(None))
    with pytest.raises(ConvVisError, match="diverged.*Lower the learning rate"):
        visualize_filters(lenet, "conv1", [0], Settings(parameterization="pixel", optimizer="l2_normalized",
                                                         learning_rate=1e38, steps=4, size=28, pad=0, jitter=0,
                                                         scale=0.0, rotate=0.0, final_jitter=0), cache=ResultCache(None))
    with pytest.raises(ConvVisError, match="out of range"):
        parse_filters("0-25", 20)
    with pytest.raises(ConvVisError, match="not a filter index"):
        parse_filters("a-b", 20)
    assert parse_filters("3, 0-2, 3", 20) == [3, 0, 1, 2]


def test_pages_find_a_picture_under_any_preset_the_preferred_first_and_compute_nothing(lenet, tmp_path):
    cache = ResultCache(tmp_path)
    small = PRESETS["quick preview"].replace(steps=4, size=28)
    presets = {"preferred": small, "other": small.replace(seed=5)}
    visualize_filters(lenet, "conv1", [0, 1], presets["other"], cache=cache)
    preferred = visualize_filters(lenet, "conv1", [1], presets["preferred"], cache=cache)[0]
    found = cached_under(lenet, "conv1", [0, 1, 2], presets, cache=cache)
    assert {f: result.preset for f, result in found.items()} == {0: "other", 1: "preferred"}  # 2: never computed
    assert all(result.from_cache for result in found.values())
    np.testing.assert_array_equal(found[1].image, preferred.image)
    order = by_preference(lenet.info.input_size)  # the pages' order: the model's default, then every other preset
    assert list(order)[0] == SMALL_INPUTS and set(order) == set(PRESETS) and order[SMALL_INPUTS].size == 28


def _reading(seed: int = 0) -> objectives.Reading:
    """Random maps of a layer (optimized and reported alike), three images' filters, and the images."""
    rng = np.random.default_rng(seed)
    maps = tf.constant(rng.normal(size=(3, 5, 6, 10)).astype(np.float32))
    images = tf.constant(rng.uniform(size=(3, 12, 12, 3)).astype(np.float32))
    return objectives.Reading("layer", {"layer": maps}, {"layer": maps}, tf.constant([3, 0, 9]), images)


def test_recipe_arithmetic_builds_the_tree_and_the_loss_numpy_computes():
    r = objectives.Filter() - 0.5 * objectives.Channel(None, 7) + 0.1 * objectives.TotalVariation()
    assert r == objectives.Sum((objectives.Filter(), objectives.Scaled(-0.5, objectives.Channel(None, 7)),
                                objectives.Scaled(0.1, objectives.TotalVariation())))
    assert str(r) == "Filter() - 0.5 * Channel(None, 7) + 0.1 * TotalVariation()"
    reading = _reading()
    maps, images, filters = reading.maps(None).numpy(), reading.images.numpy(), reading.filters.numpy()
    got = r.value(reading).numpy()
    tv = (np.abs(np.diff(images, axis=1)).mean(axis=(1, 2, 3)) + np.abs(np.diff(images, axis=2)).mean(axis=(1, 2, 3)))
    expected = maps[np.arange(3), :, :, filters].mean(axis=(1, 2)) - 0.5 * maps[..., 7].mean(axis=(1, 2)) + 0.1 * tv
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    neuron = objectives.Neuron(None, 4).value(reading).numpy()
    np.testing.assert_allclose(neuron, maps[:, 2, 3, 4])
    assert objectives.with_neuron(1.0, 4) == objectives.Scaled(1.0, objectives.Neuron(None, 4))


def test_the_diversity_term_is_minus_the_mean_gram_similarity_with_the_others():
    reading = _reading(1)
    maps = reading.maps(None).numpy()
    gram = np.einsum("nhwc,nhwd->ncd", maps, maps).reshape(3, -1)
    gram /= np.linalg.norm(gram, axis=1, keepdims=True)
    similarity = gram @ gram.T
    expected = -(similarity.sum(axis=1) - np.diag(similarity)) / 2
    np.testing.assert_allclose(objectives.Diversity().value(reading).numpy(), expected, rtol=1e-5)
    copies = tf.constant(np.repeat(maps[:1], 3, axis=0))  # identical pictures: the most similar there can be
    same = objectives.Reading("layer", {"layer": copies}, {"layer": copies}, reading.filters, reading.images)
    assert objectives.Diversity().value(same).numpy() == pytest.approx([-1.0] * 3)


def test_a_recipe_serializes_to_the_same_key_in_a_fresh_process_and_weights_change_it():
    r = objectives.Filter() - 0.5 * objectives.Channel(None, 7) + 0.1 * objectives.TotalVariation()
    assert objectives.parse(r.spec()) == r
    script = ("from convvis_core.featureviz import objectives as r; "
              "print((r.Filter() - 0.5 * r.Channel(None, 7) + 0.1 * r.TotalVariation()).spec())")
    fresh = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "123"}).stdout.strip()
    assert fresh == r.spec()
    assert Settings(objective=r).result_part()["objective"] == r.spec()  # the key holds the spec


def test_the_difference_recipe_raises_a_and_lowers_b_against_a_alone_and_weights_matter(lenet):
    settings = fitted_preset(SMALL_INPUTS, lenet.info.input_size).replace(steps=32)
    layer, a, b = "conv2_relu", 3, 7
    sub = keras.Model(lenet.model.inputs, lenet.model.get_layer(layer).output)

    def means(image: np.ndarray) -> np.ndarray:
        pixels = preprocess(image.astype(np.float32)[None, ..., None], lenet.info.preprocessing)
        return np.asarray(sub(pixels))[0].mean(axis=(0, 1))

    alone = visualize_filters(lenet, layer, [a], settings, cache=ResultCache(None))[0]
    difference = objectives.Filter() + objectives.difference(1.0, b)
    apart = visualize_filters(lenet, layer, [a], settings.replace(objective=difference), cache=ResultCache(None))[0]
    assert apart.final_activation > apart.start_activation  # the difference rises
    assert means(apart.image)[b] < means(alone.image)[b]  # and b falls against a alone
    assert not np.array_equal(alone.image, apart.image)
    smooth = visualize_filters(lenet, layer, [a],
                               settings.replace(objective=objectives.penalized(objectives.Filter(), {"total variation": 5.0})),
                               cache=ResultCache(None))[0]

    def variation(image: np.ndarray) -> float:  # total variation as regularizers.total_variation, in numpy
        x = image.astype(np.float64) / 255.0
        return float(np.abs(np.diff(x, axis=0)).mean() + np.abs(np.diff(x, axis=1)).mean())

    assert variation(smooth.image) < variation(alone.image)  # a regularizer is a term of the recipe, and it works
    with pytest.raises(LayerError, match="Filter 99 is out of range"):
        visualize_filters(lenet, layer, [a], settings.replace(objective=difference - objectives.Channel(None, 99)),
                          cache=ResultCache(None))


def test_diverse_pictures_differ_more_than_independent_starts_and_each_excites_the_filter(lenet, tmp_path):
    settings = fitted_preset(SMALL_INPUTS, lenet.info.input_size).replace(steps=48)
    cache = ResultCache(tmp_path)
    plain = diverse_pictures(lenet, "conv2_relu", 3, 3, settings, weight=0.0, cache=cache)  # own starts, no push
    diverse = diverse_pictures(lenet, "conv2_relu", 3, 3, settings, cache=cache)

    def spread(results) -> float:
        images = [r.image.astype(float) for r in results]
        return np.mean([np.abs(images[i] - images[j]).mean() for i in range(3) for j in range(i)])

    assert spread(diverse) > 1.3 * spread(plain)
    assert all(r.final_activation > r.start_activation for r in diverse)
    runs = RENDER_STATS.runs["conv2_relu"]
    again = diverse_pictures(lenet, "conv2_relu", 3, 3, settings, cache=cache)
    assert RENDER_STATS.runs["conv2_relu"] == runs and all(r.from_cache for r in again)
    np.testing.assert_array_equal(again[1].image, diverse[1].image)


def test_a_registered_parameterization_round_trips():
    class Grey(Parameterization):  # registered by being defined, as an optimizer is
        name, description = "test-grey", "a flat grey start"

        def __init__(self, size, channels, decorrelate):
            self.size, self.channels = size, channels

        def initial(self, filters, seed):
            return np.full((len(filters), self.size, self.size, self.channels), 0.5, np.float32)

        def to_image(self, params):
            return params

    try:
        assert isinstance(make_parameterization("test-grey", 16, 3, False), Grey)
        assert {"pixel", "fourier", "test-grey"} <= set(REGISTERED)
    finally:
        del REGISTERED["test-grey"]
    assert {"pixel", "fourier"} <= set(PARAMETERIZATIONS)
    for name in PARAMETERIZATIONS:
        assert Settings(parameterization=name).parameterization == name
        param = make_parameterization(name, 16, 3, True)
        start = param.initial([2], 0)
        np.testing.assert_array_equal(start, param.initial([2], 0))
        assert param.to_image(tf.constant(start)).shape == (1, 16, 16, 3)
    with pytest.raises(ValueError, match="Unknown parameterization"):
        Settings(parameterization="nonsense")
