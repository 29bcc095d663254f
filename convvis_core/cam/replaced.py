"""A model's graph run again with one of its tensors replaced: "the rest of the network" after a
layer, for many replacements of the layer's output at once (Ablation-CAM).

The model's graph (a sub-model cut from its flat graph, :func:`convvis_core.graph.sub_model`) is
re-run node by node (:func:`convvis_core.keras_internals.run_through_graph`); the node that computes the chosen
tensor returns a replacement instead. The image is still fed: what does not depend on the
replaced tensor (a skip connection from an earlier layer, past it) is computed once for the image
and repeated to the replacement's batch where it meets the replaced branch. Upstream of the tensor,
nodes that nothing else reads are never used, and ``tf.function`` prunes them.

The replacements can come in several parts: the graph is then run once per part, sharing the
replacement-free computation, and the parts are independent branches TensorFlow runs side by side
(as :func:`convvis_core.parallel.in_slices` does for whole models).
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import tensorflow as tf

from convvis_core.errors import ConvVisError
from convvis_core.keras_internals import output_position, run_through_graph, takes_training


def producer(model: keras.Model, tensor: Any) -> tuple[Any, int | None]:
    """The operation of ``model``'s graph that computes the symbolic ``tensor``, and which of its
    outputs it is (None: its only one); raises :class:`ConvVisError` if the model's outputs do not depend on it."""
    operation, index = output_position(tensor)
    if not any(known is operation for known in model.operations):
        raise ConvVisError(f"'{getattr(operation, 'name', operation)}' is not on the way to the output of "
                           f"'{model.name}': its output cannot change what the model computes.")
    return operation, index


@tf.autograph.experimental.do_not_convert
def run_replaced(model: keras.Model, tensor: Any, inputs: tf.Tensor, replacements: Sequence[tf.Tensor]) -> list[Any]:
    """``model``'s output on ``inputs`` (a batch of one image) with the symbolic ``tensor`` of its
    graph replaced by each of ``replacements`` (each a batch of any size): one output per part
    (for a model with several outputs, a list per part)."""
    operation, index = producer(model, tensor)
    plain: dict[int, Any] = {}  # operation id -> its outputs on the image, shared by every part
    outputs = []
    for replacement in replacements:
        replacement = tf.cast(replacement, tensor.dtype)
        derived: dict[int, Any] = {}  # id -> tensor, for tensors that depend on the replacement
        batch = tf.shape(replacement)[0]

        def repeated(value: Any) -> Any:
            """A replacement-free tensor (batch 1) repeated to the replacement's batch."""
            if not tf.is_tensor(value) or id(value) in derived or value.shape.rank in (None, 0):
                return value
            return tf.broadcast_to(value, tf.concat([[batch], tf.shape(value)[1:]], axis=0))

        def operation_fn(op: Any):
            def call(*args, **kwargs):
                if takes_training(op):
                    kwargs["training"] = False
                if op is operation:
                    derived[id(replacement)] = replacement
                    if index is None:  # not computed at all: upstream, only what other branches read runs
                        return replacement
                    if id(op) not in plain:  # several outputs: computed once, the one replaced
                        plain[id(op)] = op(*args, **kwargs)
                    flat = list(tf.nest.flatten(plain[id(op)]))
                    flat[index] = replacement
                    return tf.nest.pack_sequence_as(plain[id(op)], flat)
                if any(id(value) in derived for value in tf.nest.flatten((args, kwargs))):
                    args, kwargs = tf.nest.map_structure(repeated, (args, kwargs))
                    result = op(*args, **kwargs)
                    derived.update((id(value), value) for value in tf.nest.flatten(result))
                    return result
                if id(op) not in plain:
                    plain[id(op)] = op(*args, **kwargs)
                return plain[id(op)]
            return call

        result = tf.nest.flatten(run_through_graph(model, inputs, operation_fn))
        outputs.append(result[0] if len(result) == 1 else result)
    return outputs
