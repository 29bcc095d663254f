"""Which filters changed most: weight change (‖W_B − W_A‖ / ‖W_A‖ of the filter's weights: its kernel
slice, bias, normalization scale) and activation change (1 − correlation of the filter's activations
over the same images, from :mod:`similarity`), ranked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from convvis_core.compare.similarity import Similarity
from convvis_core.graph import flat_graph
from convvis_core.layers import find_layer
from convvis_core.models.base import LoadedModel


@dataclass(frozen=True)
class FilterChange:
    layer: str
    filter: int
    weight_change: float  # NaN where the layer has no weights (an activation, a pooling)
    activation_change: float  # NaN where the layers' shapes differ


def _per_filter(values: list[np.ndarray], channels: int) -> np.ndarray | None:
    """The layer's weights as rows × channels: every variable whose last axis (or last two, for a
    depthwise kernel) is the filters'."""
    columns = []
    for value in values:
        if value.ndim and value.shape[-1] == channels:
            columns.append(value.reshape(-1, channels))
        elif value.ndim >= 2 and value.shape[-2] * value.shape[-1] == channels:
            columns.append(value.reshape(-1, channels))
    return np.concatenate(columns).astype(np.float64) if columns else None


def weight_change(a: LoadedModel, b: LoadedModel, path: str, counterpart: str | None = None) -> np.ndarray | None:
    """Relative weight change per filter of A's layer at ``path`` and B's at ``counterpart`` (default: the same
    path), or None where either has no weights or their shapes differ."""
    channels = find_layer(a.model, path).channels
    layer_a, layer_b = flat_graph(a.model).layers[path], flat_graph(b.model).layers[counterpart or path]
    weights_a = _per_filter([np.asarray(w) for w in layer_a.get_weights()], channels)
    weights_b = _per_filter([np.asarray(w) for w in layer_b.get_weights()], channels)
    if weights_a is None or weights_b is None or weights_a.shape != weights_b.shape:
        return None
    return np.linalg.norm(weights_b - weights_a, axis=0) / np.maximum(np.linalg.norm(weights_a, axis=0), 1e-12)


def layer_changes(a: LoadedModel, b: LoadedModel, similarity: Similarity, path: str) -> list[FilterChange]:
    """Every filter of A's matched layer at ``path``, the most changed first (activation change, then weight change)."""
    channels = find_layer(a.model, path).channels
    weights = weight_change(a, b, path, similarity.counterpart(path))
    activations = similarity.activation_change(path)
    weights = np.full(channels, np.nan) if weights is None else weights
    activations = np.full(channels, np.nan) if activations is None else activations
    order = np.lexsort((-np.nan_to_num(weights, nan=-1), -np.nan_to_num(activations, nan=-1)))
    return [FilterChange(path, int(i), float(weights[i]), float(activations[i])) for i in order]


def most_changed(a: LoadedModel, b: LoadedModel, similarity: Similarity, path: str, k: int = 8) -> list[FilterChange]:
    return layer_changes(a, b, similarity, path)[:k]


def mean_change(values: Sequence[float]) -> float:
    """The mean of the measured changes (NaN ones left out); NaN when none was measured."""
    measured = [value for value in values if np.isfinite(value)]
    return float(np.mean(measured)) if measured else float("nan")


@dataclass(frozen=True)
class LayerSummary:
    """One matched layer of A against its counterpart in B: what the CLI, the page and the API tabulate."""

    layer: str
    counterpart: str
    cka: float
    filters: list[FilterChange]  # the most changed first

    @property
    def weight_change(self) -> float:
        """The mean over the filters whose weights were measured (NaN: none)."""
        return mean_change([row.weight_change for row in self.filters])

    @property
    def activation_change(self) -> float:
        return mean_change([row.activation_change for row in self.filters])


def layer_summaries(a: LoadedModel, b: LoadedModel, similarity: Similarity) -> list[LayerSummary]:
    """Every matched layer of A, in A's order: its counterpart, its CKA and its filters' changes."""
    return [LayerSummary(path, similarity.counterpart(path), similarity.layer_cka(path),
                         layer_changes(a, b, similarity, path)) for path in similarity.matched]


def change_text(value: float, width: int = 0, digits: int = 4) -> str:
    """A change or a CKA as text; NaN (not measured: no weights, shapes differ, a constant layer) as a dash."""
    return f"{value:>{width}.{digits}f}" if value == value else f"{'—':>{width}}"
