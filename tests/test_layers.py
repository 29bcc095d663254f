"""Spatial layers are listed, including inside nested models, and sub-models reach them."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from convvis_core.batches import model_input
from convvis_core.errors import LayerError
from convvis_core.graph import sub_model
from convvis_core.layers import default_layer, find_layer, spatial_layers
from convvis_core.model_summary import layer_table
from convvis_core.samples import load_sample


def test_mobilenet_lists_its_spatial_layers(mobilenet):
    layers = {layer.path: layer for layer in spatial_layers(mobilenet.model)}
    assert layers["conv_pw_13_relu"].shape_text == "7×7×1024"
    assert layers["conv_dw_1"].kind == "DepthwiseConv2D"
    assert "predictions" not in layers  # (None, 1000): not a map
    assert layers["global_average_pooling2d"].shape_text == "1×1×1024"  # Keras keeps 1×1 maps here
    assert default_layer(mobilenet.model).path == "conv_pw_13_relu"


def test_sub_model_equals_a_direct_sub_model(mobilenet):
    x = model_input(load_sample("chelsea"), mobilenet.info)
    ours = sub_model(mobilenet.model, ["conv_pw_3_relu", "conv_pw_13_relu"])(x)
    for path, value in zip(["conv_pw_3_relu", "conv_pw_13_relu"], ours):
        layer = mobilenet.model.get_layer(path)
        direct = keras.Model(mobilenet.model.inputs[0], layer.output)(x)
        np.testing.assert_allclose(np.asarray(value), np.asarray(direct), rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def transfer_model(mobilenet):
    """A typical transfer-learning model: the ImageNet MobileNet nested as a base model."""
    base = keras.Model(mobilenet.model.inputs[0], mobilenet.model.get_layer("conv_pw_13_relu").output,
                       name="mobilenet_base")
    inputs = keras.Input((224, 224, 3))
    x = keras.layers.Rescaling(1.0, name="identity_scale")(inputs)
    x = base(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5, activation="softmax", name="new_head")(x)
    return keras.Model(inputs, outputs, name="transfer")


def test_nested_layers_are_listed_with_paths_and_reachable(mobilenet, transfer_model):
    paths = [layer.path for layer in spatial_layers(transfer_model)]
    assert paths[0] == "identity_scale"
    assert "mobilenet_base/conv1" in paths and "mobilenet_base/conv_pw_13_relu" in paths
    assert default_layer(transfer_model).path == "mobilenet_base/conv_pw_13_relu"
    x = model_input(load_sample("coffee"), mobilenet.info)
    ours = sub_model(transfer_model, ["mobilenet_base/conv_pw_5_relu"])(x)
    direct = keras.Model(mobilenet.model.inputs[0], mobilenet.model.get_layer("conv_pw_5_relu").output)(x)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(direct), rtol=1e-5, atol=1e-5)
    table = {row["layer"]: row for row in layer_table(transfer_model)}
    assert table["mobilenet_base/conv_pw_5_relu"]["feature maps"]
    assert not table["new_head"]["feature maps"] and table["new_head"]["parameters"] == 1024 * 5 + 5


def test_two_levels_of_nesting_are_reached():
    rng = np.random.default_rng(0)
    inner_in = keras.Input((16, 16, 3))
    inner = keras.Model(inner_in, keras.layers.Conv2D(4, 3, name="deep_conv")(inner_in), name="inner")
    middle_in = keras.Input((16, 16, 3))
    middle = keras.Model(middle_in, keras.layers.ReLU(name="mid_relu")(inner(middle_in)), name="middle")
    outer_in = keras.Input((16, 16, 3))
    outer = keras.Model(outer_in, keras.layers.GlobalMaxPooling2D()(middle(keras.layers.Rescaling(2.0)(outer_in))))
    assert "middle/inner/deep_conv" in [layer.path for layer in spatial_layers(outer)]
    x = rng.normal(size=(2, 16, 16, 3)).astype("float32")
    ours = np.asarray(sub_model(outer, ["middle/inner/deep_conv"])(x))
    np.testing.assert_allclose(ours, np.asarray(inner(2.0 * x)), rtol=1e-5, atol=1e-5)


def test_unknown_and_non_spatial_layers_are_clear_errors(mobilenet):
    with pytest.raises(LayerError, match="no layer named 'conv_pw_99_relu'.*conv_pw"):
        find_layer(mobilenet.model, "conv_pw_99_relu")
    with pytest.raises(LayerError, match="no spatial"):
        find_layer(mobilenet.model, "predictions")
    dense_in = keras.Input((8,))
    dense_only = keras.Model(dense_in, keras.layers.Dense(3)(dense_in), name="mlp")
    with pytest.raises(LayerError, match="no layer with a spatial"):
        default_layer(dense_only)
