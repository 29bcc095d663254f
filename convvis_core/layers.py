"""The layers users pick: every layer with a spatial (4-D) output, nested base models included.

A layer inside a nested model gets a path-like name, ``"mobilenet_1.00_224/conv_pw_13_relu"``;
paths, shapes and tensors all come from the model's flat graph (:mod:`convvis_core.graph`).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from convvis_core.errors import LayerError
from convvis_core.graph import flat_graph, squash_of


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


def spatial_layers(model: keras.Model) -> list[SpatialLayer]:
    """Every layer with a 4-D output (batch, height, width, channels), in graph order."""
    graph = flat_graph(model)
    return [SpatialLayer(path, type(graph.layers[path]).__name__, shape[1], shape[2], int(shape[3]))
            for path, shape in ((path, getattr(tensor, "shape", ())) for path, tensor in graph.tensors.items())
            if len(shape) == 4 and shape[-1] is not None]


def find_layer(model: keras.Model, path: str) -> SpatialLayer:
    """The spatial layer at ``path``, or a :class:`LayerError` naming close alternatives."""
    for layer in spatial_layers(model):
        if layer.path == path:
            return layer
    if get_layer(model, path) is not None:
        raise LayerError(
            f"Layer '{path}' has no spatial (4-D) output, so it has no feature maps to show. "
            "Pick a convolution, pooling or activation layer before the global pooling."
        )
    raise flat_graph(model).no_such_layer(path)


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
    # A segmentation's per-pixel head (softmax or sigmoid) is where its class logits end: a map there
    # leads to no logit, so the layer before it is the default.
    graph = flat_graph(model)
    heads = {graph.owner(output) for output in graph.outputs}
    squashing = [layer for layer in with_area or layers if layer.path in heads and squash_of(graph.layers[layer.path])]
    return ([layer for layer in with_area or layers if layer not in squashing] or with_area or layers)[-1]


def get_layer(model: keras.Model, path: str) -> keras.layers.Layer | None:
    """The Keras layer at a path-like name, or None."""
    return flat_graph(model).layers.get(path)
