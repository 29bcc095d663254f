"""What to maximize, one value per image: each image in a batch has its own target filter."""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

Objective = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]  # (outputs, filter per image) -> (N,)


def _pick_channel(maps: tf.Tensor, filters: tf.Tensor) -> tf.Tensor:
    """(N, H, W, C) and (N,) -> (N, H, W): image i's own channel filters[i]."""
    return tf.gather(maps, filters, axis=3, batch_dims=1)


def channel(border: int = 0) -> Objective:
    def value(maps: tf.Tensor, filters: tf.Tensor) -> tf.Tensor:
        picked = _pick_channel(maps, filters)
        if border:
            inner = picked[:, border:-border, border:-border]
            height, width = picked.shape[1:3]
            if height is None or width is None:
                picked = tf.cond(tf.size(inner) > 0, lambda: inner, lambda: picked)
            elif min(height, width) > 2 * border:  # tiny maps keep their border
                picked = inner
        return tf.reduce_mean(picked, axis=[1, 2])
    return value


def neuron() -> Objective:
    def value(maps: tf.Tensor, filters: tf.Tensor) -> tf.Tensor:
        shape = tf.shape(maps)
        centre = maps[:, shape[1] // 2, shape[2] // 2, :]
        return tf.gather(centre, filters, axis=1, batch_dims=1)
    return value


def class_logit() -> Objective:
    def value(logits: tf.Tensor, filters: tf.Tensor) -> tf.Tensor:
        return tf.gather(logits, filters, axis=1, batch_dims=1)
    return value


def deepdream() -> Objective:
    def value(maps: tf.Tensor, filters: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(tf.square(maps), axis=[1, 2, 3])
    return value


def make_objective(kind: str, border: int) -> Objective:
    return {"channel": lambda: channel(border), "neuron": neuron, "class_logit": class_logit,
            "deepdream": deepdream}[kind]()
