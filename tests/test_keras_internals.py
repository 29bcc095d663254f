"""Each Keras behaviour that convvis_core.keras_internals relies on, checked directly on tiny models:
a Keras upgrade that changes one fails here, by name."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from convvis_core import keras_internals


class Split(keras.layers.Layer):
    """One call, two outputs."""

    def call(self, x):
        return x[..., :1], x[..., 1:]


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)


def tiny() -> tuple[keras.Model, dict[str, keras.layers.Layer]]:
    """input (3) → dense "a" (2) → split → (first, second) → concatenate → dense "out" (1)."""
    inputs = keras.Input((3,), name="x")
    a = keras.layers.Dense(2, name="a", kernel_initializer="ones")
    split = Split(name="split")
    join = keras.layers.Concatenate(name="join")
    out = keras.layers.Dense(1, name="out", kernel_initializer="ones")
    first, second = split(a(inputs))
    model = keras.Model(inputs, out(join([second, first])))
    return model, {"a": a, "split": split, "join": join, "out": out}


def test_producing_layer_is_the_layer_called() -> None:
    """KerasTensor._keras_history[0]: the layer whose call made the tensor."""
    model, layers = tiny()
    assert keras_internals.producing_layer(model.outputs[0]) is layers["out"]
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(4)
    assert keras_internals.producing_layer(dense(inputs)) is dense


def test_output_position_tells_which_output_of_the_call() -> None:
    """_keras_history's tensor index, and Operation._inbound_nodes[node].outputs: one output → None,
    several → the index among them; a second call of a shared layer is its second node."""
    inputs = keras.Input((3,))
    split = Split()
    first, second = split(inputs)
    assert keras_internals.output_position(first) == (split, 0)
    assert keras_internals.output_position(second) == (split, 1)
    dense = keras.layers.Dense(3)
    once = dense(inputs)
    twice = dense(once)  # a shared layer: node 1 of the same operation
    assert keras_internals.output_position(once) == (dense, None)
    assert keras_internals.output_position(twice) == (dense, None)
    assert len(dense._inbound_nodes) == 2


def test_has_graph_for_functional_models_only() -> None:
    """Functional models have Functional._run_through_graph; a subclassed model has none."""
    model, _ = tiny()
    assert keras_internals.has_graph(model)
    outer = keras.Input((3,))
    assert keras_internals.has_graph(keras.Model(outer, model(outer)))
    assert not keras_internals.has_graph(Subclassed())
    assert not keras_internals.has_graph(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))


def test_run_through_graph_calls_each_operation_in_order() -> None:
    """Functional._run_through_graph(inputs, operation_fn): every operation once, in graph order,
    through operation_fn, its result fed on; the identity reproduces the model, on values and on new
    symbolic inputs (same layers, same weights)."""
    model, layers = tiny()
    batch = np.arange(6, dtype=np.float32).reshape(2, 3)
    seen = []

    def operation_fn(operation):
        seen.append(operation.name)
        return operation

    out = keras_internals.run_through_graph(model, keras.ops.convert_to_tensor(batch), operation_fn)
    np.testing.assert_allclose(np.asarray(out), np.asarray(model(batch)), rtol=1e-6)
    assert seen == ["a", "split", "join", "out"]

    symbolic = keras.Input((3,))
    rebuilt = keras_internals.run_through_graph(model, symbolic, lambda operation: operation)
    again = keras.Model(symbolic, rebuilt)
    assert keras_internals.producing_layer(again.outputs[0]) is layers["out"]
    np.testing.assert_allclose(np.asarray(again(batch)), np.asarray(model(batch)), rtol=1e-6)


def test_run_through_graph_lets_an_operation_return_something_else() -> None:
    """What operation_fn's callable returns is what the next operations receive (Ablation-CAM
    replaces one layer's output this way), and it gets the call's arguments."""
    model, _ = tiny()
    batch = np.ones((1, 3), np.float32)

    def operation_fn(operation):
        if operation.name != "split":
            return operation
        return lambda x: (keras.ops.zeros_like(x[..., :1]), keras.ops.full_like(x[..., 1:], 5.0))

    out = keras_internals.run_through_graph(model, keras.ops.convert_to_tensor(batch), operation_fn)
    assert float(np.asarray(out)[0, 0]) == pytest.approx(5.0)  # out = ones · [5, 0] + bias 0


def test_run_through_graph_with_several_inputs_takes_a_list() -> None:
    first, second = keras.Input((2,)), keras.Input((2,))
    model = keras.Model([first, second], keras.layers.Add()([first, second]))
    out = keras_internals.run_through_graph(
        model, [keras.ops.ones((1, 2)), keras.ops.full((1, 2), 2.0)], lambda operation: operation)
    np.testing.assert_allclose(np.asarray(out), [[3.0, 3.0]])


def test_takes_training_for_layers_not_bare_ops() -> None:
    """Layer._call_context_args holds "training" for every layer (Layer.__call__ takes it and passes it
    on only to a call that accepts it); a bare op of a functional graph has none."""
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dropout(0.5)(keras.layers.Dense(2)(inputs)) + 1.0)
    takes = {type(operation).__name__: keras_internals.takes_training(operation) for operation in model.operations}
    assert takes == {"InputLayer": True, "Dense": True, "Dropout": True, "Add": False}
    batch = np.ones((4, 2), np.float32)
    np.testing.assert_array_equal(np.asarray(keras.layers.Dense(2, kernel_initializer="ones")(batch, training=False)),
                                  np.full((4, 2), 2.0))
    np.testing.assert_array_equal(np.asarray(keras.layers.Dropout(0.5)(batch, training=False)), batch)
