"""Ascent steps on the image parameters, written out so the whole step is one traced function.

Each optimizer is one class registered by its name when defined (as the objectives are): a new one
is one class here.
"""

from __future__ import annotations

from typing import ClassVar

import tensorflow as tf

OPTIMIZERS: dict[str, type["Optimizer"]] = {}  # name -> class, in definition order


class Optimizer:
    """One kind of ascent step; subclasses set ``name`` and ``description`` and implement :meth:`step`."""

    name: ClassVar[str]
    description: ClassVar[str]

    def __init_subclass__(cls) -> None:
        OPTIMIZERS[cls.name] = cls

    def __init__(self, learning_rate: float, shape: tuple[int, ...]):
        self.learning_rate = learning_rate

    def reset(self) -> None:
        """Forget what earlier runs accumulated (the variables are reused for the next batch)."""

    def step(self, params: tf.Variable, grads: tf.Tensor, iteration: tf.Tensor) -> None:
        raise NotImplementedError


class L2NormalizedAscent(Optimizer):
    """The keras.io example's step: ``params += lr * g / ||g||``, the norm taken per image."""

    name = "l2_normalized"
    description = "gradient ascent with the L2-normalized gradient (each step the same length)"

    def step(self, params: tf.Variable, grads: tf.Tensor, iteration: tf.Tensor) -> None:
        axes = list(range(1, len(grads.shape)))
        norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=axes, keepdims=True))
        params.assign_add(self.learning_rate * grads / (norm + 1e-12))


class Adam(Optimizer):
    """Adam (Kingma & Ba), ascending; its moments live in variables shaped like the parameters."""

    name = "adam"
    description = "Adam (Lucid)"

    def __init__(self, learning_rate: float, shape: tuple[int, ...], beta1: float = 0.9, beta2: float = 0.999):
        super().__init__(learning_rate, shape)
        self.beta1, self.beta2 = beta1, beta2
        self.m = tf.Variable(tf.zeros(shape), trainable=False)
        self.v = tf.Variable(tf.zeros(shape), trainable=False)

    def reset(self) -> None:
        self.m.assign(tf.zeros_like(self.m))
        self.v.assign(tf.zeros_like(self.v))

    def step(self, params: tf.Variable, grads: tf.Tensor, iteration: tf.Tensor) -> None:
        t = tf.cast(iteration + 1, tf.float32)
        self.m.assign(self.beta1 * self.m + (1 - self.beta1) * grads)
        self.v.assign(self.beta2 * self.v + (1 - self.beta2) * tf.square(grads))
        m_hat = self.m / (1 - self.beta1 ** t)
        v_hat = self.v / (1 - self.beta2 ** t)
        params.assign_add(self.learning_rate * m_hat / (tf.sqrt(v_hat) + 1e-8))


def make_optimizer(kind: str, learning_rate: float, shape: tuple[int, ...]) -> Optimizer:
    return OPTIMIZERS[kind](learning_rate, shape)
