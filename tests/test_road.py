"""ROAD: the imputation checked against the equations it solves (computed here pixel by pixel), and the
score checked on a model trained here whose evidence is known (a bright square)."""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest
from test_cam import square_detector as trained_square_detector
from test_cam import squares as square_pictures
from PIL import Image

from convvis_core.cam import ClassTarget, FilterTarget, Heatmap, heatmap
from convvis_core.cam.faithfulness import Faithfulness
from convvis_core.cam.road import Road, impute, road
from convvis_core.cam.scoring import ScoredHeatmap, verdict
from convvis_core.cam.targets import strongest_filter
from convvis_core.errors import ConvVisError
from convvis_core.models import LoadedModel

SIDE, SQUARE = 32, 8
WEIGHTS = {(dr, dc): (1 / 12 if dr and dc else 1 / 6) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc}


def neighbour_mean(image: np.ndarray, row: int, column: int) -> np.ndarray:
    """The weighted mean of a pixel's neighbours inside the image, written out one neighbour at a time."""
    total, weights = np.zeros(image.shape[-1]), 0.0
    for (dr, dc), weight in WEIGHTS.items():
        r, c = row + dr, column + dc
        if 0 <= r < image.shape[0] and 0 <= c < image.shape[1]:
            total += weight * image[r, c]
            weights += weight
    return total / weights


def test_each_imputed_pixel_is_the_weighted_mean_of_its_neighbours_and_kept_pixels_stay():
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0, 255, (9, 11, 2))
    removed = rng.random((9, 11)) < 0.4
    removed[0, 0] = removed[8, 5] = removed[4, 10] = True  # a corner and two edges: fewer neighbours
    removed[3:6, 3:7] = True  # a hole whose inside touches only other removed pixels
    filled = impute(pixels, removed, noise=0)
    assert filled.shape == pixels.shape
    np.testing.assert_array_equal(filled[~removed], pixels[~removed])
    for row, column in zip(*np.nonzero(removed)):
        np.testing.assert_allclose(filled[row, column], neighbour_mean(filled, row, column), atol=1e-9)

    noisy, again = impute(pixels, removed, noise=2.55, seed=3), impute(pixels, removed, noise=2.55, seed=3)
    np.testing.assert_array_equal(noisy, again)  # seeded
    np.testing.assert_array_equal(noisy[~removed], pixels[~removed])  # noise only where pixels were removed
    assert 1.5 < np.std(noisy[removed] - filled[removed]) < 3.5
    np.testing.assert_array_equal(impute(pixels, np.zeros((9, 11), bool)), pixels)


def test_imputing_a_linear_ramp_with_a_hole_gives_back_the_ramp():
    rows, columns = np.mgrid[:20, :24]
    ramp = np.stack([3.0 * rows + 5.0 * columns + 10.0, 200.0 - 4.0 * rows], axis=-1)
    removed = np.zeros((20, 24), bool)
    removed[4:13, 6:17] = True  # a block well inside the image (a ramp is its neighbours' mean only there)
    removed[15, 2] = removed[17, 20] = True
    np.testing.assert_allclose(impute(ramp, removed, noise=0), ramp, atol=1e-9)


def test_imputation_at_model_size_is_fast():
    rows, columns = np.mgrid[:224, :224]
    pixels = np.random.default_rng(0).uniform(0, 255, (224, 224, 3))
    blob = ((rows - 100) ** 2 + (columns - 120) ** 2) < 90 ** 2  # half the image, in one piece
    start = time.perf_counter()
    impute(pixels, blob)
    assert time.perf_counter() - start < 5.0  # about 0.2 s here; a dense solve would not finish


def squares(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return square_pictures(count, seed, SQUARE)


@pytest.fixture(scope="module")
def square_detector() -> LoadedModel:
    loaded = trained_square_detector(SQUARE)
    model = loaded.model
    held_out, held_labels, _ = squares(200, seed=1)
    assert (model.predict(held_out[..., None] / 255.0, verbose=0).argmax(-1) == held_labels).mean() > 0.95
    return loaded


def with_square(seed: int) -> tuple[Image.Image, np.ndarray]:
    images, labels, corners = squares(40, seed)
    index = int(np.argmax(labels))
    (top, left), mask = corners[index], np.zeros((SIDE, SIDE), np.float32)
    mask[top:top + SQUARE, left:left + SQUARE] = 1
    return Image.fromarray(images[index]), mask


def test_road_ranks_the_true_evidence_above_its_inverse_and_random_maps(square_detector):
    for seed in (2, 3):
        image, truth = with_square(seed)
        as_map = lambda values: Heatmap("truth", values, ClassTarget(1), None)  # noqa: E731
        true = road(square_detector, image, as_map(truth))
        inverse = road(square_detector, image, as_map(1 - truth))
        randoms = [road(square_detector, image, as_map(np.random.default_rng(k).random(truth.shape).astype(np.float32)))
                   for k in range(2)]
        np.testing.assert_allclose(true.fractions, np.arange(1, 10) / 10)
        assert true.score_name == "probability" and true.intact > 0.9
        assert true.morf.shape == true.lerf.shape == (9,)
        assert true.morf[0] < 0.1 and true.lerf.min() > 0.9  # the square gone: absent; the square kept: present
        assert true.combined > 0.15  # 0.27 and 0.44 here; MoRF climbs back once most of the noise is smoothed away
        assert true.combined > inverse.combined + 0.4
        assert true.combined > max(r.combined for r in randoms) + 0.2


def test_road_reads_any_target_and_names_its_score(square_detector):
    image, _ = with_square(2)
    filter_index = strongest_filter(square_detector, image, "conv2")
    target = FilterTarget("conv2", filter_index)
    result = heatmap(square_detector, image, "gradcam", target, "conv1")
    scores = road(square_detector, image, result, percentiles=(12.5, 50, 75))
    assert scores.score_name == "mean activation"
    np.testing.assert_allclose(scores.fractions, [0.125, 0.5, 0.75])
    assert np.isfinite(scores.morf).all() and np.isfinite(scores.lerf).all()
    conv2 = keras.Model(square_detector.model.inputs[0], square_detector.model.get_layer("conv2").output)
    expected = conv2(np.asarray(image, np.float32)[None, ..., None] / 255.0).numpy()[0, ..., filter_index].mean()
    assert scores.intact == pytest.approx(float(expected), rel=1e-5)  # the score is the filter's, not a class's


@pytest.mark.parametrize("percentiles", [(0, 50), (50, 100), (-10,), (10, 150), (float("nan"),), ("ten",), (),
                                         (33.33,)])
def test_percentiles_outside_0_to_100_are_refused_with_a_reason(square_detector, percentiles):
    image, truth = with_square(2)
    with pytest.raises(ConvVisError, match="strictly between 0 and 100|at least one percentile|at most one decimal"):
        road(square_detector, image, Heatmap("truth", truth, ClassTarget(1), None), percentiles=percentiles)


def scored_with(deletion: float, insertion: float, combined: float) -> ScoredHeatmap:
    """A ScoredHeatmap with the given deletion AUC, insertion AUC and ROAD combined score (flat curves)."""
    fractions = np.linspace(0, 1, 3)
    curves = Faithfulness(fractions, np.full(3, deletion), np.full(3, insertion), "probability")
    scores = Road(np.array([0.5]), np.array([0.5 - combined]), np.array([0.5 + combined]), 0.9, "probability")
    return ScoredHeatmap(Heatmap("gradcam", np.zeros((2, 2), np.float32), ClassTarget(1), None), curves, 0.1, scores)


TITLES = {"a": "Grad-CAM", "b": "Score-CAM", "c": "Layer-CAM"}


def test_the_verdict_says_whether_deletion_insertion_and_road_agree():
    agree = verdict({"a": scored_with(0.1, 0.9, 0.3), "b": scored_with(0.3, 0.5, 0.1)})
    assert (agree.best_deletion, agree.best_insertion, agree.best_road) == ("a", "a", "a")
    assert agree.road_combined == pytest.approx(0.3)
    assert "favours **Grad-CAM** (combined score 0.300) too: the two agree" in agree.sentence(TITLES)

    disagree = verdict({"a": scored_with(0.1, 0.9, 0.05), "b": scored_with(0.3, 0.5, 0.2)})
    assert disagree.best_road == "b"
    assert ("Deletion/insertion favour **Grad-CAM**, ROAD favours **Score-CAM** (combined score 0.200): the two "
            "disagree here") in disagree.sentence(TITLES)
    assert "out-of-distribution" in disagree.sentence(TITLES)
    tie = verdict({"a": scored_with(0.1, 0.9, 0.377), "b": scored_with(0.3, 0.5, 0.379)})  # within ROAD's noise
    assert tie.best_road == "a" and "too: the two agree" in tie.sentence(TITLES)

    split = verdict({"a": scored_with(0.1, 0.5, 0.1), "b": scored_with(0.3, 0.9, 0.2), "c": scored_with(0.4, 0.4, 0.0)})
    assert "siding with insertion" in split.sentence(TITLES)
    third = verdict({"a": scored_with(0.1, 0.5, 0.1), "b": scored_with(0.3, 0.9, 0.0), "c": scored_with(0.4, 0.4, 0.2)})
    assert "**Layer-CAM**" in third.sentence(TITLES) and "do not agree" in third.sentence(TITLES)

    hopeless = verdict({"a": scored_with(0.1, 0.9, -0.1)})
    assert "no map beats what a random map scores" in hopeless.sentence(TITLES)
    assert verdict({}) is None
