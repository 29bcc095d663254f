"""Ascent steps on the image parameters, written out so the whole step is one traced function."""

from __future__ import annotations

import tensorflow as tf


class L2NormalizedAscent:
    """The seeds' step: ``params += lr * g / ||g||``, the norm taken per image."""

    def __init__(self, learning_rate: float, shape: tuple[int, ...]):
        self.learning_rate = learning_rate

    def reset(self) -> None:
        pass

    def step(self, params: tf.Variable, grads: tf.Tensor, iteration: tf.Tensor) -> None:
        axes = list(range(1, len(grads.shape)))
        norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=axes, keepdims=True))
        params.assign_add(self.learning_rate * grads / (norm + 1e-12))


class Adam:
    """Adam (Kingma & Ba), ascending; its moments live in variables shaped like the parameters."""

    def __init__(self, learning_rate: float, shape: tuple[int, ...], beta1: float = 0.9, beta2: float = 0.999):
        self.learning_rate, self.beta1, self.beta2 = learning_rate, beta1, beta2
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


def make_optimizer(kind: str, learning_rate: float, shape: tuple[int, ...]) -> L2NormalizedAscent | Adam:
    return (Adam if kind == "adam" else L2NormalizedAscent)(learning_rate, shape)
