"""Random square crops of images, each brought back to the model's input size: the pieces CRAFT finds
concepts in (a concept is a part of an image, so whole images would mix several)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def crop_side(height: int, width: int, fraction: float) -> int:
    """The side of a crop that is ``fraction`` of the image's shorter side (at least 2 pixels)."""
    return max(2, min(height, width, round(fraction * min(height, width))))


def random_boxes(count: int, images: int, height: int, width: int, side: int, seed: int = 0) -> np.ndarray:
    """``count`` crop boxes spread evenly over ``images`` images (image i % images), at seeded random
    places: (count, 3) ints, each (image, top, left) of a ``side`` × ``side`` square."""
    rng = np.random.default_rng(seed)
    return np.stack([np.arange(count) % images, rng.integers(0, height - side + 1, count),
                     rng.integers(0, width - side + 1, count)], axis=1).astype(np.int32)


def cut(pixels: np.ndarray, boxes: np.ndarray, side: int) -> np.ndarray:
    """The crops of ``pixels`` (n, H, W, C) uint8 at ``boxes``, each resized (bilinear) to H × W: uint8."""
    height, width = pixels.shape[1:3]
    pieces = np.stack([pixels[image, top:top + side, left:left + side] for image, top, left in boxes])
    if side == height == width:
        return pieces
    resized = tf.image.resize(tf.constant(pieces, tf.float32), (height, width), "bilinear").numpy()
    return np.clip(np.round(resized), 0, 255).astype(np.uint8)
