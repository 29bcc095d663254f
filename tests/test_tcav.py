"""Testing a concept (TCAV) on a model with a planted concept (convvis_testing/planted.py: class 1 means "a red square
somewhere"), with its preprocessing inside the model, outside it, and nested in a wrapper. The scores are checked
against a computation by hand: at ``last_conv`` the class logit's gradient is the Dense layer's weights over the map
(global average pooling, then Dense), the CAV is scikit-learn's logistic regression on activations read with a Keras
sub-model. The statistics against scipy's t distribution; the probes, the image sets and bad inputs; the page."""

from __future__ import annotations

import io
import re
import zipfile
from contextlib import redirect_stdout
from dataclasses import replace

import keras
import numpy as np
import pytest
from PIL import Image
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

import convvis_core as cv
from convvis_core.cache import ResultCache
from convvis_core.cam.targets import ClassTarget
from convvis_core.cli import main as cli_main
from convvis_core.concepts.cav import HELD_OUT, STRENGTH, train_cav
from convvis_core.concepts.image_sets import checked_concept, dataset_set, image_set, random_sets
from convvis_core.concepts.probes import PATTERNS, ProbeConcept, texture_images
from convvis_core.concepts.tcav import PASSES, concept_objective, concept_picture, t_test, tcav
from convvis_core.datasets.base import ArrayDataset, DatasetError
from convvis_core.datasets.files import zip_dataset
from convvis_core.datasets.packaged import gallery_dataset, mnist_dataset
from convvis_core.errors import ConceptError, LayerError
from convvis_core.models import LoadedModel
from convvis_testing.planted import RED, red_square_concept, red_square_model, red_square_scenes

LAYER = "last_conv"
RUNS = 10
COUNT = 50
CACHE = ResultCache(None)  # in memory, shared by this module's tests: the random sets' activations are reused


def scenes_without_red_squares(count: int, seed: int) -> np.ndarray:
    """Scenes of the planted model's world with no red square (the distractors only): its random images."""
    scenes, labels = red_square_scenes(2 * count, seed)
    return scenes[labels == 0][:count]


@pytest.fixture(scope="module")
def sets() -> dict:
    scenes, labels = red_square_scenes(4 * COUNT, seed=7)  # held out: the model trained on seed 0
    return {
        "concept": image_set("red squares", "red squares in other contexts", red_square_concept(COUNT, seed=1)),
        "random": [image_set(f"scenes {run}", "scenes without a red square", scenes_without_red_squares(COUNT, 100 + run))
                   for run in range(RUNS)],
        1: image_set("class 1", "scenes with a red square", scenes[labels == 1][:COUNT]),
        0: image_set("class 0", "scenes without a red square", scenes[labels == 0][:COUNT]),
    }


def without_rescaling(inside: LoadedModel) -> LoadedModel:
    """The planted model with its Rescaling layer taken out and the pixels scaled by ConvVis instead ("unit")."""
    inputs = keras.Input(inside.model.inputs[0].shape[1:])
    x = inputs
    for layer in inside.model.layers[2:]:  # after the input and the Rescaling
        x = layer.__class__.from_config(layer.get_config())(x)
    outside = keras.Model(inputs, x, name="red_square_outside")
    for layer in outside.layers[1:]:
        layer.set_weights(inside.model.get_layer(layer.name).get_weights())
    return LoadedModel(outside, replace(inside.info, key="red_square_outside", preprocessing="unit"))


def nested(inside: LoadedModel) -> LoadedModel:
    """The planted model as one layer of a wrapper model."""
    inputs = keras.Input(inside.model.inputs[0].shape[1:])
    wrapper = keras.Model(inputs, inside.model(inputs), name="wrapper")
    return LoadedModel(wrapper, replace(inside.info, key="red_square_nested"))


VARIANTS = {"inside": (lambda m: m, LAYER), "outside": (without_rescaling, LAYER),
            "nested": (nested, f"red_square/{LAYER}")}


@pytest.fixture(scope="module")
def planted_scores(sets) -> dict:
    """Each variant's TCAV of red squares for class 1 and class 0 at last_conv, ten runs each."""
    found = {}
    for name, (make, layer) in VARIANTS.items():
        loaded = make(red_square_model())
        found[name] = {index: tcav(loaded, sets["concept"], sets[index], ClassTarget(index), [layer], sets["random"],
                                   cache=CACHE).layers[0] for index in (0, 1)}
    return found


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_red_squares_significantly_raise_the_red_square_class(planted_scores, variant):
    """The planted concept for its class: significantly above random over ten runs, at least 0.7, the CAVs right on
    at least 90 % of held-out images; random directions around one half, the verdict "raises"."""
    score = planted_scores[variant][1]
    assert score.mean >= 0.7 and score.p_value < 0.05 and score.significant and score.effect == "raises", score.summary()
    assert score.accuracy >= 0.9 and not score.at_chance, score.accuracies
    assert 0.2 <= score.random_mean <= 0.8 and score.random_accuracies.mean() < score.chance_level
    assert "Significant: the concept raises red square (class 1)" in score.verdict("red square (class 1)")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_red_squares_are_no_evidence_for_the_other_class(planted_scores, variant):
    score = planted_scores[variant][0]
    assert score.effect != "raises" and score.mean <= 0.3, score.summary()  # measured: 0.0, "lowers"


def test_preprocessing_inside_outside_or_nested_gives_the_same_test(planted_scores):
    inside = planted_scores["inside"][1]
    for variant in ("outside", "nested"):
        other = planted_scores[variant][1]
        np.testing.assert_array_equal(other.scores, inside.scores)
        np.testing.assert_allclose(other.accuracies, inside.accuracies)
        assert np.min(np.sum(other.cavs * inside.cavs, axis=1)) > 0.999  # the same concept vectors


def test_scores_and_cavs_are_those_computed_by_hand(planted_scores, sets):
    """Run by run: the CAV is scikit-learn's logistic regression on last_conv's activations read by a Keras sub-model
    (the same split), pointing to the concept; the class logit's gradient there is the Dense weights / 64 at every
    position, so a run's score is 1 if the CAV summed over positions meets the class's weights positively, else 0.
    A gradient of the wrong sign, at another layer, or a CAV pointing away fails here."""
    model = red_square_model().model
    reader = keras.Model(model.inputs, model.get_layer(LAYER).output)
    weights = model.get_layer("predictions").get_weights()[0]  # (32 channels, 2 classes)
    concept = reader(np.stack(sets["concept"].images).astype("float32")).numpy().reshape(COUNT, -1)
    labels = np.r_[np.ones(COUNT), np.zeros(COUNT)]
    for run in range(RUNS):
        random = reader(np.stack(sets["random"][run].images).astype("float32")).numpy().reshape(COUNT, -1)
        features = np.concatenate([concept, random])
        train, test = train_test_split(np.arange(2 * COUNT), test_size=HELD_OUT, stratify=labels, random_state=run)
        scaled = features / np.sqrt(np.mean(np.sum(features[train] ** 2, axis=1)))
        classifier = LogisticRegression(C=STRENGTH, max_iter=10_000, tol=1e-7).fit(scaled[train], labels[train])
        normal = classifier.coef_[0] / np.linalg.norm(classifier.coef_[0])
        for index in (0, 1):  # the CAVs are the class's own run's; only the gradient differs
            score = planted_scores["inside"][index]
            assert float(normal @ score.cavs[run]) > 0.999
            assert score.accuracies[run] == pytest.approx(classifier.score(scaled[test], labels[test]))
            along = normal.reshape(8, 8, 32).sum(axis=(0, 1)) @ weights[:, index] / 64
            assert score.scores[run] == float(along > 0)


def test_the_concept_direction_is_visualized_as_a_direction_objective(planted_scores, tmp_path, monkeypatch):
    """The objective is the mean CAV summed over the map's positions, per channel (unit length), at the layer; the
    picture that maximizes it raises it far above where it starts, and is red above all: the concept is red squares."""
    monkeypatch.setenv("CONVVIS_CACHE_DIR", str(tmp_path))
    score = planted_scores["inside"][1]
    objective = concept_objective(score)
    by_hand = score.cavs.mean(axis=0).reshape(-1, 32).sum(axis=0)
    assert objective.layer == LAYER and np.allclose(objective.vector, by_hand / np.linalg.norm(by_hand), atol=1e-6)
    picture = concept_picture(red_square_model(), score)
    assert picture.final_activation > 10 * max(picture.start_activation, 1e-3)
    red, green, _ = picture.image.reshape(-1, 3).mean(axis=0)
    assert red > green + 30  # measured: 156 against 100


def test_a_concept_drawn_from_the_random_images_is_at_chance_and_not_significant(sets):
    """Two sets from the same images: the CAVs cannot tell them apart on held-out images, so whatever the scores,
    the test reports nothing; its random directions score about one half."""
    same = image_set("more scenes", "scenes without a red square", scenes_without_red_squares(COUNT, 999))
    score = tcav(red_square_model(), same, sets[1], ClassTarget(1), [LAYER], sets["random"], cache=CACHE).layers[0]
    assert score.at_chance and not score.significant and score.effect is None, score.summary()
    assert score.accuracy < 0.67  # measured: 0.55 (chance: 0.52)
    assert 0.2 <= score.random_mean <= 0.8
    assert score.verdict("red square (class 1)").startswith("Not meaningful")


def test_each_image_passes_once_for_all_layers_and_random_sets_are_reused(sets):
    """Two layers in one test: every image through the model once (the target's forward and backward); a second
    concept against the same random sets passes only its own images; another class, only its own."""
    loaded, cache = red_square_model(), ResultCache(None)
    before = {kind: PASSES[kind] for kind in ("forward", "forward+backward")}
    tcav(loaded, sets["concept"], sets[1], ClassTarget(1), ["conv2", LAYER], sets["random"][:4], cache=cache)
    assert PASSES["forward"] - before["forward"] == COUNT + 4 * COUNT
    assert PASSES["forward+backward"] - before["forward+backward"] == COUNT
    other = image_set("red squares, other seed", "planted", red_square_concept(20, seed=2))
    result = tcav(loaded, other, sets[1], ClassTarget(1), ["conv2", LAYER], sets["random"][:4], cache=cache)
    assert PASSES["forward"] - before["forward"] == COUNT + 4 * COUNT + 20
    assert PASSES["forward+backward"] - before["forward+backward"] == COUNT
    assert [score.layer for score in result.layers] == ["conv2", LAYER]
    again = tcav(loaded, other, sets[1], ClassTarget(1), ["conv2", LAYER], sets["random"][:4], cache=cache)
    assert again.from_cache and np.array_equal(again.layers[0].scores, result.layers[0].scores)
    tcav(loaded, other, sets[0], ClassTarget(0), ["conv2", LAYER], sets["random"][:4], cache=cache)
    assert PASSES["forward"] - before["forward"] == COUNT + 4 * COUNT + 20  # the CAVs do not depend on the class
    assert PASSES["forward+backward"] - before["forward+backward"] == 2 * COUNT


def test_scores_are_shares_of_the_target_images(planted_scores):
    for score in (found for variant in planted_scores.values() for found in variant.values()):
        for values in (score.scores, score.random_scores):
            assert np.all((values >= 0) & (values <= 1))
            np.testing.assert_allclose(values * COUNT, np.round(values * COUNT))  # whole images of the 50


def test_the_t_test_is_students_by_hand():
    concept, random = np.array([0.9, 0.8, 1.0, 0.85, 0.95]), np.array([0.5, 0.4, 0.7, 0.55])
    pooled = (np.sum((concept - concept.mean()) ** 2) + np.sum((random - random.mean()) ** 2)) / (5 + 4 - 2)
    t = (concept.mean() - random.mean()) / np.sqrt(pooled * (1 / 5 + 1 / 4))
    assert t_test(concept, random) == pytest.approx(2 * stats.t.sf(abs(t), df=7), rel=1e-12)
    assert t_test(np.ones(5), np.ones(5)) == 1.0  # nothing tells them apart


def test_the_cav_is_scikit_learns_classifier_on_the_raw_activations():
    """Fitted in the span of the training images: the same normal as on 6,000 raw dimensions, the same accuracy."""
    rng = np.random.default_rng(0)
    concept, random = np.maximum(rng.normal(0.2, 1, (40, 6000)), 0), np.maximum(rng.normal(0, 1, (40, 6000)), 0)
    cav = train_cav(concept, random, seed=3)
    features, labels = np.concatenate([concept, random]), np.r_[np.ones(40), np.zeros(40)]
    train, test = train_test_split(np.arange(80), test_size=HELD_OUT, stratify=labels, random_state=3)
    scaled = features / np.sqrt(np.mean(np.sum(features[train] ** 2, axis=1)))
    classifier = LogisticRegression(C=STRENGTH, max_iter=10_000, tol=1e-10).fit(scaled[train], labels[train])
    assert float(classifier.coef_[0] @ cav.vector) / np.linalg.norm(classifier.coef_[0]) > 0.9999
    assert cav.accuracy == pytest.approx(classifier.score(scaled[test], labels[test]))
    assert cav.held_out == len(test) and cav.chance == pytest.approx(14 / 27)


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_each_probe_pattern_gives_distinct_seeded_images(pattern):
    probe = ProbeConcept(pattern, RED)
    images = probe.images(12, (24, 40), seed=5)
    assert images.shape == (12, 24, 40, 3) and images.dtype == np.uint8
    assert len({image.tobytes() for image in images}) == 12
    np.testing.assert_array_equal(images, probe.images(12, (24, 40), seed=5))
    assert not np.array_equal(images, probe.images(12, (24, 40), seed=6))
    closest = np.abs(images.reshape(12, -1, 3).astype(int) - RED).sum(axis=-1).min(axis=1)
    assert np.all(closest <= 3 * 20)  # every image holds the colour (jittered by at most 20 a channel)


def test_stripes_run_along_their_angle():
    """0°: horizontal stripes (rows change, columns do not); 90°: vertical."""
    for angle, changing, constant in ((0, 1, 2), (90, 2, 1)):  # axis 1: down the rows; 2: along a row
        images = ProbeConcept("stripes", RED, angle).images(10, (48, 48)).astype(float)
        assert np.abs(np.diff(images, axis=changing)).mean() > 4 * np.abs(np.diff(images, axis=constant)).mean()


def test_random_sets_say_where_they_come_from():
    photos = random_sets("photos", 3, 12, (32, 32), seed=1)
    textures = random_sets("textures", 3, 12, (32, 32))
    assert [len(found) for found in photos + textures] == [12] * 6
    assert len({found.identity for found in photos + textures}) == 6
    assert "bundled sample photos" in photos[0].origin and "noise and textures" in textures[0].origin
    assert photos[0].identity == random_sets("photos", 3, 12, (32, 32), seed=1)[0].identity
    own = random_sets(gallery_dataset(), 3, 4, (32, 32))  # 12 photos: three disjoint sets of 4
    assert "disjoint" in own[0].origin and sum(map(len, own)) == 12
    assert texture_images(5, (16, 16)).shape == (5, 16, 16, 3)


def test_every_target_kind_the_heatmaps_explain_can_be_tested():
    """A values output's unit (its gradient at conv2 is its Dense kernel: each run's score by hand from the CAVs), a
    segmentation's class over the image, and a filter; a filter before the layer is reported as such, never
    scored as a finding. The models are untrained: what is checked is what each score is."""
    from test_model_kinds import two_head_model, unet_model

    keras.utils.set_random_seed(0)
    two_heads = LoadedModel.from_keras(two_head_model()).with_output(1)
    unet = LoadedModel.from_keras(unet_model())
    features = LoadedModel.from_keras(keras.Model(unet.model.inputs, unet.model.get_layer("up1").output))
    size = two_heads.info.input_size
    concept = image_set("stripes", "drawn", ProbeConcept("stripes").images(12, size))
    random, images = random_sets("textures", 3, 12, size), random_sets("photos", 1, 12, size)[0]
    unit = tcav(two_heads, concept, images, cv.OutputUnitTarget(0), ["conv2"], random, cache=CACHE).layers[0]
    kernel = two_heads.model.get_layer("column").get_weights()[0][:, 0]
    np.testing.assert_array_equal(unit.scores, (unit.cavs @ kernel > 0).astype(float))
    region = tcav(unet, concept, images, cv.RegionTarget(1), ["bottom2"], random, cache=CACHE).layers[0]
    assert np.all((region.scores >= 0) & (region.scores <= 1)) and not region.flat_gradients
    later = tcav(features, concept, images, cv.FilterTarget("up1", 3), ["bottom", "bottom2"], random, cache=CACHE)
    assert [score.flat_gradients for score in later.layers] == [False, False]  # up1 reads both
    earlier = tcav(features, concept, images, cv.FilterTarget("bottom", 3), ["up1"], random, cache=CACHE).layers[0]
    assert earlier.flat_gradients and earlier.finding == "target before layer" and not earlier.significant
    assert earlier.verdict("filter 3 of bottom").startswith("filter 3 of bottom does not depend on up1")


def zipped(images: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in images.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_bad_inputs_are_refused_with_what_to_do(sets):
    loaded, random = red_square_model(), sets["random"]
    few = image_set("five squares", "planted", red_square_concept(5, seed=3))
    with pytest.raises(ConceptError, match=r"'five squares' has 5 images; a concept needs at least 10"):
        tcav(loaded, few, sets[1], ClassTarget(1), [LAYER], random, cache=CACHE)
    with pytest.raises(DatasetError, match="holds no image ConvVis can read"):
        zip_dataset(zipped({"notes.txt": b"not an image"}), "concept.zip")
    five = zip_dataset(zipped({f"{i}.png": png(np.full((8, 8, 3), 40 * i, np.uint8)) for i in range(5)}), "five.zip")
    with pytest.raises(ConceptError, match="'five.zip' has 5 images; a concept needs at least 10"):
        checked_concept(dataset_set(five))
    with pytest.raises(ConceptError, match="MNIST .* class 12 holds no images"):
        dataset_set(mnist_dataset(), label=12)
    with pytest.raises(ConceptError, match="has no labels, so it has no images of class 1"):
        dataset_set(gallery_dataset(), label=1)
    with pytest.raises(LayerError):
        tcav(loaded, sets["concept"], sets[1], ClassTarget(1), ["predictions"], random, cache=CACHE)
    with pytest.raises(ConceptError, match="3 to 50 random sets"):
        tcav(loaded, sets["concept"], sets[1], ClassTarget(1), [LAYER], random[:2], cache=CACHE)
    with pytest.raises(cv.TargetError, match="Class 5 is out of range"):
        tcav(loaded, sets["concept"], sets[1], ClassTarget(5), [LAYER], random, cache=CACHE)
    with pytest.raises(cv.ConvVisError, match="No probe pattern 'plaid'"):
        ProbeConcept("plaid")


def test_the_api_and_the_command_line_test_a_concept(sets, tmp_path):
    """One call in a notebook (a class index, arrays, a dataset of the user's own random images), saved as CSV and
    PNG; `convvis concepts tcav` prints the table and writes both."""
    own = ArrayDataset("scenes", "scenes-v1", np.concatenate([scenes_without_red_squares(COUNT, 200 + run)
                                                              for run in range(3)]))
    found = cv.tcav(red_square_model(), red_square_concept(30, seed=1), np.stack(sets[1].images), target=1,
                    layers=LAYER, random=own, runs=3, count=30)
    assert found.result.layers[0].mean >= 0.7 and "disjoint" in found.result.random_origin
    assert found.save(tmp_path / "scores.csv").read_text().splitlines()[0].startswith("concept,target,layer,TCAV score")
    assert Image.open(found.save(tmp_path / "sheet.png")).size[0] > 300
    printed = io.StringIO()
    with redirect_stdout(printed):
        code = cli_main(["concepts", "tcav", "lenet_mnist", "--concept", "stripes", "--angle", "90", "--images", "mnist",
                         "--label", "1", "--images-count", "20", "--class", "1", "--layers", "conv1_relu", "--runs", "3",
                         "--count", "20", "--csv", str(tmp_path / "cli.csv"), "--png", str(tmp_path / "cli.png")])
    assert code == 0
    assert re.search(r"^conv1_relu +(raises|lowers|not significant|not represented) +\d\.\d\d ± ", printed.getvalue(), re.M)
    assert (tmp_path / "cli.csv").read_text().count("\n") == 2 and (tmp_path / "cli.png").stat().st_size > 0
    assert cli_main(["concepts", "tcav", "lenet_mnist", "--concept", "stripes", "--images", "mnist", "--class", "1",
                     "--unit", "2"]) == 2  # one target only
