"""Pre-softmax class scores: gradients of a softmax output saturate, so targets use logits."""

from __future__ import annotations

import weakref

import keras

from convvis_core.errors import ConvVisError
from convvis_core.layers import GRAPH_LOCK, activation_name, linear_output

_CACHE: "weakref.WeakKeyDictionary[keras.Model, keras.Model]" = weakref.WeakKeyDictionary()


def logits_model(model: keras.Model) -> keras.Model:
    """A model from the same input to the class logits.

    Handles the three shapes a classifier head takes: a separate softmax layer (Keras MobileNet,
    our converted models), a Dense layer with ``activation="softmax"`` (VGG, ResNet), or an output
    that is already linear.
    """
    with GRAPH_LOCK:  # sessions asking at once share one model (and one copy of the head's weights)
        if model not in _CACHE:
            _CACHE[model] = _build_logits_model(model)
        return _CACHE[model]


def _build_logits_model(model: keras.Model) -> keras.Model:
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise ConvVisError(f"Model '{model.name}' has no single vector of class scores, so it has no class logits.")
    head = model.layers[-1]
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    squashed = activation_name(head) in ("softmax", "sigmoid")
    return keras.Model(inputs, linear_output(head), name=f"{model.name}_logits") if squashed else model
