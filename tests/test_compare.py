"""Comparing two models: CKA against its formula and its invariances, LeNets fine-tuned in the test
whose changes are known in advance, clear messages for models that cannot be compared, the CLI (the
page: test_compare_page.py)."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from convvis_core.cache import ResultCache
from convvis_core.compare.changes import layer_changes, weight_change
from convvis_core.compare.cka import linear_cka, streamed_cka
from convvis_core.compare.similarity import GRAM_BLOCK, CompareError, compare_models, match_layers
from convvis_core.datasets.base import ArrayDataset
from convvis_core.datasets.packaged import mnist_dataset
from convvis_core.models.base import LoadedModel
from convvis_testing.models import copy_model, fine_tune, one_conv_model

CONVS = ("conv1", "conv2")


# ---- CKA on numbers ------------------------------------------------------------------------------

def _features(seed: int = 0, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 8))
    x = z @ rng.normal(size=(8, 30)) + 0.3 * rng.normal(size=(n, 30))
    y = np.tanh(z @ rng.normal(size=(8, 20))) + 0.3 * rng.normal(size=(n, 20))
    return x, y


def test_cka_of_itself_is_one() -> None:
    x, _ = _features()
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert streamed_cka(x, x, 64) == pytest.approx(1.0, abs=1e-12)


def test_cka_invariant_to_orthogonal_and_isotropic_scale_not_to_any_linear_map() -> None:
    x, y = _features()
    rng = np.random.default_rng(1)
    orthogonal, _ = np.linalg.qr(rng.normal(size=(30, 30)))
    reference = linear_cka(x, y)
    assert linear_cka(x @ orthogonal, y) == pytest.approx(reference, abs=1e-10)
    assert linear_cka(7.5 * x, y) == pytest.approx(reference, abs=1e-10)
    assert streamed_cka(3.0 * x @ orthogonal, y, 100) == pytest.approx(streamed_cka(x, y, 100), abs=1e-10)
    skew = rng.normal(size=(30, 30)) @ np.diag(np.geomspace(0.01, 10, 30))  # random, far from orthogonal
    assert abs(linear_cka(x @ skew, y) - reference) > 0.02


def test_streamed_estimator_agrees_with_full_batch() -> None:
    """One minibatch holding every image is the full-batch unbiased estimate exactly; in minibatches of
    200 it agrees with the full-batch formula within 1e-3 on a small set of strongly related features."""
    rng = np.random.default_rng(2)
    n = 2000
    x = rng.normal(size=(n, 6)) @ rng.normal(size=(6, 40))
    y = x @ rng.normal(size=(40, 25)) + 0.05 * rng.normal(size=(n, 25))
    full = linear_cka(x, y)
    assert streamed_cka(x, y, 200) == pytest.approx(full, abs=1e-3)
    assert streamed_cka(x, y, n) == pytest.approx(streamed_cka(x, y, n + 1), abs=1e-12)


# ---- LeNets fine-tuned here ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits() -> ArrayDataset:
    return mnist_dataset()


@pytest.fixture(scope="module")
def head_tuned(lenet, digits) -> LoadedModel:
    tuned = copy_model(lenet, "head")
    fine_tune(tuned, digits.images[:1000], (digits.labels[:1000] + 1) % 10, CONVS, epochs=1)  # a new head task
    return tuned


# ``inverted_tuned`` (LeNet fine-tuned on inverted digits) is a session fixture in conftest.py, shared
# with test_compare_page.py.


def test_model_with_itself(lenet, digits, tmp_path) -> None:
    result = compare_models(lenet, lenet, digits, 256, cache=ResultCache(tmp_path))
    assert result.matched == ["conv1", "conv1_relu", "pool1", "conv2", "conv2_relu", "pool2"]
    for path in result.matched:
        assert result.layer_cka(path) == pytest.approx(1.0, abs=1e-6)
        assert np.allclose(result.activation_change(path), 0.0, atol=1e-6)


def test_head_only_fine_tuning_leaves_convs_unchanged(lenet, head_tuned, digits, tmp_path) -> None:
    assert not np.allclose(lenet.model.get_layer("fc1").get_weights()[0],
                           head_tuned.model.get_layer("fc1").get_weights()[0])  # it did train
    result = compare_models(lenet, head_tuned, digits, 256, cache=ResultCache(tmp_path))
    for path in result.matched:
        assert result.layer_cka(path) == pytest.approx(1.0, abs=1e-6)
    for path in CONVS:
        assert np.array_equal(weight_change(lenet, head_tuned, path), np.zeros(6 if path == "conv1" else 16)) or \
            np.max(weight_change(lenet, head_tuned, path)) == 0.0
        assert all(change.weight_change == 0.0 for change in layer_changes(lenet, head_tuned, result, path))


def test_end_to_end_on_inverted_digits_changes_every_conv(lenet, inverted_tuned, digits, tmp_path) -> None:
    """Trained end to end on inverted digits, every conv layer changes (weights and CKA). Measured here:
    the change is NOT concentrated in conv1 (relative weight change conv1 ≈ 0.07, conv2 ≈ 0.16; CKA
    conv1 ≈ 0.998, conv2_relu ≈ 0.97), so the test asserts only what is known in advance."""
    result = compare_models(lenet, inverted_tuned, digits, 512, cache=ResultCache(tmp_path))
    for path in CONVS:
        assert np.mean(weight_change(lenet, inverted_tuned, path)) > 0.01
        assert result.layer_cka(path) < 0.9995
    ranked = layer_changes(lenet, inverted_tuned, result, "conv2")
    assert ranked[0].activation_change >= ranked[-1].activation_change > -1e-9


def test_change_localized_where_training_was(lenet, digits, tmp_path) -> None:
    """Only conv1 trained (on inverted digits): the tool finds every weight change in conv1, none in conv2,
    and conv1's CKA drops while nothing before it exists to change."""
    tuned = copy_model(lenet, "conv1-only")
    fine_tune(tuned, 255 - digits.images[:1000], digits.labels[:1000], ("conv2", "fc1", "logits"), epochs=1)
    result = compare_models(lenet, tuned, digits, 256, cache=ResultCache(tmp_path))
    assert np.min(weight_change(lenet, tuned, "conv1")) > 0
    assert np.max(weight_change(lenet, tuned, "conv2")) == 0.0
    assert result.layer_cka("conv1") < 1.0 - 1e-6


def _unbiased_cka(x: np.ndarray, y: np.ndarray) -> float:
    """CKA from the unbiased HSIC of the whole set at once (Song et al., 2012), written out here."""
    def hsic(k: np.ndarray, l: np.ndarray) -> float:
        n = len(k)
        k, l = k - np.diag(np.diag(k)), l - np.diag(np.diag(l))
        ones = np.ones(n)
        return (np.trace(k @ l) + (ones @ k @ ones) * (ones @ l @ ones) / ((n - 1) * (n - 2))
                - 2 / (n - 2) * (ones @ k @ l @ ones)) / (n * (n - 3))

    k, l = x @ x.T, y @ y.T
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


def test_streamed_estimator_on_real_activations_agrees_with_the_whole_set_unbiased(lenet, inverted_tuned, digits):
    """On LeNet's and its inverted-digit fine-tune's own activations (512 digits), minibatches of 16 to
    128 give the whole set's unbiased CKA within 1e-3, and the biased full-batch formula within
    2e-3 (its bias is of order 1/n)."""
    import keras

    images = digits.images[1000:1512].astype(np.float32)
    for path in ("conv1", "conv2_relu"):
        a, b = (np.asarray(keras.Model(m.model.inputs, m.model.get_layer(path).output).predict(images, verbose=0),
                           np.float64).reshape(len(images), -1) for m in (lenet, inverted_tuned))
        whole = _unbiased_cka(a, b)
        assert whole < 0.9995  # the fine-tune changed this layer: a number to agree on, not a trivial 1
        for batch in (GRAM_BLOCK, 32, 64, 128):  # GRAM_BLOCK: the pass's own minibatches
            assert streamed_cka(a, b, batch) == pytest.approx(whole, abs=1e-3), (path, batch)
        assert linear_cka(a, b) == pytest.approx(whole, abs=2e-3), path


def test_activation_change_is_one_minus_the_correlation_over_images_and_positions(lenet, inverted_tuned, digits,
                                                                                   tmp_path) -> None:
    """Every filter's activation change against Pearson's correlation written out here in float64 over all
    200 digits × positions at once (the pass merges per-image moments of batches of 64, the last one of 8)."""
    import keras

    result = compare_models(lenet, inverted_tuned, digits, 200, cache=ResultCache(tmp_path))
    images = digits.images[:200].astype(np.float32) / 255  # LeNet's preprocessing ("unit")
    assert lenet.info.preprocessing == "unit"
    for path in ("conv1", "conv2_relu"):
        x, y = (np.asarray(keras.Model(m.model.inputs, m.model.get_layer(path).output).predict(images, verbose=0),
                           np.float64) for m in (lenet, inverted_tuned))
        x, y = (values.reshape(-1, values.shape[-1]) - values.reshape(-1, values.shape[-1]).mean(0) for values in (x, y))
        correlation = (x * y).sum(0) / np.sqrt((x * x).sum(0) * (y * y).sum(0))
        assert 0.01 < np.max(1 - correlation)  # the fine-tune changed some filter: not a trivial 0
        np.testing.assert_allclose(result.activation_change(path), 1 - correlation, atol=1e-5, err_msg=path)


def test_cached_result_is_the_same(lenet, inverted_tuned, digits, tmp_path) -> None:
    cache = ResultCache(tmp_path)
    first = compare_models(lenet, inverted_tuned, digits, 128, cache=cache)
    again = compare_models(lenet, inverted_tuned, digits, 128, cache=cache)
    assert again.from_cache and np.allclose(first.cka, again.cka)


def test_matrix_of_all_layer_pairs(lenet, digits, tmp_path) -> None:
    result = compare_models(lenet, lenet, digits, 128, matrix=True, cache=ResultCache(tmp_path))
    assert result.cka.shape == (6, 6)
    assert np.allclose(np.diag(result.cka), 1.0, atol=1e-6)
    assert np.allclose(result.cka, result.cka.T, atol=1e-6)


# ---- a model against the model it was built from --------------------------------------------------

def test_layers_match_by_whole_path_components_at_the_end() -> None:
    flat = ["conv1", "conv1_relu", "conv2"]
    nested = ["base/conv1", "base/conv1_relu", "base/conv2", "head"]
    assert match_layers(flat, nested).pairs == tuple(zip(flat, nested[:3]))
    assert match_layers(nested, flat).pairs == tuple(zip(nested[:3], flat))
    assert match_layers(nested, nested).pairs == tuple(zip(nested, nested))  # both nested: the same paths
    assert not match_layers(["conv1"], ["myconv1", "base/myconv1"]).pairs  # a name's end is not a path's
    exact = match_layers(["conv1", "base/conv1"], ["base/conv1", "other/base/conv1"])
    assert exact.pairs == (("conv1", "other/base/conv1"), ("base/conv1", "base/conv1")) and not exact.ambiguous
    two_bases = match_layers(["conv1"], ["left/conv1", "right/conv1"])
    assert two_bases.pairs == (("conv1", "left/conv1"),)
    assert two_bases.ambiguous == {"conv1": ("left/conv1", "right/conv1")}
    assert "matched with 'left/conv1'" in two_bases.lines()[-1]
    assert not match_layers(flat, flat).lines()  # nothing to say where every path is the same


def _nested(lenet: LoadedModel, name: str) -> LoadedModel:
    """LeNet's convolutional part (the same layers and weights) nested as a base under a new head."""
    base = keras.Model(lenet.model.inputs, lenet.model.get_layer("pool2").output, name="lenet_base")
    inputs = keras.Input(lenet.model.inputs[0].shape[1:])
    outputs = keras.layers.Dense(3, activation="softmax", name="new_head")(keras.layers.Flatten()(base(inputs)))
    return LoadedModel(keras.Model(inputs, outputs, name=name), dataclasses.replace(lenet.info, key=name,
                                                                                       class_names=None))


def test_a_flat_model_against_a_head_on_its_own_base(lenet, digits, tmp_path, capsys) -> None:
    """The commonest comparison: a base before and after it went under a new head. The base's layers match
    their nested twins, with CKA 1 and no weight change; two heads on the one base match by the same paths."""
    nested = _nested(lenet, "nested_lenet")
    result = compare_models(lenet, nested, digits, 64, cache=ResultCache(tmp_path))
    base = ["conv1", "conv1_relu", "pool1", "conv2", "conv2_relu", "pool2"]
    assert result.matching.pairs == tuple((path, f"lenet_base/{path}") for path in base)
    for path in base:
        assert result.layer_cka(path) == pytest.approx(1.0, abs=1e-6)
        assert np.allclose(result.activation_change(path), 0.0, atol=1e-6)
    for path in CONVS:
        assert np.max(weight_change(lenet, nested, path, f"lenet_base/{path}")) == 0.0
        assert {row.weight_change for row in layer_changes(lenet, nested, result, path)} == {0.0}
    assert result.matching.lines() == ["6 of 6 layers matched by the end of their path: A's '<layer>' with B's "
                                       "'lenet_base/<layer>'"]
    reversed_ = compare_models(nested, lenet, digits, 64, cache=ResultCache(tmp_path))
    assert reversed_.matched == [f"lenet_base/{path}" for path in base]

    other_head = _nested(lenet, "other_head")
    both = compare_models(nested, other_head, digits, 64, cache=ResultCache(tmp_path))
    assert both.matching.pairs == tuple((f"lenet_base/{path}",) * 2 for path in base) and not both.matching.lines()
    assert all(both.layer_cka(path) == pytest.approx(1.0, abs=1e-6) for path in both.matched)

    from convvis_core.cli import main

    path = tmp_path / "nested.keras"
    nested.model.save(path)
    assert main(["compare", "lenet_mnist", str(path), "--dataset", "mnist", "--images", "64"]) == 0
    out = capsys.readouterr().out
    assert "6 of 6 layers matched by the end of their path: A's '<layer>' with B's 'lenet_base/<layer>'" in out
    table = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith(("conv1 ", "conv2 "))}
    assert {path: float(row[0]) for path, row in table.items()} == {"conv1": 1.0, "conv2": 1.0}
    assert {float(row[1]) for row in table.values()} == {0.0}  # the mean weight change


# ---- models that cannot be compared --------------------------------------------------------------

def test_different_input_sizes_get_a_message(lenet, digits) -> None:
    other = LoadedModel(one_conv_model(32, "conv1"), dataclasses.replace(lenet.info, input_size=(32, 32), key="tiny32"))
    with pytest.raises(CompareError, match="different images"):
        compare_models(lenet, other, digits, 64)


def test_no_matching_layers_get_a_message_unless_the_matrix_is_asked(lenet, digits, tmp_path) -> None:
    other = LoadedModel(one_conv_model(28, "elsewhere"), dataclasses.replace(lenet.info, key="tiny28"))
    with pytest.raises(CompareError, match="no layer at the same path"):
        compare_models(lenet, other, digits, 64)
    result = compare_models(lenet, other, digits, 64, matrix=True, cache=ResultCache(tmp_path))
    assert result.cka.shape == (6, 1) and np.all(np.isfinite(result.cka))


# ---- command line --------------------------------------------------------------------------------

def test_cli_prints_the_table_and_the_changed_filters(inverted_tuned, tmp_path, capsys) -> None:
    from convvis_core.cli import main

    path = tmp_path / "inverted.keras"
    inverted_tuned.model.save(path)
    assert main(["compare", "lenet_mnist", str(path), "--dataset", "mnist", "--images", "128", "--matrix",
                 "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "linear CKA over 128 images" in out and "CKA matrix" in out
    table = {line.split()[0]: line.split()[1:] for line in out.split("CKA matrix")[0].splitlines() if line.startswith(("conv1 ", "conv2 "))}
    assert set(table) == {"conv1", "conv2"} and all(0 < float(row[0]) < 1 for row in table.values())
    assert out.count("most changed filters of") == 6


def test_cli_different_input_sizes_is_a_message(tmp_path, capsys) -> None:
    from convvis_core.cli import main

    path = tmp_path / "tiny32.keras"
    one_conv_model(32, "conv1").save(path)
    assert main(["compare", "lenet_mnist", str(path), "--dataset", "mnist", "--images", "64"]) == 2
    err = capsys.readouterr().err
    assert "different images" in err and "Traceback" not in err
