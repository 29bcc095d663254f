"""Every Keras model a user brings: several heads, a U-Net, an embedding, a second input, mixed precision.

The models are small and trained here on generated pictures (a white square, a square and a disc), so
what they predict, and where the evidence lies, is known: the maps are checked against the
formula computed by hand and against the squares' pixels. The Heatmaps page with them: test_heatmaps_page.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import keras

from convvis_core.batches import pixel_batch
from convvis_core.cam import (ClassTarget, FilterTarget, OutputNormTarget, OutputUnitTarget, Region, RegionTarget,
                              SimilarityTarget, heatmap)
from convvis_core.cam.base import Heatmap, probe_for
from convvis_core.cam.faithfulness import faithfulness
from convvis_core.cam.road import road
from convvis_core.cam.targets import check_target
from convvis_core.errors import ConvVisError, ModelError
from convvis_core.live import LiveProcessor
from convvis_core.models.uploaded import describe_uploaded, load_model_file
from convvis_core.predictions import predict_outputs, top_k
from convvis_core.presentation.overlays import legend, mask_overlay
from convvis_core.segmentation import class_map, predicted_region

SIZE = 32  # every model here reads 32×32 grayscale pictures, x / 255 (ConvVis' default preprocessing)
SIDE = 8  # of the two-head model's square


# ---------------------------------------------------------------------------------------------- data


def square_pictures(count: int, seed: int, present: float = 0.7):
    """Black pictures, most with one white square: (pixels 0..1, square present?, its centre column / SIZE, boxes)."""
    rng = np.random.default_rng(seed)
    pixels = np.zeros((count, SIZE, SIZE, 1), np.float32)
    there, column, boxes = np.zeros(count, np.int32), np.zeros((count, 1), np.float32), []
    for i in range(count):
        if rng.random() < present:
            top, left = (int(v) for v in rng.integers(0, SIZE - SIDE + 1, 2))
            pixels[i, top:top + SIDE, left:left + SIDE] = 1
            there[i], column[i] = 1, (left + SIDE / 2) / SIZE
            boxes.append((top, left))
        else:
            boxes.append(None)
    return pixels, there, column, boxes


def shape_pictures(count: int, seed: int):
    """Black pictures with a white 10×10 square and a white disc of radius 5 apart; labels per pixel:
    0 background, 1 square, 2 disc."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:SIZE, :SIZE]
    pixels, labels = np.zeros((count, SIZE, SIZE, 1), np.float32), np.zeros((count, SIZE, SIZE), np.int32)
    for i in range(count):
        while True:
            top, left = rng.integers(0, SIZE - 10 + 1, 2)
            cy, cx = rng.integers(5, SIZE - 5, 2)
            if abs(cy - (top + 5)) > 11 or abs(cx - (left + 5)) > 11:
                break
        labels[i, top:top + 10, left:left + 10] = 1
        labels[i][(rows - cy) ** 2 + (cols - cx) ** 2 <= 25] = 2
        pixels[i, ..., 0] = labels[i] > 0
    return pixels, labels


def picture(pixels: np.ndarray) -> Image.Image:
    """One generated picture (H, W, 1) in 0..1 as the grayscale image a user would upload."""
    return Image.fromarray((pixels[..., 0] * 255).round().astype(np.uint8), "L")


def square_at(top: int, left: int) -> Image.Image:
    pixels = np.zeros((SIZE, SIZE, 1), np.float32)
    pixels[top:top + SIDE, left:left + SIDE] = 1
    return picture(pixels)


def seen(image: Image.Image) -> np.ndarray:
    """What the models are fed for an image: x / 255, a batch of one."""
    return np.asarray(image, np.float32)[None, :, :, None] / 255.0


# -------------------------------------------------------------------------------------------- models


def two_head_model() -> keras.Model:
    """A shared conv trunk with two heads: 'present' (softmax: is there a square?) and 'column'
    (linear: the square's centre column / picture side)."""
    image = keras.Input((SIZE, SIZE, 1), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(image)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    flat = keras.layers.Flatten(name="flat")(x)
    present = keras.layers.Dense(2, activation="softmax", name="present")(flat)
    column = keras.layers.Dense(1, name="column")(flat)
    return keras.Model(image, [present, column], name="two_heads")


def unet_model() -> keras.Model:
    image = keras.Input((SIZE, SIZE, 1), name="image")
    down = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="down1")(image)
    x = keras.layers.MaxPooling2D(name="pool")(down)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="bottom")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="bottom2")(x)
    x = keras.layers.UpSampling2D(name="upsample")(x)
    x = keras.layers.Concatenate(name="skip")([x, down])
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="up1")(x)
    classes = keras.layers.Conv2D(3, 1, activation="softmax", name="classes")(x)
    return keras.Model(image, classes, name="unet")


# The models trained on these pictures, ``two_heads`` and ``unet``, are session fixtures in conftest.py:
# test_heatmaps_page.py opens them in the page without training them again.


@pytest.fixture(scope="module")
def shapes():
    return shape_pictures(4, seed=3)


# ------------------------------------------------------------------------------------ two heads


def test_a_saved_two_head_model_lists_both_heads_with_their_kinds(two_heads):
    model, path, loaded = two_heads
    for info in (loaded.info, describe_uploaded(model, "two_heads.keras", "two").info):
        assert [(o.name, o.kind, o.shape) for o in info.outputs] == [("present", "classes", (2,)),
                                                                       ("column", "values", (1,))]
        assert info.output == 0 and info.output_info.name == "present" and info.is_classifier
        assert "present (classes)" in info.description and "column (values)" in info.description
    assert len(loaded.source.outputs) == 2 and len(loaded.model.outputs) == 1


def test_views_give_the_models_own_numbers_over_the_same_layers(two_heads):
    _, path, loaded = two_heads
    pixels = square_pictures(16, seed=5)[0]
    expected = loaded.source.predict(pixels, verbose=0)
    for index, name in enumerate(("present", "column")):
        for view in (loaded.with_output(index), loaded.with_output(name)):
            assert view.info.output_info.name == name and view.info.key.endswith(f"#output:{index}")
            np.testing.assert_allclose(np.asarray(view.model(pixels)), expected[index], rtol=1e-5, atol=1e-6)
            assert view.model.get_layer("conv1") is loaded.source.get_layer("conv1")  # same weights
    assert loaded.with_output("column").with_output(0).info.key == loaded.info.key
    assert loaded.with_output(1).model is loaded.with_output("column").model  # one view object per head


def test_top_k_and_predict_outputs_read_each_head(two_heads):
    _, _, loaded = two_heads
    image, blank = square_at(4, 20), picture(np.zeros((SIZE, SIZE, 1), np.float32))
    assert top_k(loaded, image)[0].class_index == 1 and top_k(loaded, blank)[0].class_index == 0
    with pytest.raises(ConvVisError, match="'column' holds values.*not class scores"):
        top_k(loaded.with_output("column"), image)
    present, column = predict_outputs(loaded, image, k=2)
    assert (present.kind, column.kind) == ("classes", "values")
    assert [p.class_index for p in present.classes] == [1, 0] and present.classes[0].probability > 0.9
    expected = loaded.source.predict(seen(image), verbose=0)
    assert column.values == pytest.approx(expected[1][0].tolist(), abs=1e-5)
    assert column.norm == pytest.approx(abs(column.values[0]))
    assert abs(column.values[0] - (20 + SIDE / 2) / SIZE) < 0.1  # trained: it reads the square's column
    assert present.describe().startswith("present (classes, 2): 1. class 1")
    assert column.describe().startswith("column (values, 1): [")
    only = predict_outputs(loaded, image, outputs=[1])
    assert [p.name for p in only] == ["column"]


def grad_cam_by_hand(model: keras.Model, layer: str, value, image: Image.Image) -> np.ndarray:
    """Grad-CAM written out: a split model [layer, what ``value`` reads], gradients of the scalar
    value on a tape, channel weights = mean gradient, ReLU of the weighted sum, bilinear resize to
    the input, min-max."""
    split = keras.Model(model.input, [model.get_layer(layer).output, value[0]])
    x = tf.constant(seen(image))
    with tf.GradientTape() as tape:
        tape.watch(x)
        activations, read = split(x, training=False)
        scalar = tf.reduce_sum(value[1](read))
    gradients = tape.gradient(scalar, activations).numpy()[0]
    activations = activations.numpy()[0]
    cam = np.maximum((activations * gradients.mean(axis=(0, 1))).sum(axis=-1), 0)
    cam = tf.image.resize(cam[None, :, :, None], (SIZE, SIZE), "bilinear").numpy()[0, :, :, 0]
    return (cam - cam.min()) / (cam.max() - cam.min())


@pytest.mark.parametrize("head", ["present", "column"])
def test_grad_cam_of_each_head_is_the_formula_by_hand(two_heads, head):
    _, _, loaded = two_heads
    model, image = loaded.source, square_at(12, 6)
    if head == "present":  # the class logit: the softmax head's kernel on the flattened trunk, by hand
        kernel, bias = (w for w in model.get_layer("present").get_weights())
        value = (model.get_layer("flat").output, lambda flat: (tf.matmul(flat, kernel) + bias)[:, 1])
        target = ClassTarget(1)
    else:
        value = (model.get_layer("column").output, lambda column: column[:, 0])
        target = OutputUnitTarget(0)
    result = heatmap(loaded.with_output(head), image, "gradcam", target, "conv2")
    assert result.target == target and result.layer == "conv2"
    np.testing.assert_allclose(result.values, grad_cam_by_hand(model, "conv2", value, image), atol=1e-4)


def near_square(top: int, left: int, margin: int = 2) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), bool)
    mask[max(top - margin, 0):top + SIDE + margin, max(left - margin, 0):left + SIDE + margin] = True
    return mask


@pytest.mark.parametrize("top, left", [(4, 20), (20, 4), (12, 12)])
def test_the_regression_heads_unit_map_lies_on_the_square(two_heads, top, left):
    _, _, loaded = two_heads
    values = heatmap(loaded.with_output("column"), square_at(top, left), "gradcam", OutputUnitTarget(0),
                     "conv2").values
    strongest = np.argsort(values.ravel())[::-1][:20]
    assert near_square(top, left).ravel()[strongest].mean() >= 0.8
    assert near_square(top, left)[np.unravel_index(values.argmax(), values.shape)]


# ------------------------------------------------------------------------------------------ U-Net


def test_unet_is_a_segmentation_and_its_class_map_is_the_argmax(unet, shapes):
    model, _, loaded = unet
    pixels, labels = shapes
    output = loaded.info.output_info
    assert (output.name, output.kind, output.shape) == ("classes", "segmentation", (SIZE, SIZE, 3))
    expected = model.predict(pixels, verbose=0).argmax(-1)
    for i in range(len(pixels)):
        classes = class_map(loaded, picture(pixels[i]))
        assert classes.shape == (SIZE, SIZE) and classes.dtype.kind == "i"
        np.testing.assert_array_equal(classes, expected[i])
        assert (classes == labels[i]).mean() > 0.97  # trained: it tells squares from discs
    overlay = mask_overlay(picture(pixels[0]).resize((96, 96)), expected[0], alpha=0.5)
    assert overlay.size == (96, 96) and overlay.mode == "RGB"
    painted = np.asarray(overlay)
    background = np.argwhere(expected[0] == 0)[0] * 3
    assert (painted[tuple(background)] == 0).all()  # class 0 stays as it is (black)
    square = np.argwhere(expected[0] == 1)[0] * 3
    assert painted[tuple(square)].tolist() != painted[tuple(np.argwhere(expected[0] == 2)[0] * 3)].tolist()
    assert [name for name, _ in legend(output.class_names)] == ["class 0", "class 1", "class 2"]
    assert legend(output.class_names)[0][1] == "#00000000" and legend(("fg",))[1][0] == "fg"


def top_pixels_on(values: np.ndarray, mask: np.ndarray, count: int = 50) -> float:
    return float(mask.ravel()[np.argsort(values.ravel())[::-1][:count]].mean())


@pytest.mark.parametrize("where", ["whole image", "predicted"])
def test_a_segmentation_class_map_lies_on_the_squares_not_the_disc(unet, shapes, where):
    _, _, loaded = unet
    pixels, labels = shapes
    for i in range(3):
        image = picture(pixels[i])
        region = predicted_region(loaded, image, 1) if where == "predicted" else None
        if region is not None:
            assert region.name == "the pixels predicted as class 1"
            assert (region.mask() == (labels[i] == 1)).mean() > 0.97
        result = heatmap(loaded, image, "gradcam", RegionTarget(1, region), "up1")
        assert top_pixels_on(result.values, labels[i] == 1) >= 0.8
        assert top_pixels_on(result.values, labels[i] == 2) <= 0.1


def test_a_region_targets_value_is_the_sum_of_the_class_logits_over_the_mask(unet, shapes):
    _, _, loaded = unet
    model = loaded.model
    image = picture(shapes[0][0])
    features = keras.Model(model.input, model.get_layer("up1").output)(seen(image)).numpy()[0]
    kernel, bias = model.get_layer("classes").get_weights()
    logits = features @ kernel[0, 0] + bias  # the 1×1 head conv before its softmax, by hand
    pixels = pixel_batch(image, loaded.info, dtype=np.float32)
    box = Region.box((SIZE, SIZE), 4, 6, 20, 18)
    for region, mask in ((None, np.ones((SIZE, SIZE))), (box, box.mask()),
                         (predicted_region(loaded, image, 2), logits.argmax(-1) == 2)):
        target = RegionTarget(2, region)
        value = probe_for(loaded, None, target).values(pixels, target)[0]
        assert value == pytest.approx(float((logits[..., 2] * mask).sum()), rel=1e-4, abs=1e-3)
    assert box.pixels == 16 * 12


def test_segmentation_mistakes_are_clear_errors(unet, two_heads):
    _, _, loaded = unet
    blank = picture(np.zeros((SIZE, SIZE, 1), np.float32))
    with pytest.raises(ConvVisError, match="predicts no pixel as class 1.*whole image, or draw a region"):
        predicted_region(loaded, blank, 1)
    with pytest.raises(ConvVisError, match="Class 3 is out of range: output 'classes' has 3 classes"):
        predicted_region(loaded, blank, 3)
    with pytest.raises(ConvVisError, match="region holds no pixels"):
        check_target(loaded, RegionTarget(1, Region.of(np.zeros((SIZE, SIZE), bool))))
    with pytest.raises(ConvVisError, match="The region is 8×8 but output 'classes' maps 32×32"):
        check_target(loaded, RegionTarget(1, Region.box((8, 8), 0, 0, 4, 4)))
    with pytest.raises(ConvVisError, match="'classes' holds a per-pixel class map.*cannot be explained as class 1"):
        check_target(loaded, ClassTarget(1))
    with pytest.raises(ModelError, match="cannot be read as values"):
        loaded.with_output(0, kind="values")
    with pytest.raises(ConvVisError, match="'present' holds class scores.*not a per-pixel class map"):
        class_map(two_heads[2], blank)


def test_a_one_channel_sigmoid_mask_predicts_its_class_above_one_half(unet):
    from convvis_core.layers import default_layer
    from convvis_core.predictions import ClassShare

    image = keras.Input((SIZE, SIZE, 1), name="image")
    features = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="features")(image)
    mask = keras.layers.Conv2D(1, 1, activation="sigmoid", name="mask")(features)
    model = keras.Model(image, mask, name="masker")
    model.get_layer("features").set_weights([np.stack([np.pad([[[1.0]]], ((1, 1), (1, 1), (0, 0)))] * 2, -1),
                                             np.zeros(2)])
    model.get_layer("mask").set_weights([np.full((1, 1, 2, 1), 5.0), np.array([-5.0])])  # white: p = 0.99
    loaded = describe_uploaded(model, "masker.keras", "masker")
    assert loaded.info.output_info.kind == "segmentation" and loaded.info.output_info.units == 1
    picture_ = square_at(6, 9)
    classes = class_map(loaded, picture_)
    np.testing.assert_array_equal(classes, model.predict(seen(picture_), verbose=0)[0, ..., 0] > 0.5)
    assert classes.sum() == SIDE * SIDE and classes[6:14, 9:17].all()
    region = predicted_region(loaded, picture_, 0)
    np.testing.assert_array_equal(region.mask(), classes == 1)
    (shares,) = predict_outputs(loaded, picture_)
    assert shares.shares == [ClassShare(-1, "background", 1 - 64 / 1024), ClassShare(0, "class 0", 64 / 1024)]
    assert [name for name, _ in legend(loaded.info.output_info.class_names)] == ["background", "class 0"]
    assert default_layer(loaded.model).path == "features"  # not the head: its output leads to no logit
    assert default_layer(unet[2].model).path == "up1"
    result = heatmap(loaded, picture_, "gradcam", RegionTarget(0, region))  # at the default layer
    assert top_pixels_on(result.values, classes == 1, 32) == 1.0


def test_a_one_unit_sigmoid_classifier_scores_its_probability():
    keras.utils.set_random_seed(3)
    image = keras.Input((SIZE, SIZE, 1), name="image")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu", name="conv")(image))
    model = keras.Model(image, keras.layers.Dense(1, activation="sigmoid", name="is_square")(x))
    loaded = describe_uploaded(model, "binary.keras", "binary")
    picture_ = square_at(5, 5)
    probability = float(model.predict(seen(picture_), verbose=0)[0, 0])
    target = ClassTarget(0)
    assert probe_for(loaded, None, target).scores(pixel_batch(picture_, loaded.info, dtype=np.float32), target)[0] == pytest.approx(
        probability, rel=1e-5)  # its sigmoid, not a softmax over one logit (always 1)
    assert top_k(loaded, picture_)[0].probability == pytest.approx(probability, rel=1e-5)


LABEL_LOGITS = np.array([3.0, 5.0])  # the two-label model's logits on square_at(5, 5): both on under a sigmoid


def two_label_model(activation: str | None) -> keras.Model:
    """Two labels over a small conv trunk, the head's kernel set so that on ``square_at(5, 5)`` its logits are
    ``LABEL_LOGITS`` (sigmoids 0.95 and 0.99; a softmax would give them 0.12 and 0.88)."""
    keras.utils.set_random_seed(6)
    image = keras.Input((SIZE, SIZE, 1), name="image")
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(
        keras.layers.Conv2D(4, 3, activation="relu", name="conv")(image))
    head = keras.layers.Dense(2, activation=activation, name="labels")
    model = keras.Model(image, head(pooled), name="two_labels")
    features = keras.Model(image, pooled)(seen(square_at(5, 5))).numpy()[0].astype(np.float64)
    assert features @ features > 0
    bias = np.array([-1.0, 0.5])
    head.kernel.assign(np.outer(features, LABEL_LOGITS - bias) / (features @ features))
    head.bias.assign(bias)
    return model


@pytest.mark.parametrize("activation, score_name", [("sigmoid", "probability"), (None, "logit")])
def test_each_unit_of_a_multi_unit_head_is_scored_by_the_heads_own_activation(activation, score_name):
    """A sigmoid head's labels each by their own sigmoid (both on, not a softmax's share of 1); a linear head's
    units by their value. The deletion and insertion curves follow that score, point by point."""
    model = two_label_model(activation)
    loaded = describe_uploaded(model, "labels.keras", "labels")
    assert loaded.info.output_info.kind == "classes"
    picture_ = square_at(5, 5)
    x = seen(picture_)
    own = model.predict(x, verbose=0)[0].astype(np.float64)  # what the head itself outputs
    expected = 1 / (1 + np.exp(-LABEL_LOGITS)) if activation == "sigmoid" else LABEL_LOGITS
    np.testing.assert_allclose(own, expected, rtol=1e-5)
    pixels = pixel_batch(picture_, loaded.info, dtype=np.float32)
    for label in (0, 1):
        target = ClassTarget(label)
        assert probe_for(loaded, None, target).scores(pixels, target)[0] == pytest.approx(expected[label], rel=1e-5)
    if activation == "sigmoid":
        assert expected.min() > 0.9  # both labels on
        shown = expected[::-1]  # top-k, highest first
        assert [p.probability for p in top_k(loaded, picture_)] == pytest.approx(shown, rel=1e-5)
        live_top = LiveProcessor.for_model(loaded).process(np.asarray(picture_.convert("RGB"))).top
        assert [p.probability for p in live_top] == pytest.approx(shown, rel=1e-5)

    values = (np.arange(SIZE * SIZE, dtype=np.float32) / (SIZE * SIZE)).reshape(SIZE, SIZE)[::-1]  # no ties
    steps, label = 4, 0
    explained = Heatmap("gradcam", values, ClassTarget(label), "conv")
    curves = faithfulness(loaded, picture_, explained, steps=steps, baseline="black")
    order = np.argsort(-values.ravel())  # most important first
    kept = np.zeros((steps + 1, SIZE * SIZE), bool)
    for k in range(steps + 1):
        kept[k, order[:round(k / steps * SIZE * SIZE)]] = True
    kept = kept.reshape(steps + 1, SIZE, SIZE, 1)
    deleted, inserted = (model.predict(np.where(kept, a, b), verbose=0)[:, label] for a, b in ((0.0, x), (x, 0.0)))
    assert curves.score_name == score_name
    np.testing.assert_allclose(curves.deletion, deleted, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(curves.insertion, inserted, rtol=1e-5, atol=1e-6)
    assert curves.deletion[0] == pytest.approx(expected[label], rel=1e-5)
    road_scores = road(loaded, picture_, explained)
    assert road_scores.intact == pytest.approx(expected[label], rel=1e-5) and road_scores.score_name == score_name


def test_a_multi_label_segmentations_region_score_is_each_channels_own_sigmoid():
    """Two sigmoid channels (a pixel may be both): a region's score is the channel's own mean output there,
    not its share of a softmax across the channels."""
    keras.utils.set_random_seed(7)
    image = keras.Input((SIZE, SIZE, 1), name="image")
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="features")(image)
    model = keras.Model(image, keras.layers.Conv2D(2, 1, activation="sigmoid", name="maps")(features))
    loaded = describe_uploaded(model, "maps.keras", "maps")
    assert loaded.info.output_info.kind == "segmentation"
    picture_ = square_at(6, 6)
    own = model.predict(seen(picture_), verbose=0)[0]
    region = Region.box((SIZE, SIZE), 4, 4, 14, 14)
    for channel in (0, 1):
        target = RegionTarget(channel, region)
        score = probe_for(loaded, None, target).scores(pixel_batch(picture_, loaded.info, dtype=np.float32), target)[0]
        assert score == pytest.approx(own[4:14, 4:14, channel].mean(), rel=1e-5)


# ----------------------------------------------------------------------------- values, embeddings


@pytest.fixture(scope="module")
def embedding():
    keras.utils.set_random_seed(4)
    image = keras.Input((SIZE, SIZE, 1), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(image)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(image, keras.layers.Dense(6, name="embedding")(x), name="embedder")
    return model, describe_uploaded(model, "embedder.keras", "embedder")


def test_a_linear_vector_read_as_values_explains_its_norm_and_similarity(embedding):
    model, loaded = embedding
    assert loaded.info.output_info.kind == "classes"  # several linear units: logits, until told otherwise
    values = loaded.with_output(0, kind="values")
    assert values.info.output_info.kind == "values" and values.info.class_names is None
    image, other = square_at(3, 5), square_at(18, 14)
    out, out_other = (model.predict(seen(i), verbose=0)[0].astype(np.float64) for i in (image, other))
    pixels = pixel_batch(image, values.info, dtype=np.float32)
    norm = OutputNormTarget()
    assert probe_for(values, None, norm).values(pixels, norm)[0] == pytest.approx(np.linalg.norm(out), rel=1e-5)
    for reference, expected in ((out, 1.0), (out_other, out @ out_other / np.linalg.norm(out) / np.linalg.norm(out_other))):
        target = SimilarityTarget(tuple(reference.tolist()), "a reference")
        check_target(values, target)
        assert probe_for(values, None, target).values(pixels, target)[0] == pytest.approx(expected, abs=1e-5)
        assert probe_for(values, None, target).scores(pixels, target)[0] == pytest.approx(expected, abs=1e-5)
    result = heatmap(values, image, "gradcam", norm, "conv2")
    assert np.isfinite(result.values).all() and result.values.max() == 1
    with pytest.raises(ConvVisError, match="reference has 3 values but output 'embedding' has 6"):
        check_target(values, SimilarityTarget((1.0, 2.0, 3.0)))
    with pytest.raises(ConvVisError, match="Output unit 6 is out of range: output 'embedding' has 6 units"):
        check_target(values, OutputUnitTarget(6))
    with pytest.raises(ConvVisError, match="cannot be explained as the output's norm"):
        check_target(loaded, norm)  # read as classes


# ------------------------------------------------------------------------------------- two inputs


@pytest.fixture(scope="module")
def two_inputs(tmp_path_factory):
    keras.utils.set_random_seed(5)
    image = keras.Input((SIZE, SIZE, 1), name="image")
    meta = keras.Input((4,), name="meta")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(image)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Concatenate(name="join")([x, keras.layers.Dense(8, activation="relu", name="meta_dense")(meta)])
    model = keras.Model([image, meta], keras.layers.Dense(3, activation="softmax", name="label")(x), name="two_in")
    path = tmp_path_factory.mktemp("two_in") / "two_in.keras"
    model.save(path)
    return path, load_model_file(path)


def test_a_two_input_model_is_explained_through_its_image_with_the_other_held(two_inputs):
    path, loaded = two_inputs
    model = loaded.source
    assert [(i.name, i.is_image) for i in loaded.info.inputs] == [("image", True), ("meta", False)]
    assert loaded.info.held_inputs[0].held == (0.0,) * 4 and "inputs held fixed: meta" in loaded.info.description
    x = square_pictures(4, seed=6, present=1.0)[0]
    np.testing.assert_allclose(np.asarray(loaded.model(x)), model.predict([x, np.zeros((4, 4))], verbose=0),
                               rtol=1e-5, atol=1e-6)
    meta = [0.5, -1.0, 2.0, 3.0]
    held = loaded.with_held_inputs({"meta": meta})
    np.testing.assert_allclose(np.asarray(held.model(x)), model.predict([x, np.tile(meta, (4, 1))], verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.asarray(held.model(x)), np.asarray(loaded.model(x)))
    assert held.info.key != loaded.info.key and held.info.held_inputs[0].held == tuple(meta)
    assert loaded.with_held_inputs({"meta": meta}).model is held.model
    result = heatmap(held, picture(x[0]), "gradcam", ClassTarget(0), "conv")
    assert np.isfinite(result.values).all()
    with pytest.raises(ModelError, match=r"Input 'meta' takes 4 finite number\(s\).*gives 3"):
        loaded.with_held_inputs({"meta": [1, 2, 3]})
    with pytest.raises(ModelError, match="has no held input 'age'; its held inputs are: meta"):
        loaded.with_held_inputs({"age": [1, 2, 3, 4]})


# -------------------------------------------------------------------------------- mixed precision


def test_mixed_precision_maps_are_finite_and_close_to_the_float32_twin(two_heads):
    model, _, loaded = two_heads
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        half = two_head_model()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    half.set_weights(model.get_weights())
    assert half.outputs[0].dtype == "float16"
    halved = describe_uploaded(half, "two_heads_fp16.keras", "fp16")
    image = square_at(10, 16)
    for head, target in (("present", ClassTarget(1)), ("column", OutputUnitTarget(0))):
        full = heatmap(loaded.with_output(head), image, "gradcam", target, "conv2").values
        mixed = heatmap(halved.with_output(head), image, "gradcam", target, "conv2").values
        assert mixed.dtype == np.float32 and np.isfinite(mixed).all()
        assert np.abs(mixed - full).max() < 0.05


def half_precision(build, weights) -> keras.Model:
    """The model ``build()`` makes, built under mixed precision (float16 compute), with ``weights``."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        half = build()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    half.set_weights(weights)
    return half


def test_every_kind_saved_and_reloaded_explains_the_same_also_in_mixed_precision(two_heads, unet, embedding, shapes,
                                                                                  tmp_path):
    """Each kind of model, in float32 and built under mixed precision, saved as .keras and uploaded
    again: the same maps as before saving; mixed precision's maps finite and close to float32's."""
    pixels, labels = shapes
    embedder = embedding[0]
    kinds = {  # name: (model, how to rebuild it, the view to explain, target, layer, image)
        "two heads": (two_heads[0], two_head_model, lambda m: m.with_output("column"), OutputUnitTarget(0), "conv2",
                      square_at(10, 16)),
        "segmentation": (unet[0], unet_model, lambda m: m, RegionTarget(1, Region.of(labels[0] == 1, "the square")),
                         "up1", picture(pixels[0])),
        "embedding": (embedder, lambda: keras.models.clone_model(embedder), lambda m: m.with_output(0, kind="values"),
                      OutputNormTarget(), "conv2", square_at(3, 5)),
    }
    for name, (model, build, view, target, layer, image) in kinds.items():
        for precision, built in (("float32", model), ("mixed", half_precision(build, model.get_weights()))):
            before = view(describe_uploaded(built, f"{name}.keras", f"{name}-{precision}"))
            built.save(tmp_path / f"{name}-{precision}.keras")
            after = view(load_model_file(tmp_path / f"{name}-{precision}.keras"))
            for method in ("gradcam", "hirescam", "scorecam", "integrated_gradients"):
                kept = heatmap(before, image, method, target, layer).values
                reloaded = heatmap(after, image, method, target, layer).values
                np.testing.assert_allclose(reloaded, kept, atol=1e-5, err_msg=f"{name} {precision} {method}")
                if precision == "mixed":
                    full = heatmap(view(describe_uploaded(model, f"{name}.keras", name)), image, method, target,
                                   layer).values
                    agreement = np.corrcoef(reloaded.ravel(), full.ravel())[0, 1]  # float16 rounding moves pixels a little
                    assert np.isfinite(reloaded).all() and agreement > 0.98, (name, method, agreement)


# ------------------------------------------------------------------------------------- bad inputs


@pytest.fixture(scope="module")
def sequence_head():
    """A model whose second output is 3-D (N, T, C): a Conv1D over the picture's rows."""
    image = keras.Input((SIZE, SIZE, 1), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(image)
    pooled = keras.layers.Dense(2, activation="softmax", name="label")(keras.layers.GlobalAveragePooling2D()(x))
    rows = keras.layers.Reshape((SIZE, SIZE * 4), name="rows")(x)
    sequence = keras.layers.Conv1D(5, 3, padding="same", name="sequence")(rows)
    return describe_uploaded(keras.Model(image, [pooled, sequence], name="seq"), "seq.keras", "seq")


def test_wrong_targets_and_outputs_are_clear_errors_naming_the_output(two_heads, sequence_head):
    _, _, loaded = two_heads
    image = square_at(4, 4)
    with pytest.raises(ConvVisError, match="Class 5 is out of range: output 'present' has 2 classes"):
        heatmap(loaded, image, "gradcam", ClassTarget(5), "conv2")
    with pytest.raises(ConvVisError, match="Output unit 1 is out of range: output 'column' has 1 units"):
        heatmap(loaded.with_output("column"), image, "gradcam", OutputUnitTarget(1), "conv2")
    with pytest.raises(ConvVisError, match="output 'column' holds values.*cannot be explained as class 0"):
        heatmap(loaded.with_output("column"), image, "gradcam", ClassTarget(0), "conv2")
    with pytest.raises(ModelError, match="has no output 'box'; its outputs are: present, column"):
        loaded.with_output("box")
    with pytest.raises(ModelError, match="has no output 2"):
        loaded.with_output(2)

    assert [o.kind for o in sequence_head.info.outputs] == ["classes", "unsupported"]
    sequence = sequence_head.with_output("sequence")
    with pytest.raises(ConvVisError, match=r"output 'sequence' has shape \(32, 5\), which is neither"):
        heatmap(sequence, image, "gradcam", ClassTarget(0), "conv")
    with pytest.raises(ConvVisError, match="'sequence' has shape"):
        top_k(sequence, image)
    label, seq = predict_outputs(sequence_head, image)
    assert label.predicts and not seq.predicts and "neither a vector" in seq.reason
    assert seq.describe() == ("sequence (unsupported, 32×5): has shape (32, 5), which is neither a vector (2-D) nor a "
                              "per-pixel map (4-D), so it has no prediction; explain a filter of one of its layers instead")
    filtered = heatmap(sequence, image, "gradcam", FilterTarget("conv", 0), "conv")  # filters need no head
    assert filtered.values.shape == (SIZE, SIZE)


# ---------------------------------------------------------------------------------- command line


def test_the_cli_predicts_every_head_and_explains_the_regression_head(two_heads, tmp_path, capsys):
    from convvis_core.cli import main

    _, path, _ = two_heads
    photo = tmp_path / "square.png"
    square_at(4, 20).save(photo)
    assert main(["predict", str(path), str(photo)]) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["present", "column"] and "1. class 1" in lines[0]
    assert "outputs are 0: present (classes), 1: column (values)" in err

    assert main(["predict", str(path), str(photo), "--output", "1"]) == 0
    assert capsys.readouterr().out.startswith("column (values, 1): [")
    assert main(["predict", str(path), str(photo), "--output", "present", "--output-kind", "values"]) == 0
    assert capsys.readouterr().out.startswith("present (values, 2): [")

    png = tmp_path / "cam.png"
    assert main(["cam", str(path), str(photo), "--output", "column", "--unit", "0", "--out", str(png)]) == 0
    out, _ = capsys.readouterr()
    assert "target: output unit 0" in out and "score: output value" in out and "layer: conv2" in out
    with Image.open(png) as written:
        assert written.size == (SIZE, SIZE)

    for args, message in ((["--class", "99"], "error: Class 99 is out of range: output 'present' has 2 classes"),
                          (["--output", "box"], "error: two_heads.keras has no output 'box'; its outputs are: "
                                                "present, column."),
                          (["--output", "column", "--class", "0"], "output 'column' holds values"),
                          (["--region", "predicted"], "--region is for a segmentation output"),
                          (["--unit", "0", "--norm"], "Choose one target: --unit and --norm")):
        assert main(["cam", str(path), str(photo), "--out", str(png), *args]) == 2, args
        out, err = capsys.readouterr()
        last = err.strip().splitlines()[-1]
        assert last.startswith("error: ") and message in last and "Traceback" not in err, (args, err)


def test_the_cli_explains_a_segmentation_region_and_holds_inputs(unet, two_inputs, shapes, tmp_path, capsys):
    from convvis_core.cli import main

    _, path, _ = unet
    photo, blank, png = tmp_path / "shapes.png", tmp_path / "blank.png", tmp_path / "cam.png"
    picture(shapes[0][0]).save(photo)
    picture(np.zeros((SIZE, SIZE, 1), np.float32)).save(blank)
    assert main(["predict", str(path), str(photo)]) == 0
    assert "classes (segmentation, 32×32×3): pixels predicted as class 0" in capsys.readouterr().out
    for region, where in (("predicted", "over the pixels predicted as class 1"), ("2,2,20,20", "over rows 2–19"),
                          (None, "over the whole image")):
        args = ["--region", region] if region else []
        assert main(["cam", str(path), str(photo), "--class", "1", "--baseline", "black", "--out", str(png),
                     *args]) == 0
        out = capsys.readouterr().out
        assert f"target: class 1 {where}" in out and "score: region's mean probability" in out
        assert "layer: up1" in out  # the layer before the softmax head, whose output leads to no logit
    assert main(["cam", str(path), str(blank), "--class", "1", "--region", "predicted", "--out", str(png)]) == 2
    assert "predicts no pixel as class 1" in capsys.readouterr().err
    assert main(["cam", str(path), str(photo), "--class", "1", "--region", "40,40,50,50", "--out", str(png)]) == 2
    assert "The region holds no pixels" in capsys.readouterr().err

    in_path, _ = two_inputs
    assert main(["predict", str(in_path), str(photo), "--held", "meta=1,2,3,4"]) == 0
    out, err = capsys.readouterr()
    assert "input explained: image 32×32×1; held: meta = [1, 2, 3, 4] (--held)" in err
    assert out.startswith("1. class ")
    assert main(["predict", str(in_path), str(photo), "--held", "meta=1,2"]) == 2
    assert "Input 'meta' takes 4 finite number(s)" in capsys.readouterr().err


def test_the_cli_predict_on_a_two_head_file_runs_as_a_user_would(two_heads, tmp_path):
    import subprocess
    import sys

    _, path, _ = two_heads
    photo = tmp_path / "square.png"
    square_at(20, 2).save(photo)
    result = subprocess.run([sys.executable, "-m", "convvis_core", "predict", str(path), str(photo)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert [line.split()[0] for line in result.stdout.strip().splitlines()] == ["present", "column"]


def test_the_cli_refuses_a_3d_output_in_one_line_and_still_explains_its_filters(tmp_path, capsys):
    from convvis_core.cli import main

    image = keras.Input((SIZE, SIZE, 1), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(image)
    sequence = keras.layers.Conv1D(5, 3, padding="same", name="sequence")(keras.layers.Reshape((SIZE, SIZE * 4))(x))
    path, photo, png = tmp_path / "seq.keras", tmp_path / "square.png", tmp_path / "cam.png"
    keras.Model(image, sequence).save(path)
    square_at(4, 4).save(photo)
    for command in (["predict"], ["cam", "--class", "0", "--out", str(png)], ["cam", "--unit", "0", "--out", str(png)]):
        assert main([command[0], str(path), str(photo), *command[1:]]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("error: seq.keras's output 'sequence' has shape (32, 5), which is neither"), err
    assert main(["cam", str(path), str(photo), "--out", str(png)]) == 0  # the default: a filter of its last layer
    assert "target: filter " in capsys.readouterr().out
