"""One objective algebra: terms add and scale, round-trip through their spec and their text, read the layers
they name, and the objectives that were names before keep their pictures and their cache keys."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from convvis_core.cache import ResultCache, cache_key, model_fingerprint
from convvis_core.cli import main as cli_main
from convvis_core.errors import ConvVisError, LayerError, SettingsError
from convvis_core.featureviz import (PRESETS, Blur, Channel, ClassLogit, DeepDream, Direction, Diversity, Filter, L1,
                                     Neuron, Settings, TotalVariation, parse, visualize, visualize_filters)
from convvis_core.featureviz.objectives import Reading, Scaled, Sum
from convvis_core.featureviz.parameterizations import make_parameterization
from convvis_core.featureviz.presets import FAST, SMALL_INPUTS
from convvis_core.featureviz.render import result_key
from convvis_core.models import LoadedModel, ModelInfo
from convvis_core.precision import PRECISION_ENV, fast_dtype
from convvis_core.preprocessing import preprocess

SHORT = {"steps": 16, "size": 28}  # LeNet at its own size: a picture in a fraction of a second
PREVIEW = "quick preview"  # Fourier: the picture shown is the picture optimized, so a forward pass can check it


def test_sums_and_weights_nest_and_round_trip_through_the_spec_and_the_text():
    a, b = Channel("conv_pw_8_relu", 3), Channel("conv_pw_8_relu", 7)
    doubled = (a + b) * 2
    assert doubled == Scaled(2.0, Sum((a, b))) == 2 * (a + b)
    assert str(doubled) == '2.0 * (Channel("conv_pw_8_relu", 3) + Channel("conv_pw_8_relu", 7))'
    assert a - 0.5 * b == Sum((a, Scaled(-0.5, b))) and 2 * (3 * a) == Scaled(6.0, a)
    terms = [doubled, a - 0.5 * b, Filter(border=2) + 0.1 * TotalVariation() - L1() - 2 * Blur(),
             Direction("conv2_relu", np.float32([0.25, -1, 0])), ClassLogit(3), ClassLogit(), DeepDream("conv1"),
             Neuron(None, 4, row=1, col=2) + 3 * Diversity("conv2"), -Filter()]
    for term in terms:
        assert parse(term.spec()) == term, term.spec()
        assert parse(str(term)) == term, str(term)
        assert hash(parse(term.spec())) == hash(term)  # one renderer serves equal objectives
    assert Direction("c", np.float32([0.25, -1, 0])).vector == (0.25, -1.0, 0.0)  # canonical: a tuple of floats
    assert (a - 0.6 * b).spec() != (a - 0.5 * b).spec() and Channel("x", 3).spec() != Channel(None, 3).spec()


def _reading(optimized: np.ndarray, outputs: np.ndarray, filters: list[int], images: np.ndarray) -> Reading:
    return Reading("here", {"here": tf.constant(optimized)}, {"here": tf.constant(outputs)}, tf.constant(filters),
                   tf.constant(images))


def test_each_term_computes_its_formula():
    rng = np.random.default_rng(0)
    before = rng.normal(size=(3, 5, 6, 4)).astype(np.float32)  # a rectified layer before its ReLU
    after = np.maximum(before, 0)
    images = rng.uniform(size=(3, 8, 8, 3)).astype(np.float32)
    reading = _reading(before, after, [3, 0, 2], images)
    vector = np.float32([0.5, -1.0, 0.0, 2.0])

    def value(term) -> np.ndarray:
        return term.value(reading).numpy()

    np.testing.assert_allclose(value(Filter()), before[np.arange(3), :, :, [3, 0, 2]].mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(value(Filter(border=1)), before[np.arange(3), 1:-1, 1:-1, [3, 0, 2]].mean(axis=(1, 2)),
                               rtol=1e-5)
    np.testing.assert_allclose(value(Channel("here", 1)), before[..., 1].mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(value(Direction(None, vector)), (before @ vector).mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(value(Neuron(None, 2, row=1, col=4)), before[:, 1, 4, 2])
    np.testing.assert_allclose(value(Neuron()), before[np.arange(3), 2, 3, [3, 0, 2]])  # each image's filter at the centre
    np.testing.assert_allclose(value(DeepDream()), np.square(after).mean(axis=(1, 2, 3)), rtol=1e-5)  # after its ReLU
    np.testing.assert_allclose(value((Channel(None, 1) + Channel(None, 2)) * 2),
                               2 * (before[..., 1] + before[..., 2]).mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(Channel(None, 1).value(reading.as_is()).numpy(), after[..., 1].mean(axis=(1, 2)),
                               rtol=1e-5)  # as reported: the real output
    logits = rng.normal(size=(3, 10)).astype(np.float32)
    with_logits = Reading("here", {"<logits>": tf.constant(logits)}, {"<logits>": tf.constant(logits)},
                          tf.constant([3, 0, 2]), tf.constant(images))
    np.testing.assert_allclose(ClassLogit().value(with_logits).numpy(), logits[np.arange(3), [3, 0, 2]])
    np.testing.assert_allclose(ClassLogit(7).value(with_logits).numpy(), logits[:, 7])


# cache_key(preset.result_part()) of every preset and of the objectives that were names, computed on the code
# before objectives were terms (commit 618f9ca): the pictures cached then are found now.
PINNED = {
    "keras.io example": "971942bd4e25dee2355a329bae169b3feec49b21c15018c82f6b1be87bb59589",
    "Lucid": "b9b0255697ccb4285539daac1b2b25a9bbf53ca2d7db3ee8e6fd647c6a7d811f",
    "fast Lucid": "ff6ed8e7d577c77184cf558a6a982930904a846fd75666979a666f3673552d2a",
    "quick preview": "e1de043a239edd55020ca12904d5c5f0e679e907234cf67cb6f2a3017ec2ede5",
    "pixels at model size": "60b2359552e866c50cbc835d0cab9499135828b4dd8d802ff49d1e781dadd7b6",
}
PINNED_NAMED_BEFORE = {  # "fast Lucid" with objective="class_logit", "deepdream", "neuron"
    ClassLogit(): "3a96808d1ab2c8ed42f012b0a4e7b6e95fc97c205c9ccfaaecf7a41b3ced44e8",
    DeepDream(): "9c3cc29ff1c72a96dec9c9d11f711305404d8f2e00d16327981dd361eba99d05",
    Neuron(): "faff5ecabd178bcdc8d80a57dee58af5785c918d4ccadac320c34a9ef7b8d8a9",
}


def test_cache_keys_of_unchanged_presets_stay_as_they_were(lenet):
    assert set(PINNED) == set(PRESETS)
    assert {name: cache_key(settings.result_part()) for name, settings in PRESETS.items()} == PINNED
    assert {term: cache_key(PRESETS[FAST].replace(objective=term).result_part()) for term in PINNED_NAMED_BEFORE} == \
        PINNED_NAMED_BEFORE
    before = {"objective": "channel", "border": 0, "parameterization": "fourier", "decorrelate": True, "pad": 12,
              "jitter": 8, "scale": 0.1, "rotate": 10.0, "final_jitter": 4, "fused_transforms": True, "optimizer": "adam",
              "learning_rate": 0.1, "steps": 96, "size": 128, "seed": 0}  # the key's parts as they were
    assert result_key(lenet, "conv2_relu", 3, PRESETS[FAST]) == cache_key(
        model_fingerprint(lenet.model), lenet.info.preprocessing, "conv2_relu", 3, fast_dtype(), before)
    changed = PRESETS[FAST].replace(objective=Filter() - 0.5 * Channel(None, 7))
    assert cache_key(changed.result_part()) not in PINNED.values()  # a composed objective is keyed by its spec


def test_a_direction_along_one_channels_unit_vector_draws_that_channel(lenet):
    layer, k = "conv2_relu", 3
    unit = np.eye(50, dtype=np.float32)[k]
    channel = visualize(lenet, Channel(layer, k), PREVIEW, cache=ResultCache(None), **SHORT)[0]
    along = visualize(lenet, Direction(layer, unit), PREVIEW, cache=ResultCache(None), **SHORT)[0]
    other = visualize(lenet, Direction(layer, np.eye(50, dtype=np.float32)[k - 2]), PREVIEW,
                      cache=ResultCache(None), **SHORT)[0]
    np.testing.assert_allclose(along.image.astype(int), channel.image.astype(int), atol=1)
    assert along.final_activation == pytest.approx(channel.final_activation, rel=1e-4)
    assert np.abs(other.image.astype(int) - channel.image.astype(int)).mean() > 10  # another direction, another picture
    probe = keras.Model(lenet.model.inputs[0], lenet.model.get_layer(layer).output)  # independent of ConvVis
    reached = np.asarray(probe(preprocess(along.image.astype(np.float32)[None, ..., None], "unit")))[0, ..., k].mean()
    assert reached == pytest.approx(along.final_activation, rel=0.02) and reached > along.start_activation


def test_an_objective_reads_every_layer_it_names_in_one_pass(lenet):
    objective = Channel("conv1", 3) + 0.5 * Channel("conv2_relu", 7)
    result = visualize(lenet, objective, PREVIEW, cache=ResultCache(None), **SHORT)[0]
    probe = keras.Model(lenet.model.inputs[0], [lenet.model.get_layer(name).output for name in ("conv1", "conv2_relu")])
    first, second = (np.asarray(maps)[0] for maps in probe(result.image.astype(np.float32)[None, ..., None] / 255))
    expected = first[..., 3].mean() + 0.5 * second[..., 7].mean()
    assert result.final_activation == pytest.approx(expected, rel=0.02) and expected > result.start_activation


def _tiny_classifier() -> LoadedModel:
    inputs = keras.Input((10, 10, 3))
    maps = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    head = keras.layers.Dense(3, activation="softmax", name="head")(keras.layers.GlobalAveragePooling2D()(maps))
    model = keras.Model(inputs, head)
    rng = np.random.default_rng(1)
    model.set_weights([w.astype(np.float32) for w in (rng.normal(size=(3, 3, 3, 4)) * 0.5, rng.normal(size=4) * 0.1,
                                                       rng.normal(size=(4, 3)), np.zeros(3))])
    return LoadedModel(model, ModelInfo("tiny", "tiny", "test", (10, 10), 3, "unit", class_names=("a", "b", "c")))


@pytest.mark.parametrize("objective", [ClassLogit(), DeepDream()])
def test_class_logit_and_whole_layer_terms_ascend_their_formula_as_the_named_objectives_did(objective, monkeypatch):
    """Plain pixels, normalized-gradient steps and no transforms, so the pictures follow from the formula: a
    hand-written ascent of the class's pre-softmax score, or of the layer's mean squared ReLU output, with
    TensorFlow's gradients on the model's own weights, gives the same pictures."""
    monkeypatch.setenv(PRECISION_ENV, "float32")  # the oracle computes in float32
    loaded = _tiny_classifier()
    kernel, bias, weights, offsets = (tf.constant(w) for w in loaded.model.get_weights())

    def formula(images: tf.Tensor, filters: list[int]) -> tf.Tensor:
        maps = tf.nn.relu(tf.nn.conv2d(images, kernel, 1, "SAME") + bias)
        if objective == DeepDream():
            return tf.reduce_mean(tf.square(maps), axis=[1, 2, 3])
        logits = tf.reduce_mean(maps, axis=[1, 2]) @ weights + offsets
        return tf.gather(logits, filters, axis=1, batch_dims=1)

    settings = PRESETS["keras.io example"].replace(objective=objective, learning_rate=0.3, steps=6, size=10)
    filters = [0, 2]
    results = visualize_filters(loaded, "conv", filters, settings, cache=ResultCache(None))
    images = tf.Variable(make_parameterization("pixel", 10, 3, False).initial(filters, 0))
    for _ in range(settings.steps):
        with tf.GradientTape() as tape:
            total = tf.reduce_sum(formula(images, filters))
        gradient = tape.gradient(total, images)
        images.assign_add(0.3 * gradient / tf.norm(tf.reshape(gradient, [2, -1]), axis=1)[:, None, None, None])
    shown = make_parameterization("pixel", 10, 3, False).to_display(images.numpy())
    for result, image, value in zip(results, shown, formula(images, filters).numpy()):
        np.testing.assert_allclose(result.image.astype(int), image.astype(int), atol=2)
        assert result.final_activation == pytest.approx(value, rel=1e-3) and value > result.start_activation


def test_bad_objectives_are_clear_errors(lenet):
    for text, message in [('{"kind": "nonsense"}', "Unknown objective term 'nonsense'"),
                          ("Channel(None)", "missing 1 required positional argument: 'index'"),
                          ('Channel("conv1", -2)', "index must be a whole number from 0"),
                          ("Filter() * Filter()", "unsupported operand"),
                          ("__import__('os').system('true')", "is not part of an objective"),
                          ("{broken", "JSON is not valid")]:
        with pytest.raises(SettingsError, match=message):
            parse(text)
    with pytest.raises(SettingsError, match="must be a term such as Filter"):
        Settings(objective="channel")
    short = PRESETS[SMALL_INPUTS].replace(steps=2)
    for objective, error, message in [
            (Channel("conv9", 1), LayerError, "no layer named 'conv9'"),
            (Filter() - Channel(None, 50), LayerError, r"Filter 50 is out of range: conv2_relu has 50 channels \(0–49\)"),
            (Channel("conv1", 20), LayerError, r"Filter 20 is out of range: conv1 has 20 channels"),
            (Direction("conv1", [1.0, 0.0]), LayerError, "The direction has 2 values, one per channel: conv1 has 20"),
            (ClassLogit(10), LayerError, "Filter 10 is out of range: <logits> has 10 classes")]:
        with pytest.raises(error, match=message):
            visualize_filters(lenet, "conv2_relu", [0], short.replace(objective=objective), cache=ResultCache(None))
    for objective in (Filter(), Channel(None, 3), Neuron("conv1")):  # no grid: every layer named, no filter of one
        with pytest.raises(ConvVisError, match="must name the layer of every term"):
            visualize(lenet, objective, cache=ResultCache(None))


def test_the_cli_takes_the_objective_as_written_in_python(lenet, tmp_path, capsys):
    out = tmp_path / "grid.png"
    code = cli_main(["filters", "lenet_mnist", "conv2_relu", "--filters", "1,3", "--steps", "8", "--out", str(out),
                     "--objective", 'Filter() - 0.5 * Channel("conv2_relu", 7)'])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert 'objective: Filter() - 0.5 * Channel("conv2_relu", 7)' in captured.err and out.stat().st_size > 0
    assert [line.split(":")[0] for line in captured.out.splitlines() if line.startswith("filter")] == \
        ["filter    1", "filter    3"]
    code = cli_main(["filters", "lenet_mnist", "--objective", "ClassLogit() + Neuron(", "--out", str(out)])
    assert code == 2 and "is not an objective" in capsys.readouterr().err
