"""MobileNetV1 (ImageNet) rebuilt from the TF1 frozen graph that ships in the ``nudity`` package.

The graph still holds the complete TF-slim MobileNetV1 with its 1001-way ImageNet logits next to a
re-trained 2-class head, which we ignore. Each weight is a ``Const`` node; they map 1:1 onto
``keras.applications.MobileNet(weights=None)``. TF-slim's background class 0 is dropped.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from convvis_core.models.base import name_unnamed_layers
from convvis_core.models.package_files import package_file

_SCOPE = "MobilenetV1"
_BN_PARTS = ("gamma", "beta", "moving_mean", "moving_variance")


def graph_constants() -> dict[str, np.ndarray]:
    """Every constant tensor of the frozen graph under the MobilenetV1 scope, by node name."""
    path = package_file("nudity", "files/retrained_graph.pb", pip_name="nudity")
    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(path.read_bytes())
    return {
        node.name: tf.make_ndarray(node.attr["value"].tensor)
        for node in graph.node
        if node.op == "Const" and node.name.startswith(_SCOPE + "/")
    }


def _keras_to_graph_names() -> dict[str, list[str]]:
    """Keras layer name -> the graph constants that make its weights, in Keras weight order."""
    def batch_norm(scope: str) -> list[str]:
        return [f"{_SCOPE}/{scope}/BatchNorm/{part}" for part in _BN_PARTS]

    mapping = {"conv1": [f"{_SCOPE}/Conv2d_0/weights"], "conv1_bn": batch_norm("Conv2d_0")}
    for i in range(1, 14):
        mapping[f"conv_dw_{i}"] = [f"{_SCOPE}/Conv2d_{i}_depthwise/depthwise_weights"]
        mapping[f"conv_dw_{i}_bn"] = batch_norm(f"Conv2d_{i}_depthwise")
        mapping[f"conv_pw_{i}"] = [f"{_SCOPE}/Conv2d_{i}_pointwise/weights"]
        mapping[f"conv_pw_{i}_bn"] = batch_norm(f"Conv2d_{i}_pointwise")
    mapping["conv_preds"] = [
        f"{_SCOPE}/Logits/Conv2d_1c_1x1/weights",
        f"{_SCOPE}/Logits/Conv2d_1c_1x1/biases",
    ]
    return mapping


def build_mobilenet_v1() -> keras.Model:
    """Keras MobileNet 1.0/224 carrying the converted ImageNet weights (1000 classes)."""
    constants = graph_constants()
    model = name_unnamed_layers(
        keras.applications.MobileNet(weights=None, alpha=1.0, input_shape=(224, 224, 3), classes=1000),
        {keras.layers.InputLayer: "input_layer", keras.layers.GlobalAveragePooling2D: "global_average_pooling2d"},
    )
    for layer_name, names in _keras_to_graph_names().items():
        arrays = [constants[name] for name in names]
        if layer_name == "conv_preds":  # drop TF-slim's "background" class 0
            arrays = [arrays[0][..., 1:], arrays[1][1:]]
        model.get_layer(layer_name).set_weights(arrays)
    return model
