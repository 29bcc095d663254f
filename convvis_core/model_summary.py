"""A model's summary as rows (what ``model.summary()`` prints, as data a table can show)."""

from __future__ import annotations

import keras

from convvis_core.layers import iter_layers, output_shape, spatial_layers


def layer_table(model: keras.Model) -> list[dict]:
    """One row per layer, nested models expanded with path-like names."""
    spatial = {layer.path for layer in spatial_layers(model)}
    rows = []
    for path, layer in iter_layers(model):
        shape = output_shape(layer)
        rows.append({
            "layer": path,
            "kind": type(layer).__name__,
            "output shape": "×".join("?" if d is None else str(d) for d in shape[1:]) if shape else "—",
            "parameters": int(layer.count_params()) if layer.built else 0,
            "feature maps": path in spatial,
        })
    return rows
