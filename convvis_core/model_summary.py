"""A model's summary as rows (what ``model.summary()`` prints, as data a table can show)."""

from __future__ import annotations

import keras

from convvis_core.graph import flat_graph


def _shape_text(tensor) -> str:
    shape = getattr(tensor, "shape", None)
    return "×".join("?" if d is None else str(d) for d in shape[1:]) if shape is not None else "—"


def layer_table(model: keras.Model) -> list[dict]:
    """One row for the input and one per layer, nested models expanded with path-like names."""
    graph = flat_graph(model)
    rows = [{"layer": "input", "kind": "InputLayer", "output shape": _shape_text(graph.input), "parameters": 0,
             "feature maps": False}]
    for path, layer in graph.layers.items():
        shape = getattr(graph.tensors[path], "shape", ())
        rows.append({
            "layer": path,
            "kind": type(layer).__name__,
            "output shape": _shape_text(graph.tensors[path]),
            "parameters": int(layer.count_params()) if layer.built else 0,
            "feature maps": len(shape) == 4 and shape[-1] is not None,
        })
    return rows
