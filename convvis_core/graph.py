"""One flat graph per model: every tensor a view needs lies on one path from the input.

A transfer-learning model holds its base as a nested model. A sub-model to a layer inside the base
and a sub-model to the class logits, built separately, are two graphs: the gradient of the one
with respect to the other does not exist, and every Grad-CAM at such a layer comes out empty
(tf-keras-vis #63 and #71, keract #20). So each model is rebuilt here, once, as one functional
graph over the same layer objects (the same weights), nested models inlined at any depth, and every
sub-model is cut from it: the outputs of any set of layers, the class logits, or both at once.

Layers keep the paths users see (``"mobilenet_1.00_224/conv_pw_13_relu"``). A model whose layers
do not each compute one tensor (a nested model called twice, a layer shared by two branches) has
no such paths: it is refused with a message, never answered with a map of the wrong tensor.
"""

from __future__ import annotations

import difflib
import threading
import weakref
from typing import Any, Sequence

import keras

from convvis_core.config import MAX_FEATURE_MODELS_PER_MODEL
from convvis_core.errors import ConvVisError, LayerError, ModelError
from convvis_core.keras_internals import has_graph, producing_layer, run_through_graph
from convvis_core.per_model import PerModelCache

SEPARATOR = "/"  # between a nested model's name and its layer's: "base/conv_pw_13_relu"
PRE_ACTIVATION = ":pre"  # path suffix: the layer's values before its activation function
LOGITS = "<logits>"  # the pre-softmax class scores, per image or per pixel (gradients of a softmax saturate)
OUTPUT = "<output>"  # the model's output as it is (values: a regression, an embedding)
ACTIVATION_LAYERS = (keras.layers.ReLU, keras.layers.Activation, keras.layers.Softmax, keras.layers.LeakyReLU,
                     keras.layers.ELU)


def is_nested_model(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.Model) and hasattr(layer, "layers") and hasattr(layer, "inputs")


def activation_name(layer: keras.layers.Layer) -> str | None:
    """The name of the layer's activation function ("relu", "softmax", ...), None if it has none."""
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    if isinstance(layer, (keras.layers.ReLU, keras.layers.LeakyReLU)):
        return "relu"
    name = getattr(getattr(layer, "activation", None), "__name__", None)
    return None if name in (None, "linear") else name


SQUASHES = ("softmax", "sigmoid")  # the heads whose output is probabilities: LOGITS is what they squash


def squash_of(layer: keras.layers.Layer) -> str | None:
    """How a head turns its class logits into scores: "softmax" (the units compete for one class),
    "sigmoid" (each unit on its own: one label, or several that may all be on), None (linear or any
    other activation: what it outputs is its score as it is)."""
    name = activation_name(layer)
    return name if name in SQUASHES else None


def output_squash(model: keras.Model) -> str | None:
    """:func:`squash_of` the head of the model's one output (a view of a several-output model has one)."""
    return squash_of(producing_layer(model.outputs[0]))


def squashed(logits: Any, squash: str | None) -> Any:
    """Class logits (tensors or arrays) as the head that ``squash`` names makes them: a softmax across
    the units, each unit's own sigmoid, or (None) the logits themselves."""
    if squash == "softmax":
        return keras.ops.softmax(logits, axis=-1)
    if squash == "sigmoid":
        return keras.ops.sigmoid(logits)
    return logits


def unreadable(model: keras.Model, name: str) -> ModelError:
    """Why a model has no graph to read: it is subclassed (its ``call`` is Python code), or a Sequential
    model that was never given an input shape."""
    if isinstance(model, keras.Sequential):
        return ModelError(f"The Sequential model '{name}' has no input shape yet, so it has no graph to read. "
                          "Start it with keras.Input(shape=(height, width, channels)), or call it on a batch once.")
    return ModelError(f"'{name}' is a subclassed model: its graph cannot be read, so its layers cannot be reached. "
                      "Build it with the functional or Sequential API.")


class FlatGraph:
    """A model rebuilt as one functional graph; layers by path, in graph order."""

    def __init__(self, model: keras.Model):
        if len(model.inputs) != 1:
            raise ModelError(f"Model '{model.name}' has {len(model.inputs)} inputs; ConvVis needs one image input.")
        self.name = model.name
        source = model.inputs[0]
        self.input = keras.Input(shape=tuple(source.shape[1:]), dtype=source.dtype, name=f"{model.name}_input")
        self.layers: dict[str, keras.layers.Layer] = {}
        self.tensors: dict[str, Any] = {}  # path -> the layer's output in this graph
        self._calls: dict[str, tuple[tuple, dict]] = {}  # path -> the (args, kwargs) it was called with
        self._owner: dict[int, str] = {}  # id(tensor) -> the path that computed it
        self._inlined: set[int] = set()
        self._linear: dict[str, Any] = {}
        outputs = self._inline(model, self.input, "")
        self.outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

    def _inline(self, model: keras.Model, inputs: Any, prefix: str) -> Any:
        """Call ``model``'s layers on ``inputs`` one by one, entering nested models."""
        if isinstance(model, keras.Sequential):
            for layer in model.layers:
                inputs = self._call(layer, prefix, (inputs,), {})
            return inputs
        if not has_graph(model):
            raise unreadable(model, prefix + model.name)
        return run_through_graph(
            model, inputs, operation_fn=lambda layer: lambda *args, **kwargs: self._call(layer, prefix, args, kwargs))

    def _call(self, layer: keras.layers.Layer, prefix: str, args: tuple, kwargs: dict) -> Any:
        path = prefix + layer.name
        if is_nested_model(layer):
            if id(layer) in self._inlined:
                raise ModelError(
                    f"The nested model '{path}' is called more than once in '{self.name}', so its layers have no "
                    "single output to show or explain. Save a model that calls it once.")
            self._inlined.add(id(layer))
            return self._inline(layer, args[0], path + SEPARATOR)
        if path in self.layers:
            raise ModelError(
                f"The layer '{path}' is shared (called more than once) in '{self.name}', so it has no single "
                "output to show or explain. Save a model in which each layer is called once.")
        output = layer(*args, **kwargs)
        self.layers[path], self.tensors[path], self._calls[path] = layer, output, (args, kwargs)
        self._owner[id(output)] = path
        return output

    def owner(self, tensor: Any) -> str | None:
        """The path of the layer that computed ``tensor`` in this graph."""
        return self._owner.get(id(tensor))

    def producer(self, path: str) -> str | None:
        """The path of the layer whose output is ``path``'s single input; None for the model input."""
        args, _ = self._calls[path]
        if len(args) != 1 or isinstance(args[0], (list, tuple, dict)):
            raise LayerError(f"'{path}' has several inputs, so it has no single previous layer.")
        return self._owner.get(id(args[0]))

    def inputs_of(self, path: str) -> list[str]:
        """The paths of the layers whose outputs ``path``'s layer was called on (none for the model input)."""
        args, kwargs = self._calls[path]
        owners = (self._owner.get(id(tensor)) for tensor in keras.tree.flatten((args, kwargs)))
        return [owner for owner in owners if owner is not None]

    def copies(self, path: str) -> list[keras.layers.Layer]:
        """Layers of this graph that carry a copy of ``path``'s weights (the linear twin of a fused
        activation, see :meth:`tensor`): whoever changes the layer's weights must change theirs too."""
        return [producing_layer(self._linear[path])] if path in self._linear else []

    def tensor(self, name: str) -> Any:
        """The tensor of a layer path, of ``path:pre`` (before its activation), or of ``LOGITS``."""
        if name == LOGITS:
            return self.logits()
        if name == OUTPUT:
            return self.output()
        path = name.removesuffix(PRE_ACTIVATION)
        if path not in self.tensors:
            raise self.no_such_layer(path)
        if name.endswith(PRE_ACTIVATION) and activation_name(self.layers[path]):
            return self._before_activation(path)
        return self.tensors[path]

    def no_such_layer(self, path: str) -> LayerError:
        """The error for an unknown path, naming the closest spatial layers."""
        spatial = [known for known, tensor in self.tensors.items() if len(getattr(tensor, "shape", ())) == 4]
        close = difflib.get_close_matches(path, spatial, n=5, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        return LayerError(f"Model '{self.name}' has no layer named '{path}'.{hint} "
                          "Run `python -m convvis_core layers MODEL` to list them.")

    def output(self) -> Any:
        """The model's one output (a view of a several-output model has one, see ``models.heads``)."""
        if len(self.outputs) != 1:
            raise ConvVisError(f"Model '{self.name}' has {len(self.outputs)} outputs: choose the one to explain.")
        return self.outputs[0]

    def logits(self) -> Any:
        """The class scores (per image, or per pixel for a segmentation) before a softmax or sigmoid
        head; the output itself if it is linear."""
        if len(self.outputs) != 1 or len(self.outputs[0].shape) not in (2, 4):
            raise ConvVisError(f"Model '{self.name}' has no single vector or map of class scores, so it has no class logits.")
        head = self._owner[id(self.outputs[0])]
        return self._before_activation(head) if squash_of(self.layers[head]) else self.outputs[0]

    def _before_activation(self, path: str) -> Any:
        """For an activation layer its input; for a fused one (``Conv2D(activation="relu")``) the
        output of a linear twin carrying the same weights, called on the same input."""
        layer, (args, kwargs) = self.layers[path], self._calls[path]
        if isinstance(layer, ACTIVATION_LAYERS):
            return args[0]
        if path not in self._linear:
            twin = type(layer).from_config({**layer.get_config(), "activation": "linear", "name": f"{layer.name}_linear"})
            self._linear[path] = twin(*args, **kwargs)
            twin.set_weights(layer.get_weights())
        return self._linear[path]


# Held while graphs and sub-models are built: building adds nodes to a shared model's layers, and
# sessions asking at once must get the same objects.
GRAPH_LOCK = threading.RLock()
_GRAPHS: "weakref.WeakKeyDictionary[keras.Model, FlatGraph]" = weakref.WeakKeyDictionary()
_SUB_MODELS = PerModelCache(MAX_FEATURE_MODELS_PER_MODEL, GRAPH_LOCK)


def flat_graph(model: keras.Model) -> FlatGraph:
    """The model's flat graph, built once per model (raises :class:`ModelError` if it has none)."""
    with GRAPH_LOCK:
        if model not in _GRAPHS:
            _GRAPHS[model] = FlatGraph(model)
        return _GRAPHS[model]


def sub_model(model: keras.Model, outputs: Sequence[str]) -> keras.Model:
    """A model from the input to ``outputs`` (layer paths, ``path:pre``, ``LOGITS``), all cut from
    the one flat graph, so a gradient of one output with respect to another exists. One output comes
    back as a tensor, several as a list (Keras' rule). Cached per model (the most recently used ``MAX_FEATURE_MODELS_PER_MODEL``)."""
    def build() -> keras.Model:
        graph = flat_graph(model)
        cut = keras.Model(graph.input, [graph.tensor(name) for name in outputs], name=f"{model.name}_cut")
        cut.input_spec = None  # any image size where the layers allow it (fully convolutional parts)
        return cut

    return _SUB_MODELS.get(model, tuple(outputs), build)
