"""Every use of Keras' private API, in one place.

ConvVis reads and re-runs a functional model's graph, which Keras 3 has no public API for. What it
relies on is here, one small function per behaviour, each docstring naming the private attribute it
reads; ``tests/test_keras_internals.py`` checks each behaviour directly on tiny models, so a Keras
upgrade that changes one fails there, by name, before it shows up as a wrong heatmap elsewhere.
No other module touches a Keras attribute whose name starts with ``_``.

Checked against Keras 3.15 (TensorFlow backend).
"""

from __future__ import annotations

from typing import Any, Callable

import keras


def producing_layer(tensor: Any) -> Any:
    """The layer (operation) whose call computed the symbolic ``tensor``.

    Relies on ``KerasTensor._keras_history``: ``(operation, node_index, tensor_index)``, set on every
    output of a layer called on symbolic tensors."""
    return tensor._keras_history[0]


def output_position(tensor: Any) -> tuple[Any, int | None]:
    """The operation that computed the symbolic ``tensor`` and which of that call's outputs it is:
    None when the call has one output only.

    Relies on ``KerasTensor._keras_history`` (as :func:`producing_layer`) and on
    ``Operation._inbound_nodes``: one ``Node`` per call of the operation, indexed by ``node_index``,
    whose ``outputs`` are that call's flat outputs, ``tensor_index`` among them."""
    operation, node, index = tensor._keras_history
    return operation, (None if len(operation._inbound_nodes[node].outputs) == 1 else index)


def has_graph(model: keras.Model) -> bool:
    """Whether ``model`` is a functional model, whose graph :func:`run_through_graph` can re-run;
    False for a subclassed model, and for a Sequential one (walk its ``layers`` instead).

    Relies on functional models having the private method ``Functional._run_through_graph``."""
    return hasattr(model, "_run_through_graph")


def run_through_graph(model: keras.Model, inputs: Any, operation_fn: Callable[[Any], Callable[..., Any]]) -> Any:
    """``model``'s graph run on ``inputs`` (tensors, symbolic or not, one per model input: a list when
    it has several), each operation called through ``operation_fn(operation)`` instead of itself, in
    graph order, once per node; returns the outputs as the model's ``outputs`` are structured.
    ``operation_fn=lambda operation: operation`` re-runs the graph as it is (on new symbolic inputs:
    the same layers, so the same weights, in a new graph).

    Relies on ``Functional._run_through_graph(inputs, operation_fn)`` (``keras/src/ops/function.py``)."""
    return model._run_through_graph(inputs, operation_fn=operation_fn)


def takes_training(operation: Any) -> bool:
    """Whether ``operation`` may be called with ``training=``: every layer may (``Layer.__call__``
    takes it and hands it to ``call`` only when ``call`` accepts it, so Dropout and BatchNormalization
    see it, Dense does not), a bare op of a functional graph (``x + 1``: ``keras.src.ops`` ``Add``) may
    not. When running a graph by hand, ConvVis passes ``training=False`` to those that take it.

    Relies on ``Layer._call_context_args``: the context arguments a layer's call takes and passes on to
    the layers it calls, "training" among them; bare ops have no such attribute."""
    return "training" in getattr(operation, "_call_context_args", ())
