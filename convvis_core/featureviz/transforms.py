"""Random transforms applied before each step, so the picture must work at many offsets, scales and
angles; this is what removes the high-frequency "adversarial" noise (Lucid's transform.py).

Randomness is stateless, drawn from ``(seed, step)``: runs are reproducible.
"""

from __future__ import annotations

import math
from typing import Callable

import tensorflow as tf

from convvis_core.featureviz.settings import Settings

Transform = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]  # (images, seed pair) -> images


def pad(pixels: int) -> Transform:
    def apply(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        return tf.pad(images, [[0, 0], [pixels, pixels], [pixels, pixels], [0, 0]], constant_values=0.5)
    return apply


def jitter(pixels: int) -> Transform:
    def apply(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        shape = tf.shape(images)
        offset = tf.random.stateless_uniform([2], seed, 0, pixels + 1, dtype=tf.int32)
        return tf.slice(images, [0, offset[0], offset[1], 0], [-1, shape[1] - pixels, shape[2] - pixels, -1])
    return apply


def random_scale(amount: float) -> Transform:
    def apply(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        factor = tf.random.stateless_uniform([], seed, 1.0 - amount, 1.0 + amount)
        size = tf.cast(tf.round(tf.cast(tf.shape(images)[1:3], tf.float32) * factor), tf.int32)
        return tf.image.resize(images, size, method="bilinear")
    return apply


def random_rotate(degrees: float) -> Transform:
    def apply(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        angle = tf.random.stateless_uniform([], seed, -degrees, degrees) * math.pi / 180.0
        shape = tf.shape(images)
        height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
        cos, sin = tf.cos(angle), tf.sin(angle)
        # Output (x, y) samples the input at the point rotated about the centre.
        x_offset = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2.0
        y_offset = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2.0
        matrix = tf.stack([cos, -sin, x_offset, sin, cos, y_offset, 0.0, 0.0])[None]
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=tf.tile(matrix, [shape[0], 1]), output_shape=shape[1:3],
            fill_value=0.5, interpolation="BILINEAR", fill_mode="REFLECT")
    return apply


def fused(pad: int, jitter: int, scale: float, degrees: float, final_jitter: int) -> Transform:
    """Lucid's pad → jitter → scale → rotate → jitter as one affine resampling onto a canvas of fixed
    size (the image plus ``2 * pad - jitter - final_jitter``, grey outside the image). The same
    distribution of offsets, scales and angles, but one interpolation instead of two, and every step
    feeds the model the same shape: the chained random scale changes the input size at each step, and
    a new shape costs the CPU kernels (oneDNN) far more than the step itself."""
    def apply(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        draws = [tf.random.experimental.stateless_fold_in(seed, index) for index in range(4)]
        first = tf.random.stateless_uniform([2], draws[0], 0, jitter + 1, dtype=tf.int32)
        last = tf.random.stateless_uniform([2], draws[1], 0, final_jitter + 1, dtype=tf.int32)
        factor = tf.random.stateless_uniform([], draws[2], 1.0 - scale, 1.0 + scale)
        angle = tf.random.stateless_uniform([], draws[3], -degrees, degrees) * math.pi / 180.0
        size = images.shape[1] if images.shape[1] is not None else tf.shape(images)[1]
        out = size + 2 * pad - jitter - final_jitter
        centre_in = (tf.cast(size, tf.float32) - 1.0) / 2.0
        centre_out = (tf.cast(out, tf.float32) - 1.0) / 2.0
        # Input point = R(angle) / factor · (output point - centre_out + last shift) + centre_in + first shift.
        shift_out = tf.cast(last, tf.float32) - final_jitter / 2.0 - centre_out
        shift_in = tf.cast(first, tf.float32) - jitter / 2.0 + centre_in
        cos, sin = tf.cos(angle) / factor, tf.sin(angle) / factor
        x_offset = cos * shift_out[1] - sin * shift_out[0] + shift_in[1]
        y_offset = sin * shift_out[1] + cos * shift_out[0] + shift_in[0]
        matrix = tf.stack([cos, -sin, x_offset, sin, cos, y_offset, 0.0, 0.0])[None]
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=tf.tile(matrix, [tf.shape(images)[0], 1]), output_shape=tf.stack([out, out]),
            fill_value=0.5, interpolation="BILINEAR", fill_mode="CONSTANT")
    return apply


def build_transforms(settings: Settings) -> list[Transform]:
    """Lucid's order: pad → jitter → scale → rotate → jitter; zero settings are left out."""
    if settings.fused_transforms:
        amounts = (settings.pad, settings.jitter, settings.scale, settings.rotate, settings.final_jitter)
        return [fused(*amounts)] if any(amounts) else []
    chain: list[Transform] = []
    if settings.pad:
        chain.append(pad(settings.pad))
    if settings.jitter:
        chain.append(jitter(settings.jitter))
    if settings.scale:
        chain.append(random_scale(settings.scale))
    if settings.rotate:
        chain.append(random_rotate(settings.rotate))
    if settings.final_jitter:
        chain.append(jitter(settings.final_jitter))
    return chain


def apply_transforms(chain: list[Transform], images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    for index, transform in enumerate(chain):
        images = transform(images, tf.random.experimental.stateless_fold_in(seed, index))
    return images
