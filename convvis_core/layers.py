"""Spatial layers of a model, including those inside nested (transfer-learning) base models.

A layer inside a nested model gets a path-like name, ``"mobilenet_1.00_224/conv_pw_13_relu"``,
and a functional sub-model from the outer model's input reaches it without copying weights.
"""

from __future__ import annotations

import difflib
import threading
from dataclasses import dataclass
from typing import Iterator, Sequence

import keras

from convvis_core.config import MAX_FEATURE_MODELS_PER_MODEL
from convvis_core.errors import LayerError
from convvis_core.per_model import PerModelCache

SEPARATOR = "/"
PRE_ACTIVATION = ":pre"  # path suffix: the layer's values before its activation function
_ACTIVATION_LAYERS = (keras.layers.ReLU, keras.layers.Activation, keras.layers.Softmax, keras.layers.LeakyReLU,
                      keras.layers.ELU)


@dataclass(frozen=True)
class SpatialLayer:
    """A layer whose output is a 4-D map (batch, height, width, channels)."""

    path: str  # "name" or "nested_model/name"
    kind: str  # Keras class name, e.g. "Conv2D"
    height: int | None
    width: int | None
    channels: int

    @property
    def shape_text(self) -> str:
        return f"{self.height}×{self.width}×{self.channels}"

    @property
    def label(self) -> str:
        """Human label for pickers: path, kind and shape."""
        return f"{self.path}  ·  {self.kind}  ·  {self.shape_text}"


def _is_nested_model(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.Model) and hasattr(layer, "layers") and hasattr(layer, "inputs")


def iter_layers(model: keras.Model) -> Iterator[tuple[str, keras.layers.Layer]]:
    """(path, layer) for every layer in graph order; nested models are entered, not yielded."""
    for layer in model.layers:
        if _is_nested_model(layer):
            for path, inner in iter_layers(layer):
                yield layer.name + SEPARATOR + path, inner
        else:
            yield layer.name, layer


def output_shape(layer: keras.layers.Layer) -> tuple | None:
    """The layer's single output shape, or None if it has several or was never called."""
    try:
        output = layer.output
    except (AttributeError, ValueError, RuntimeError):  # never called, or shared by several calls
        return None
    if isinstance(output, (list, tuple)):
        return None
    return tuple(output.shape)


def spatial_layers(model: keras.Model) -> list[SpatialLayer]:
    """Every layer with a 4-D output (batch, height, width, channels), in graph order."""
    found = []
    for path, layer in iter_layers(model):
        shape = output_shape(layer)
        if isinstance(layer, keras.layers.InputLayer) or shape is None or len(shape) != 4 or shape[-1] is None:
            continue
        found.append(SpatialLayer(path, type(layer).__name__, shape[1], shape[2], int(shape[3])))
    return found


def find_layer(model: keras.Model, path: str) -> SpatialLayer:
    """The spatial layer at ``path``, or a :class:`LayerError` naming close alternatives."""
    layers = spatial_layers(model)
    for layer in layers:
        if layer.path == path:
            return layer
    if get_layer(model, path) is not None:
        raise LayerError(
            f"Layer '{path}' has no spatial (4-D) output, so it has no feature maps to show. "
            "Pick a convolution, pooling or activation layer before the global pooling."
        )
    close = difflib.get_close_matches(path, [layer.path for layer in layers], n=5, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise LayerError(f"Model '{model.name}' has no layer named '{path}'.{hint} "
                     f"Run `python -m convvis_core layers MODEL` to list them.")


def default_layer(model: keras.Model) -> SpatialLayer:
    """The last layer with a real map (larger than 1×1): where class evidence is most concentrated,
    Grad-CAM's default. Keras' MobileNet keeps 1×1 maps after pooling; those are skipped."""
    layers = spatial_layers(model)
    if not layers:
        raise LayerError(
            f"Model '{model.name}' has no layer with a spatial (4-D) output: it is not a CNN "
            "over images, so there are no feature maps to visualize. Pick or upload a convolutional "
            "model (one with Conv2D layers)."
        )
    with_area = [layer for layer in layers if (layer.height or 2) * (layer.width or 2) > 1]
    return (with_area or layers)[-1]


def get_layer(model: keras.Model, path: str) -> keras.layers.Layer | None:
    """The Keras layer at a path-like name, or None."""
    container: keras.layers.Layer = model
    for part in path.split(SEPARATOR):
        if not _is_nested_model(container):
            return None
        try:
            container = container.get_layer(part)
        except ValueError:
            return None
    return container


def activation_name(layer: keras.layers.Layer) -> str | None:
    """The name of the layer's activation function ("relu", "softmax", ...), None if it has none."""
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    if isinstance(layer, (keras.layers.ReLU, keras.layers.LeakyReLU)):
        return "relu"
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None)
    return None if name in (None, "linear") else name


def linear_output(layer: keras.layers.Layer):
    """The layer's output before its activation, in the layer's own graph.

    For a separate activation layer that is its input; for a fused one (``Conv2D(activation="relu")``,
    ``Dense(activation="softmax")``) a linear twin of the layer, carrying the same weights.
    Optimizing pre-activation values keeps gradients alive where a ReLU output is zero.
    """
    if isinstance(layer, _ACTIVATION_LAYERS):
        return layer.input
    twin = type(layer).from_config({**layer.get_config(), "activation": "linear", "name": f"{layer.name}_linear"})
    output = twin(layer.input)
    twin.set_weights(layer.get_weights())
    return output


def _symbolic_output(container: keras.Model, path: str):
    """The output tensor of ``path`` expressed in ``container``'s own graph (from its inputs).

    A path ending in ``:pre`` gives the values before the layer's activation function.
    """
    head, _, rest = path.partition(SEPARATOR)
    before_activation = not rest and head.endswith(PRE_ACTIVATION)
    head = head.removesuffix(PRE_ACTIVATION) if before_activation else head
    try:
        layer = container.get_layer(head)
    except ValueError as error:
        raise LayerError(f"Model '{container.name}' has no layer named '{head}'.") from error
    if not rest:
        return linear_output(layer) if before_activation and activation_name(layer) else layer.output
    if not _is_nested_model(layer):
        raise LayerError(f"'{head}' is not a nested model, so '{path}' does not exist.")
    inner = keras.Model(_single_input(layer), _symbolic_output(layer, rest))
    nodes = [node for node in layer._inbound_nodes if node.input_tensors]
    if len(nodes) != 1:
        raise LayerError(f"Nested model '{head}' is called {len(nodes)} times; its layers cannot be reached unambiguously.")
    feed = nodes[0].input_tensors
    return inner(feed[0] if len(feed) == 1 else feed)


def _single_input(model: keras.Model):
    """The model's input tensor (a one-element list makes Keras warn on every call)."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


# Held while a new model is built on a shared model's graph (sub-models, logits, probes): building
# reads the graph and adds nodes to its layers, and sessions asking at once must get the same model.
GRAPH_LOCK = threading.RLock()
_SUBMODELS = PerModelCache(MAX_FEATURE_MODELS_PER_MODEL, GRAPH_LOCK)


def feature_model(model: keras.Model, paths: Sequence[str]) -> keras.Model:
    """A functional model from ``model``'s input to the outputs of ``paths`` (shared weights;
    a path may end in ``:pre`` for the values before the layer's activation).

    Cached per model (the most recently used ``MAX_FEATURE_MODELS_PER_MODEL``), so the pages and
    loops that call it repeatedly build it once; sessions asking at once get the same one.
    """
    def build() -> keras.Model:
        for path in paths:
            find_layer(model, path.removesuffix(PRE_ACTIVATION))
        outputs = [_symbolic_output(model, path) for path in paths]
        return keras.Model(_single_input(model), outputs, name=f"{model.name}_features")

    return _SUBMODELS.get(model, tuple(paths), build)
