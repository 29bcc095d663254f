"""Guided Backpropagation (Springenberg et al. 2015): the input gradient with every ReLU's backward
pass also dropping negative incoming gradients, so only what positively reaches the target flows back:

    R_in = [input > 0] · [R_out > 0] · R_out   at each ReLU.

The model is not touched: its graph is run again (:func:`convvis_core.keras_internals.run_through_graph`,
the same layers and weights) with each ReLU's output passed through an identity whose gradient keeps
only the positive part; the ReLU's own gradient supplies [input > 0] (and, for ReLU6, [input < 6]).
That covers ReLU layers (``keras.layers.ReLU``, MobileNet's ``max_value=6`` included;
``Activation("relu")``) and ReLUs fused into a layer (``Conv2D(activation="relu")``, ``Dense``).
Leaky ReLUs and other activations keep their plain gradient. A model without ReLUs gives the vanilla
gradient. The map is read as the vanilla gradient's is: the magnitude, the largest over colours.
Adebayo et al. (2018) found these maps barely change when the model's weights are randomized: they
show edges as much as the model.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from convvis_core.cam.base import Probe, Scene, as_float32
from convvis_core.cam.saliency import InputGradientMethod
from convvis_core.graph import activation_name
from convvis_core.keras_internals import run_through_graph, takes_training


@tf.custom_gradient
def positive_gradients_only(tensor: tf.Tensor) -> tuple[tf.Tensor, Callable]:
    """The tensor itself; backwards, only the positive part of the incoming gradient passes."""
    return tf.identity(tensor), tf.nn.relu


def is_relu(layer: Any) -> bool:
    """Whether the layer ends in a ReLU (a ReLU layer without a negative slope, ``Activation("relu")``, or a
    fused ``activation="relu"``/``"relu6"``)."""
    if isinstance(layer, keras.layers.LeakyReLU):
        return False
    if isinstance(layer, keras.layers.ReLU):
        return not layer.negative_slope
    return activation_name(layer) in ("relu", "relu6")


@tf.autograph.experimental.do_not_convert
def guided(model: keras.Model, inputs: tf.Tensor) -> Any:
    """``model``'s output on ``inputs`` (inference mode), every ReLU's backward pass guided (one output:
    a tensor, as calling the model gives it)."""
    def operation_fn(operation: Any) -> Callable:
        def call(*args, **kwargs):
            if takes_training(operation):
                kwargs["training"] = False
            outputs = operation(*args, **kwargs)
            return positive_gradients_only(outputs) if is_relu(operation) else outputs
        return call

    outputs = tf.nest.flatten(run_through_graph(model, inputs, operation_fn))
    return outputs[0] if len(outputs) == 1 else outputs


def _guided_gradients(probe: Probe, pixels: tf.Tensor, index: tf.Tensor, extra: tf.Tensor) -> tf.Tensor:
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(pixels)
        outputs = guided(probe.target_model, probe.preprocess(pixels))
        value = tf.reduce_sum(probe.kind.value(as_float32(outputs), index, extra))
    return tape.gradient(value, pixels)


def guided_gradients(scenes: Sequence[Scene]) -> np.ndarray:
    """Each scene's guided gradient with respect to its pixels, (N, H, W, C), from one traced pass."""
    probe = scenes[0].probe
    return probe.call(_guided_gradients, np.concatenate([scene.pixels for scene in scenes]),
                      [scene.target for scene in scenes]).numpy()


class GuidedBackprop(InputGradientMethod):
    name = "guided_backprop"
    title = "Guided Backpropagation"

    def gradients(self, scenes: Sequence[Scene]) -> np.ndarray:
        return guided_gradients(scenes)
