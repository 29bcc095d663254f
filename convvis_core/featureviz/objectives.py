"""What to maximize, one value per image: each image in a batch has its own target filter.

Each objective is one small class, registered by its name when it is defined: the render loop, the
settings and the Filters page read what they need from its class attributes (which output it reads,
whether it needs classes), so a new objective is one class here and no ``if`` anywhere else.
"""

from __future__ import annotations

from typing import ClassVar

import tensorflow as tf

OBJECTIVES: dict[str, type["ObjectiveSpec"]] = {}  # name -> class, in definition order


class ObjectiveSpec:
    """One kind of objective; subclasses set the class attributes and :meth:`value`."""

    name: ClassVar[str]
    description: ClassVar[str]
    reads_logits: ClassVar[bool] = False  # the class scores (True) or the layer's maps (False)
    per_filter: ClassVar[bool] = True  # False: one value for the whole layer (the filter is ignored)

    def __init_subclass__(cls) -> None:
        OBJECTIVES[cls.name] = cls

    def __init__(self, border: int = 0):
        self.border = border

    def value(self, outputs: tf.Tensor, filters: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def __call__(self, outputs: tf.Tensor, filters: tf.Tensor) -> tf.Tensor:
        return self.value(outputs, filters)


def _pick_channel(maps: tf.Tensor, filters: tf.Tensor) -> tf.Tensor:
    """(N, H, W, C) and (N,) -> (N, H, W): image i's own channel filters[i]."""
    return tf.gather(maps, filters, axis=3, batch_dims=1)


class Channel(ObjectiveSpec):
    name = "channel"
    description = "mean of one channel over the map (optionally excluding a border)"

    def value(self, maps: tf.Tensor, filters: tf.Tensor) -> tf.Tensor:
        picked = _pick_channel(maps, filters)
        border = self.border
        if border:
            inner = picked[:, border:-border, border:-border]
            height, width = picked.shape[1:3]
            if height is None or width is None:
                picked = tf.cond(tf.size(inner) > 0, lambda: inner, lambda: picked)
            elif min(height, width) > 2 * border:  # tiny maps keep their border
                picked = inner
        return tf.reduce_mean(picked, axis=[1, 2])


class Neuron(ObjectiveSpec):
    name = "neuron"
    description = "one channel at the centre of the map"

    def value(self, maps: tf.Tensor, filters: tf.Tensor) -> tf.Tensor:
        shape = tf.shape(maps)
        centre = maps[:, shape[1] // 2, shape[2] // 2, :]
        return tf.gather(centre, filters, axis=1, batch_dims=1)


class ClassLogit(ObjectiveSpec):
    name = "class_logit"
    description = "a class's pre-softmax score (classifiers only; the filter is the class index)"
    reads_logits = True

    def value(self, logits: tf.Tensor, filters: tf.Tensor) -> tf.Tensor:
        return tf.gather(logits, filters, axis=1, batch_dims=1)


class DeepDream(ObjectiveSpec):
    name = "deepdream"
    description = "the whole layer's mean squared activation (DeepDream; the filter is ignored)"
    per_filter = False

    def value(self, maps: tf.Tensor, filters: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(tf.square(maps), axis=[1, 2, 3])


def objective_spec(name: str) -> type[ObjectiveSpec]:
    if name not in OBJECTIVES:
        raise ValueError(f"Unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]
