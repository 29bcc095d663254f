"""How the optimized image is represented: plain pixels, or Lucid's decorrelated Fourier spectrum.

Both map a batch of parameters to images of 0..1 pixels (N, H, W, C). Each filter's starting point
is drawn from ``(seed, filter)`` alone, so a picture does not depend on which batch computed it.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import tensorflow as tf

PARAMETERIZATIONS: dict[str, type["Parameterization"]] = {}  # name -> class, registered when defined


class Parameterization:
    """One way to represent the image; subclasses set ``name`` and ``description`` and are built by
    :func:`make_parameterization` from ``(size, channels, decorrelate)``."""

    name: ClassVar[str]
    description: ClassVar[str]

    def __init_subclass__(cls) -> None:
        PARAMETERIZATIONS[cls.name] = cls

# Lucid's square root of the ImageNet colour correlation matrix (rows: R, G, B).
_COLOR_CORRELATION_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
_COLOR_CORRELATION = _COLOR_CORRELATION_SQRT / np.max(np.linalg.norm(_COLOR_CORRELATION_SQRT, axis=0))


class PixelImage(Parameterization):
    """Plain pixels starting as faint noise around grey (keras.io example); unbounded while optimized."""

    name = "pixel"
    description = "plain pixels (as the keras.io example)"

    def __init__(self, size: int, channels: int, decorrelate: bool = False):
        self.size, self.channels = size, channels

    def initial(self, filters: list[int], seed: int) -> np.ndarray:
        noise = [np.random.default_rng([seed, f]).uniform(size=(self.size, self.size, self.channels)) for f in filters]
        return (0.5 + (np.stack(noise) - 0.5) * 0.125).astype(np.float32)

    def to_image(self, params: tf.Tensor) -> tf.Tensor:
        return params

    def to_display(self, images: np.ndarray) -> np.ndarray:
        """The keras.io deprocessing: standardize each image, scale to ±0.15 around grey, clip."""
        axes = tuple(range(1, images.ndim))
        centred = images - images.mean(axis=axes, keepdims=True)
        centred = centred / (centred.std(axis=axes, keepdims=True) + 1e-5) * 0.15 + 0.5
        return np.clip(centred * 255 + 0.5, 0, 255).astype(np.uint8)


class FourierImage(Parameterization):
    """Lucid's spectrum parameterization: 1/f-scaled frequencies, optional colour decorrelation, sigmoid."""

    name = "fourier"
    description = "Fourier spectrum with 1/f scaling (Lucid)"

    def __init__(self, size: int, channels: int, decorrelate: bool, decay_power: float = 1.0):
        self.size, self.channels = size, channels
        self.decorrelate = decorrelate and channels == 3
        fy = np.fft.fftfreq(size)[:, None]
        fx = np.fft.rfftfreq(size)[None, :]
        frequencies = np.sqrt(fx * fx + fy * fy)
        scale = 1.0 / np.maximum(frequencies, 1.0 / size) ** decay_power * size
        self.scale = tf.constant(scale[None, None].astype(np.float32))  # 1/f per frequency, (1, 1, H, W//2+1)

    def initial(self, filters: list[int], seed: int) -> np.ndarray:
        shape = (2, self.channels, self.size, self.size // 2 + 1)  # real and imaginary parts
        return np.stack([np.random.default_rng([seed, f]).normal(size=shape) * 0.01 for f in filters]).astype(np.float32)

    def to_image(self, params: tf.Tensor) -> tf.Tensor:
        spectrum = tf.complex(params[:, 0] * self.scale, params[:, 1] * self.scale)
        images = tf.signal.irfft2d(spectrum, fft_length=[self.size, self.size])  # (N, C, H, W)
        images = tf.transpose(images, [0, 2, 3, 1]) / 4.0
        if self.decorrelate:
            images = tf.einsum("nhwc,dc->nhwd", images, _COLOR_CORRELATION)
        return tf.sigmoid(images)

    def to_display(self, images: np.ndarray) -> np.ndarray:
        return np.clip(images * 255 + 0.5, 0, 255).astype(np.uint8)


def make_parameterization(kind: str, size: int, channels: int, decorrelate: bool) -> Parameterization:
    if kind not in PARAMETERIZATIONS:
        raise ValueError(f"Unknown parameterization {kind!r}; choose one of {', '.join(PARAMETERIZATIONS)}")
    return PARAMETERIZATIONS[kind](size, channels, decorrelate)
