"""Keeping every CPU core busy inside one traced function.

TensorFlow runs independent branches of a graph side by side. One batch through a CNN leaves cores
waiting between its many small ops; the same batch cut into one slice per core, each slice its own
branch, fills those gaps (2 cores: about 25% faster per image for gradient ascent, 15% for a
forward pass). Results are the same per image: the slices are only concatenated.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf


def cores() -> int:
    """CPU cores this process may use (its affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def in_slices(model: keras.Model, inputs: tf.Tensor, slices: int | None = None) -> list[tf.Tensor]:
    """The model's outputs (always a list) for a batch with a static size, computed as ``slices``
    (default: one per core) independent parts of the graph."""
    def listed(outputs) -> list[tf.Tensor]:
        return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

    batch = inputs.shape[0]
    slices = min(cores() if slices is None else slices, batch or 1)
    if slices <= 1:
        return listed(model(inputs, training=False))
    sizes = [batch // slices + (part < batch % slices) for part in range(slices)]
    parts = [listed(model(part, training=False)) for part in tf.split(inputs, sizes)]
    return [tf.concat(pieces, axis=0) for pieces in zip(*parts)]
