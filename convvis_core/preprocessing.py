"""Pixel preprocessing modes: how 0..255 RGB pixels become what a model was trained on.

Modes are plain strings so that model descriptions stay hashable and serializable.
"""

from __future__ import annotations

import keras
import numpy as np

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


def deprocess(inputs: np.ndarray, mode: str) -> np.ndarray:
    """Inverse of :func:`preprocess`: model-space values back to float 0..255 pixels."""
    x = np.asarray(inputs, dtype=np.float32)
    if mode == "tf":
        return (x + 1.0) * 127.5
    if mode == "caffe":
        return (x + _CAFFE_MEAN_BGR)[..., ::-1]
    if mode == "torch":
        return (x * _TORCH_STD + _TORCH_MEAN) * 255.0
    if mode == "efficientnet_lite":
        return (x * 0.502 + 0.498) * 255.0
    if mode == "unit":
        return x * 255.0
    if mode == "raw":
        return x
    raise ValueError(f"Unknown preprocessing mode {mode!r}; known: {', '.join(MODES)}")
