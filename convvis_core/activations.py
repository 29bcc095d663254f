"""Feature maps of one image, layer by layer: how an input is decomposed by successive layers.

One forward pass of a multi-output sub-model gives the maps of any set of layers (nested models
included); per-channel statistics spot dead and saturated channels; maps are normalized for display as
in Chollet's *Deep Learning with Python* ("visualizing intermediate activations") or not at all (the
grid of a layer's channels is drawn by ``presentation.channel_grids``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

import keras
import numpy as np
from PIL import Image

from convvis_core.batches import model_input
from convvis_core.images import Fit, to_uint8
from convvis_core.graph import PRE_ACTIVATION, activation_name, sub_model
from convvis_core.layers import SpatialLayer, default_layer, find_layer, get_layer, spatial_layers
from convvis_core.models.base import LoadedModel

Normalization = Literal["standardize", "minmax", "raw"]
NORMALIZATIONS: dict[Normalization, str] = {
    "standardize": "per channel: (x − mean) / std · 64 + 128, clipped to 0..255 (Chollet, DLwP)",
    "minmax": "per layer: the layer's lowest value → 0, its highest → 255",
    "raw": "the activations as they are",
}
Summary = Literal["mean", "strongest"]


def feature_maps(loaded: LoadedModel, image: Image.Image, paths: Sequence[str],
                 fit: Fit = "stretch") -> dict[str, np.ndarray]:
    """The maps of ``paths`` for one image, each (H, W, C) float32, from a single forward pass."""
    return {path: maps[0] for path, maps in batch_feature_maps(loaded, [image], paths, fit).items()}


def batch_feature_maps(loaded: LoadedModel, images: Sequence[Image.Image], paths: Sequence[str],
                       fit: Fit = "stretch") -> dict[str, np.ndarray]:
    """The maps of ``paths`` for a batch of images, each (N, H, W, C) float32, from one forward pass."""
    paths = list(dict.fromkeys(paths))
    if not paths:
        return {}
    for path in paths:  # a path may end in ":pre", for the values before the layer's activation
        find_layer(loaded.model, path.removesuffix(PRE_ACTIVATION))
    inputs = np.concatenate([model_input(image, loaded.info, fit) for image in images])
    outputs = sub_model(loaded.model, paths)(inputs, training=False)
    outputs = outputs if len(paths) > 1 else [outputs]
    return {path: np.asarray(output, dtype=np.float32) for path, output in zip(paths, outputs)}


@dataclass(frozen=True)
class ChannelStats:
    """Per-channel summary of one layer's maps on one image, each an array of shape (C,)."""

    mean: np.ndarray
    min: np.ndarray
    max: np.ndarray
    zero_fraction: np.ndarray  # share of the map's pixels that are exactly 0

    @property
    def channels(self) -> int:
        return len(self.mean)

    @property
    def dead(self) -> np.ndarray:
        """All zero on this image: the channel carries nothing forward (a "dead ReLU", here)."""
        return self.zero_fraction == 1.0

    @property
    def constant(self) -> np.ndarray:
        """The same non-zero value everywhere: saturated (e.g. at ReLU6's 6) or bias only."""
        return (self.max == self.min) & ~self.dead


def channel_stats(maps: np.ndarray) -> ChannelStats:
    """Mean, min, max and zero fraction of every channel of an (H, W, C) map."""
    return ChannelStats(
        mean=maps.mean(axis=(0, 1), dtype=np.float64),
        min=maps.min(axis=(0, 1)),
        max=maps.max(axis=(0, 1)),
        zero_fraction=(maps == 0).mean(axis=(0, 1)),
    )


def normalize(maps: np.ndarray, how: Normalization = "standardize") -> np.ndarray:
    """Maps in display units: 0..255 for ``standardize`` and ``minmax``, unchanged for ``raw``.

    ``standardize`` stretches every channel by its own spread, so weak channels become visible;
    an all-zero channel stays 0 (black, as in DLwP) and a constant one becomes 128.
    """
    maps = np.asarray(maps, dtype=np.float32)
    if how == "raw":
        return maps
    if how == "minmax":
        low, high = float(np.nanmin(maps)), float(np.nanmax(maps))  # NaN: a grid's separators
        return (maps - low) * (255.0 / (high - low)) if high > low else np.zeros_like(maps)
    if how == "standardize":
        mean = maps.mean(axis=(0, 1), keepdims=True)
        std = maps.std(axis=(0, 1), keepdims=True)
        scaled = np.clip((maps - mean) / np.where(std > 0, std, 1.0) * 64.0 + 128.0, 0.0, 255.0)
        return np.where(np.all(maps == 0, axis=(0, 1), keepdims=True), 0.0, scaled).astype(np.float32)
    raise ValueError(f"Unknown normalization {how!r}; choose one of {', '.join(NORMALIZATIONS)}")


def default_spread(model: keras.Model, count: int = 6) -> list[SpatialLayer]:
    """Up to ``count`` evenly spaced layers ending at :func:`default_layer`: a walk from edges to
    parts. Outputs of activation functions are preferred (what the next layer actually receives),
    1×1 maps skipped. Raises LayerError if the model has no spatial layer."""
    last = default_layer(model)
    layers = spatial_layers(model)
    before = [layer for layer in layers[:layers.index(last)] if (layer.height or 2) * (layer.width or 2) > 1]
    activated = [layer for layer in before if activation_name(get_layer(model, layer.path))]
    candidates = (activated or before) + [last]
    picks = np.unique(np.linspace(0, len(candidates) - 1, count).round().astype(int))
    return [candidates[index] for index in picks]


@dataclass(frozen=True)
class ProgressionStep:
    """One thumbnail of a layer for the walk across the network."""

    path: str
    image: np.ndarray  # (H, W) uint8
    channel: int | None  # the channel shown, or None for the mean over channels


def layer_summary(maps: np.ndarray, how: Summary = "mean") -> tuple[np.ndarray, int | None]:
    """One (H, W) uint8 picture of a whole layer: the mean over its channels, or its most active
    channel (highest mean), min-max scaled; and the channel shown (None for the mean)."""
    if how == "mean":
        return to_uint8(normalize(maps.mean(axis=-1), "minmax")), None
    if how == "strongest":
        channel = int(np.argmax(channel_stats(maps).mean))
        return to_uint8(normalize(maps[..., channel], "minmax")), channel
    raise ValueError(f"Unknown summary {how!r}; choose 'mean' or 'strongest'")


def progression(maps_by_path: Mapping[str, np.ndarray], how: Summary = "mean") -> list[ProgressionStep]:
    """One summary picture per layer, in the order given (e.g. first layer to last)."""
    return [ProgressionStep(path, *layer_summary(maps, how)) for path, maps in maps_by_path.items()]
