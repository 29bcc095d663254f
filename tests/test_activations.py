"""Feature maps equal direct sub-models, statistics and tiling are exact on hand-made maps, and the
CLI shows them (the page: test_activations_page.py)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from convvis_core.activations import channel_stats, default_spread, feature_maps, normalize, progression
from convvis_core.batches import model_input
from convvis_core.errors import LayerError
from convvis_core.models.base import LoadedModel, ModelInfo
from convvis_core.presentation.channel_grids import channel_grid
from convvis_core.presentation.overlays import overlay
from convvis_core.samples import load_sample

ROOT = Path(__file__).resolve().parents[1]


def direct_maps(model: keras.Model, layer: keras.layers.Layer, x: np.ndarray) -> np.ndarray:
    return np.asarray(keras.Model(model.inputs[0], layer.output)(x))[0]


def test_maps_equal_direct_sub_models_in_one_pass(mobilenet):
    image = load_sample("chelsea")
    paths = ["conv1_relu", "conv_pw_13_relu"]
    maps = feature_maps(mobilenet, image, paths)
    assert list(maps) == paths and maps["conv_pw_13_relu"].shape == (7, 7, 1024)
    x = model_input(image, mobilenet.info)
    for path in paths:
        expected = direct_maps(mobilenet.model, mobilenet.model.get_layer(path), x)
        np.testing.assert_allclose(maps[path], expected, rtol=1e-5, atol=1e-5)


def test_maps_inside_a_nested_base_model(mobilenet):
    base = keras.Model(mobilenet.model.inputs[0], mobilenet.model.get_layer("conv_pw_13_relu").output,
                       name="mobilenet_base")
    inputs = keras.Input((224, 224, 3))
    features = base(keras.layers.Rescaling(1.0, name="identity_scale")(inputs))
    outputs = keras.layers.Dense(5, activation="softmax")(keras.layers.GlobalAveragePooling2D()(features))
    transfer = LoadedModel(keras.Model(inputs, outputs, name="transfer"), mobilenet.info)
    image = load_sample("coffee")
    maps = feature_maps(transfer, image, ["mobilenet_base/conv_pw_5_relu"])["mobilenet_base/conv_pw_5_relu"]
    expected = direct_maps(mobilenet.model, mobilenet.model.get_layer("conv_pw_5_relu"),
                           model_input(image, mobilenet.info))
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-5)
    assert default_spread(transfer.model)[-1].path == "mobilenet_base/conv_pw_13_relu"


def hand_made() -> tuple[LoadedModel, Image.Image]:
    """A 1×1 convolution whose channels are: all zero, the constant 2.5, and the input itself."""
    inputs = keras.Input((4, 4, 1))
    conv = keras.layers.Conv2D(3, 1, name="known")
    model = keras.Model(inputs, conv(inputs), name="hand_made")
    conv.set_weights([np.array([0.0, 0.0, 1.0], np.float32).reshape(1, 1, 1, 3),
                      np.array([0.0, 2.5, 0.0], np.float32)])
    info = ModelInfo("hand_made", "hand made", "known weights", (4, 4), 1, "raw")
    return LoadedModel(model, info), Image.fromarray((np.arange(16, dtype=np.uint8) * 10).reshape(4, 4))


def test_statistics_are_exact_on_known_weights():
    loaded, image = hand_made()
    maps = feature_maps(loaded, image, ["known"])["known"]
    np.testing.assert_array_equal(maps[..., 2], np.asarray(image, np.float32))
    stats = channel_stats(maps)
    np.testing.assert_array_equal(stats.mean, [0.0, 2.5, 75.0])
    np.testing.assert_array_equal(stats.max, [0.0, 2.5, 150.0])
    np.testing.assert_array_equal(stats.zero_fraction, [1.0, 0.0, 1 / 16])
    np.testing.assert_array_equal(stats.dead, [True, False, False])
    np.testing.assert_array_equal(stats.constant, [False, True, False])
    assert [step.channel for step in progression({"known": maps}, "strongest")] == [2]


def test_standardization_follows_the_formula_and_minmax_spans_the_layer():
    rng = np.random.default_rng(0)
    maps = rng.normal(3.0, 2.0, size=(5, 6, 4)).astype(np.float32)
    maps[..., 1] = 0.0  # dead: stays black
    maps[..., 2] = 7.0  # constant: mid grey
    shown = normalize(maps, "standardize")
    for channel in (0, 3):
        values = maps[..., channel]
        expected = np.clip((values - values.mean()) / values.std() * 64 + 128, 0, 255)
        np.testing.assert_allclose(shown[..., channel], expected, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(shown[..., 1], 0.0)
    np.testing.assert_array_equal(shown[..., 2], 128.0)
    spread = normalize(maps, "minmax")
    assert spread.min() == 0.0 and spread.max() == pytest.approx(255.0)
    np.testing.assert_array_equal(normalize(maps, "raw"), maps)


def test_tiling_puts_channel_k_in_its_cell_with_one_pixel_separators():
    height, width, count = 3, 2, 7
    maps = np.broadcast_to(np.arange(count, dtype=np.float32), (height, width, count)).copy()
    maps[..., 5] = -1.0  # lowest mean, yet before the dead channel 0 once sorted
    grid = channel_grid(maps, "raw")
    assert grid.columns == 3 and grid.rows == 3
    assert grid.image.shape == (3 * (height + 1) - 1, 3 * (width + 1) - 1)
    for channel in range(count):
        row, column = grid.cells(channel)
        top, left = row * (height + 1), column * (width + 1)
        assert (row, column) == divmod(channel, 3)
        np.testing.assert_array_equal(grid.values[top:top + height, left:left + width], maps[..., channel])
        np.testing.assert_array_equal(grid.channel[top:top + height, left:left + width], channel)
    assert np.isnan(grid.image[height, :]).all() and np.isnan(grid.image[:, width]).all()
    assert (grid.channel[-height:, -width:] == -1).all()  # the two empty last cells
    ordered = channel_grid(maps, "raw", sort=True)
    assert list(ordered.order) == [6, 4, 3, 2, 1, 5, 0]
    assert ordered.cells(6) == (0, 0) and ordered.cells(0) == (2, 0)
    small = channel_grid(np.zeros((100, 100, 4), np.float32), max_side=60)
    assert small.stride == 4 and max(small.image.shape) <= 60


def test_default_spread_and_models_without_maps(mobilenet):
    spread = [layer.path for layer in default_spread(mobilenet.model)]
    assert len(spread) == 6 and spread[0] == "conv1_relu" and spread[-1] == "conv_pw_13_relu"
    vector = keras.Input((8, 8, 3))
    flat = keras.Model(vector, keras.layers.Dense(2)(keras.layers.Flatten()(vector)))
    with pytest.raises(LayerError, match="no layer with a spatial"):
        default_spread(flat)


def test_overlay_has_the_image_size_and_blends():
    image = Image.new("RGB", (40, 30), (255, 0, 0))
    blended = np.asarray(overlay(image, np.eye(5, dtype=np.float32), alpha=0.0))
    assert blended.shape == (30, 40, 3) and (blended == [255, 0, 0]).all()


@pytest.mark.parametrize("alpha", [0.3, 0.5, 1.0])
def test_overlay_is_the_colormapped_min_max_map_blended_over_the_image(alpha):
    from matplotlib import colormaps

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    channel_map = rng.normal(size=(6, 8)).astype(np.float32)
    upsampled = np.asarray(Image.fromarray(channel_map).resize(image.size, Image.BILINEAR), np.float64)
    scaled = (upsampled - upsampled.min()) / (upsampled.max() - upsampled.min())
    heat = colormaps["jet"](np.round(scaled * 255) / 255)[..., :3] * 255  # 256 levels, as a lookup table has
    expected = np.asarray(image, np.float64) * (1 - alpha) + heat * alpha
    drawn = np.asarray(overlay(image, channel_map, alpha, "jet")).astype(np.float64)
    assert np.abs(drawn - expected).max() <= 1.5  # rounding of the table and of the blend


def test_cli_writes_the_grid_and_prints_the_stats(mobilenet, tmp_path):
    out = tmp_path / "g.png"
    result = subprocess.run([sys.executable, "-m", "convvis_core", "activations", "mobilenet", "chelsea",
                             "--layer", "conv_pw_3_relu", "--out", str(out)],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout and "128 channels" in result.stdout
    with Image.open(io.BytesIO(out.read_bytes())) as grid:  # 56×56×128: 12 columns, 11 rows, 1-px gaps
        assert grid.size == (12 * 57 - 1, 11 * 57 - 1)
