"""CRAFT and neuron groups against known answers: models with a planted concept (convvis_testing.planted),
whose head after ``last_conv`` is linear in the layer (global average pooling, then the logits), so the
exact effect of taking a concept out, and its Sobol indices, can be computed by hand from the Dense
weights; Sobol's estimator on functions whose indices are known in closed form; bad inputs."""

from __future__ import annotations


import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from convvis_core.cache import ResultCache
from convvis_core.cam.targets import ClassTarget, FilterTarget
from convvis_core.concepts.craft import CRAFTS, concept_maps, craft_concepts
from convvis_core.concepts.groups import neuron_groups
from convvis_core.concepts.sobol import jansen_total_indices, replicated_design, total_indices
from convvis_core.errors import ConceptError, LayerError
from convvis_core.graph import sub_model
from convvis_testing.planted import RED, SIDE, red_square_model, red_square_scenes, shape_mask, shape_model

LAYER = "last_conv"


def square_scenes(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class-1 scenes whose only red is the red square (the other shapes in other colours), and each square's
    pixels, found from the pixels: the red component that fills its bounding box."""
    images, labels = red_square_scenes(4 * count, seed)
    chosen, squares = [], []
    for image in images[labels == 1]:
        red = np.all(image == RED, axis=-1)
        parts, found = ndimage.label(red)
        boxes = ndimage.find_objects(parts)
        full = [index + 1 for index, box in enumerate(boxes) if (parts[box] == index + 1).all()]
        if found == 1 and full:
            chosen.append(image)
            squares.append(red)
    return np.stack(chosen[:count]), np.stack(squares[:count])


def head_logits(loaded, activations: np.ndarray, unit: int) -> np.ndarray:
    """The model's logit of ``unit`` computed by hand from ``last_conv``'s activations (..., h, w, C): global
    average pooling, then the Dense layer's weights."""
    kernel, bias = loaded.model.get_layer("predictions").get_weights()
    return activations.mean(axis=(-3, -2)) @ kernel[:, unit] + bias[unit]


def layer_activations(loaded, pixels: np.ndarray) -> np.ndarray:
    return np.asarray(sub_model(loaded.model, [LAYER])(pixels.astype(np.float32), training=False))


@pytest.fixture(scope="module")
def red_square_craft():
    loaded = red_square_model()
    images, squares = square_scenes(40, seed=5)
    found = craft_concepts(loaded, [Image.fromarray(image) for image in images], ClassTarget(1), LAYER,
                           importance="sobol", designs=64, cache=ResultCache(None))
    return loaded, images, squares, found


def test_sobol_total_indices_match_closed_forms():
    """Jansen's estimator on f = Σ a_i x_i (total index a_i² / Σ a_j²) and on f = x₁ x₂ (4/7 each, where the
    first-order index would be 3/7, so interactions count), inputs uniform on [0, 1]."""
    weights = np.array([1.0, 2.0, 3.0, 0.0])
    additive = total_indices(lambda points: points @ weights, 4, designs=1024)
    np.testing.assert_allclose(additive, weights ** 2 / (weights ** 2).sum(), atol=0.01)
    product = total_indices(lambda points: points[:, 0] * points[:, 1], 3, designs=1024)
    np.testing.assert_allclose(product, [4 / 7, 4 / 7, 0.0], atol=0.01)
    design = replicated_design(3, 8)
    assert design.shape == (8 * 5, 3) and 0 <= design.min() and design.max() <= 1
    np.testing.assert_array_equal(design[16:24, 1:], design[:8, 1:])  # input 0's rows: A with column 0 from B
    np.testing.assert_array_equal(design[16:24, 0], design[8:16, 0])
    assert not jansen_total_indices(np.ones(8 * 5), 8, 3).any()  # a constant output: nothing to attribute


def test_craft_finds_the_planted_red_square(red_square_craft):
    """Among the two most important concepts for "red square", one whose 10 top crops hold the square (pixel
    truth) in at least 8, far above random crops; it raises the class, and its map over a new image peaks on
    the square, not on a red disc or a green square there."""
    loaded, images, squares, found = red_square_craft
    side = found.side

    def holds_square(box) -> bool:
        image, top, left = box
        return bool(squares[image, top:top + side, left:left + side].any())

    hits = {int(concept): sum(holds_square(box) for box in found.boxes[found.top_crops(concept, 10)])
            for concept in found.order[:2]}
    concept = max(hits, key=hits.get)
    chance = np.mean([holds_square(box) for box in found.boxes])
    print(f"top-10 crops holding the square, top two concepts: {hits}; any crop: {chance:.0%}")
    assert hits[concept] >= 8 and chance < 0.6
    assert found.effect(concept) == "raises" and found.gradient_x_coefficient[concept] > 0

    scene = np.random.default_rng(3).integers(0, 60, (SIDE, SIDE, 3)).astype(np.uint8)
    square = shape_mask("square", 18, 4)
    scene[square] = RED
    scene[shape_mask("disc", 4, 20)] = RED
    scene[shape_mask("square", 4, 4)] = (30, 200, 40)
    where = concept_maps(loaded, Image.fromarray(scene), found)[..., concept]
    row, column = np.unravel_index(np.argmax(where), where.shape)
    cell = SIDE // where.shape[0]
    assert square[row * cell:(row + 1) * cell, column * cell:(column + 1) * cell].any(), where.round(1)


def test_importance_against_the_head_by_hand(red_square_craft):
    """After ``last_conv`` the class-1 logit is linear in the activations, so gradient × coefficient is exactly
    the logit's drop when a concept's part U_k W_k is taken out, and Sobol's total index of each image is
    c_k² / Σ c_j² of those drops (uniform masks): both computed here from the Dense weights and compared. The two
    importances then agree on the top concept."""
    loaded, images, _, found = red_square_craft
    activations = layer_activations(loaded, images)
    parts = found.image_coefficients[..., None] * found.bank  # (n, h, w, k, C)
    drops = head_logits(loaded, activations, 1)[:, None] - np.stack(
        [head_logits(loaded, activations - parts[..., k, :], 1) for k in range(found.count)], axis=1)
    np.testing.assert_allclose(found.gradient_x_coefficient, drops.mean(axis=0), rtol=1e-3, atol=1e-3)
    expected = (drops ** 2 / (drops ** 2).sum(axis=1, keepdims=True)).mean(axis=0)
    print("Sobol", found.sobol.round(3), "by hand", expected.round(3))
    np.testing.assert_allclose(found.sobol, expected, atol=0.03)
    assert np.argmax(found.sobol) == np.argmax(np.abs(found.gradient_x_coefficient))
    assert found.runs == 40 * 64 * (found.count + 2) and "Sobol" in found.cost()


def test_craft_is_cached_and_shows_itself(red_square_craft, tmp_path):
    """The same request is served from the cache without computing; one image gives its own crops; the API's
    result draws a sheet and writes its scores as a CSV, one row per concept, most important first."""
    import convvis_core as cv

    loaded, images, _, _ = red_square_craft
    cache = ResultCache(None)
    first = craft_concepts(loaded, images[:3], ClassTarget(1), LAYER, concepts=4, crops=40, cache=cache)
    computed = CRAFTS[LAYER]
    again = craft_concepts(loaded, images[:3], ClassTarget(1), LAYER, concepts=4, crops=40, cache=cache)
    assert again.from_cache and not first.from_cache and CRAFTS[LAYER] == computed
    np.testing.assert_array_equal(again.bank, first.bank)
    np.testing.assert_array_equal(again.crops(again.top_crops(0, 3)), first.concept_images(0, 3))

    view = cv.craft(loaded, images[:1], 1, LAYER, k=3, crops=24, image=images[1])
    assert len(view.found.boxes) == 24 and set(view.found.boxes[:, 0]) == {0}  # crops of the one image
    assert view.save(tmp_path / "craft.png").stat().st_size > 0
    rows = (tmp_path / "craft.csv")
    view.save_csv(rows)
    lines = rows.read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith("rank,concept,gradient × coefficient")
    assert view.concept_images(1, 5).shape == (5, SIDE, SIDE, 3) and view.vector(1).shape == (32,)
    assert view.direction(1).layer == LAYER and "<table>" in view._repr_html_()


def test_neuron_groups_tell_the_square_from_the_disc():
    """On a model that tells a lone square from a lone disc, an image with both: the square's pixels and the
    disc's are dominated by different groups; the square's group raises "square", the disc's lowers it; each
    contribution is gradient × activation of its group's share, computed here from the Dense weights."""
    loaded = shape_model()
    scene = np.random.default_rng(3).integers(0, 60, (SIDE, SIDE, 3)).astype(np.uint8)
    square, disc = shape_mask("square", 4, 4), shape_mask("disc", 18, 18)
    scene[square | disc] = 255
    found = neuron_groups(loaded, Image.fromarray(scene), ClassTarget(0), LAYER, cache=ResultCache(None))
    cell = SIDE // found.maps.shape[0]
    dominant = np.kron(found.dominant(), np.ones((cell, cell), int))
    on_square, on_disc = (np.bincount(dominant[mask], minlength=found.count) / mask.sum() for mask in (square, disc))
    print(f"groups over the square {on_square.round(2)}, over the disc {on_disc.round(2)}, error {found.error:.3f}")
    assert np.argmax(on_square) != np.argmax(on_disc) and on_square.max() > 0.6 and on_disc.max() > 0.6
    assert found.contributions[np.argmax(on_square)] > 0 > found.contributions[np.argmax(on_disc)]

    kernel, bias = loaded.model.get_layer("predictions").get_weights()
    positions = found.maps.shape[0] * found.maps.shape[1]
    by_hand = np.einsum("hwk,kc,c->k", found.maps, found.bank, kernel[:, 0] / positions)
    np.testing.assert_allclose(found.contributions, by_hand, rtol=1e-4, atol=1e-4)
    logit = head_logits(loaded, layer_activations(loaded, scene[None])[0], 0)
    assert found.total == pytest.approx(logit - bias[0], rel=1e-4)
    assert found.contributions.sum() + found.leftover == pytest.approx(found.total, rel=1e-5)


def test_neuron_groups_reconstruct_at_full_rank():
    """NMF's reconstruction error is reported: near 0 with one group per channel, larger with two."""
    loaded, image = shape_model(), Image.fromarray(red_square_scenes(1, seed=1)[0][0])
    full = neuron_groups(loaded, image, ClassTarget(0), LAYER, groups=32, cache=ResultCache(None))
    two = neuron_groups(loaded, image, ClassTarget(0), LAYER, groups=2, cache=ResultCache(None))
    print(f"reconstruction error: {full.error:.5f} at k = 32 (every channel), {two.error:.3f} at k = 2")
    assert full.error < 0.01 < two.error


def test_bad_inputs_are_refused_with_what_to_do():
    loaded = shape_model()
    image = Image.fromarray(red_square_scenes(1, seed=1)[0][0])
    with pytest.raises(ConceptError, match="last_conv, which has 32 channels.*choose 1 to 32"):
        neuron_groups(loaded, image, ClassTarget(0), LAYER, groups=33)
    with pytest.raises(ConceptError, match="32 channels"):
        craft_concepts(loaded, [image], ClassTarget(0), LAYER, concepts=40, crops=50)
    with pytest.raises(ConceptError, match="5 concepts.*from 4 crops|at most 4"):
        craft_concepts(loaded, [image], ClassTarget(0), LAYER, concepts=5, crops=4)
    with pytest.raises(LayerError, match="no spatial"):
        craft_concepts(loaded, [image], ClassTarget(0), "pool")
    with pytest.raises(LayerError, match="no spatial"):
        neuron_groups(loaded, image, ClassTarget(0), "predictions")
    with pytest.raises(ConceptError, match="none were given"):
        craft_concepts(loaded, [], ClassTarget(0), LAYER)
    with pytest.raises(ConceptError, match="comes before last_conv"):
        craft_concepts(loaded, [image], FilterTarget("conv1", 0), LAYER)
    with pytest.raises(ConceptError, match="'gradient'.*'sobol'"):
        craft_concepts(loaded, [image], ClassTarget(0), LAYER, importance="shap")


def test_command_line(tmp_path, capsys):
    """`convvis concepts craft` over a folder of the class's images and `convvis concepts groups` on one image: a
    table on the terminal, the PNG sheet and the CSV written; too many groups: a one-line error, exit code 2."""
    from convvis_core.cli import main

    model_file = tmp_path / "squares.keras"
    shape_model().model.save(model_file)
    folder = tmp_path / "squares"
    folder.mkdir()
    for index, image in enumerate(square_scenes(4, seed=5)[0]):
        Image.fromarray(image).save(folder / f"{index}.png")
    assert main(["concepts", "craft", str(model_file), str(folder), "--class", "0", "--layer", LAYER, "-k", "3",
                 "--crops", "24", "--map", str(folder / "0.png"), "--out", str(tmp_path / "c.png"),
                 "--csv", str(tmp_path / "c.csv")]) == 0
    printed = capsys.readouterr().out
    assert "gradient × coefficient" in printed and "from 24 crops of 4 image(s)" in printed
    assert (tmp_path / "c.png").stat().st_size > 0 and len((tmp_path / "c.csv").read_text().splitlines()) == 4
    assert main(["concepts", "groups", str(model_file), str(folder / "1.png"), "--class", "1", "-k", "40",
                 "--out", str(tmp_path / "g.png")]) == 2
    assert "choose 1 to 32" in capsys.readouterr().err


def test_the_same_concepts_and_groups_with_the_preprocessing_inside_outside_or_nested():
    """The planted model with its Rescaling inside, fed scaled pixels without it, and nested in a wrapper (the
    variants test_tcav checks TCAV on): the same CRAFT importances and neuron-group contributions."""
    from test_tcav import VARIANTS

    images, labels = red_square_scenes(40, seed=3)
    ones = images[labels == 1][:12]
    found = {}
    for name, (make, layer) in VARIANTS.items():
        loaded = make(red_square_model())
        concepts = craft_concepts(loaded, ones, ClassTarget(1), layer, concepts=4, crops=60, cache=ResultCache(None))
        groups = neuron_groups(loaded, Image.fromarray(ones[0]), ClassTarget(1), layer, 4, cache=ResultCache(None))
        found[name] = np.concatenate([concepts.gradient_x_coefficient, groups.contributions])
    assert np.abs(found["inside"]).max() > 1  # measured: concepts +6.44 … −3.93, groups +5.47 … −3.27
    for name in ("outside", "nested"):
        np.testing.assert_allclose(found[name], found["inside"], rtol=1e-4, atol=1e-4)
