"""Penalties a recipe subtracts from the objective (``recipe.TotalVariation`` …), one value per image
(N, H, W, C) of 0..1 pixels."""

from __future__ import annotations

import tensorflow as tf


def total_variation(images: tf.Tensor) -> tf.Tensor:
    """Mean absolute difference between neighbouring pixels: penalizes high-frequency noise."""
    dy = tf.reduce_mean(tf.abs(images[:, 1:] - images[:, :-1]), axis=[1, 2, 3])
    dx = tf.reduce_mean(tf.abs(images[:, :, 1:] - images[:, :, :-1]), axis=[1, 2, 3])
    return dx + dy


def l1(images: tf.Tensor) -> tf.Tensor:
    """Mean absolute distance from grey: favours pictures that leave most pixels grey."""
    return tf.reduce_mean(tf.abs(images - 0.5), axis=[1, 2, 3])


def l2(images: tf.Tensor) -> tf.Tensor:
    """Mean squared distance from grey: keeps pixels from running to extremes."""
    return tf.reduce_mean(tf.square(images - 0.5), axis=[1, 2, 3])


def blur(images: tf.Tensor) -> tf.Tensor:
    """Mean squared difference from a 3×3 box blur of itself: favours smooth images."""
    blurred = tf.nn.avg_pool2d(tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC"), 3, 1, "VALID")
    return tf.reduce_mean(tf.square(images - tf.stop_gradient(blurred)), axis=[1, 2, 3])
