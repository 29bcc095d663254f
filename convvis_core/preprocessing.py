"""Pixel preprocessing modes: how 0..255 RGB pixels become what a model was trained on.

Modes are plain strings so that model descriptions stay hashable and serializable.
"""

from __future__ import annotations

import re

import keras
import numpy as np

from convvis_core.graph import flat_graph

# Caffe-style per-channel means, in BGR order (VGG, HED).
_CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
_TORCH_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_TORCH_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

MODES = {
    "tf": "x / 127.5 - 1 (Inception, MobileNet, ResNetV2, Xception)",
    "caffe": "RGB to BGR, minus ImageNet channel means (VGG, HED)",
    "torch": "x / 255, standardized by ImageNet mean and std",
    "efficientnet_lite": "(x / 255 - 0.498) / 0.502",
    "unit": "x / 255 (MNIST-style models)",
    "raw": "0..255 as is (models that rescale inside, e.g. Keras EfficientNet)",
}


def preprocess(pixels: np.ndarray, mode: str) -> np.ndarray:
    """Map float 0..255 pixels (..., H, W, C) to a model's input range.

    Works on numpy arrays and on backend tensors alike (feature visualization differentiates
    through it inside a traced step).
    """
    x = pixels if keras.ops.is_tensor(pixels) else np.asarray(pixels, dtype=np.float32)
    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "caffe":
        return x[..., ::-1] - _CAFFE_MEAN_BGR
    if mode == "torch":
        return (x / 255.0 - _TORCH_MEAN) / _TORCH_STD
    if mode == "efficientnet_lite":
        return (x / 255.0 - 0.498) / 0.502
    if mode == "unit":
        return x / 255.0
    if mode == "raw":
        return x
    raise ValueError(f"Unknown preprocessing mode {mode!r}; known: {', '.join(MODES)}")


# keras.applications bases by the name Keras gives them, and the pixels each family was trained on.
_FAMILIES = (
    (r"(resnet\d+v2|mobilenetv2|mobilenet_\d|inception_v3|inception_resnet_v2|xception|nasnet)", "tf"),
    (r"(vgg1[69]|resnet\d+)", "caffe"),
    (r"densenet", "torch"),
    (r"efficientnet_lite", "efficientnet_lite"),
    (r"(efficientnet|convnext|mobilenetv3|regnet)", "raw"),
)


def infer_preprocessing(model: keras.Model, default: str = "unit") -> tuple[str, str]:
    """(mode, why) for a model that came without a description of its pixels.

    A model whose first layer rescales (``Rescaling`` or ``Normalization``) takes raw 0..255 pixels;
    a model that is, or nests, a recognized keras.applications base takes that family's pixels;
    anything else gets ``default``.
    """
    graph = flat_graph(model)
    first = next(iter(graph.layers.items()), None)
    if first and isinstance(first[1], (keras.layers.Rescaling, keras.layers.Normalization)):
        return "raw", f"its first layer '{first[0]}' ({type(first[1]).__name__}) scales the pixels itself"
    nested = (part for path in graph.layers for part in path.split("/")[:-1])
    for name in dict.fromkeys([model.name, *nested]):
        for pattern, mode in _FAMILIES:
            if re.match(pattern, name.lower()):
                return mode, f"'{name}' is a keras.applications base trained on these pixels"
    return default, "nothing in the model says how its pixels were scaled: ConvVis' default"
