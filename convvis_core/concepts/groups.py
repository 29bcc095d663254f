"""Neuron groups (Olah et al., "The Building Blocks of Interpretability", 2018; pytorch-grad-cam's Deep
Feature Factorization): one image's activations at a layer, positions × channels, factorized by NMF into
k groups of channels that fire together, A ≈ U W.

Each group has a spatial map over the image (its coefficients U at each position), a channel
direction (its row of W, unit length: a feature visualization can follow it), its strongest channels,
and its contribution to the target: gradient × activation restricted to the group's share of the
activations, Σ over positions U_g W_g · ∂y/∂A. The contributions and the factorization's leftover
(the same sum over A − U W) add up to gradient × activation over the whole layer, Σ A · ∂y/∂A.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from convvis_core.cache import ResultCache, default_cache
from convvis_core.cam.targets import Target
from convvis_core.concepts.factorization import LayerParts, factorize
from convvis_core.concepts.layer_reading import CACHE_NAMESPACE, check_parts, layer_reading, seen_pixels
from convvis_core.config import MAX_CONCEPTS
from convvis_core.counters import WorkCounter
from convvis_core.errors import ConceptError
from convvis_core.images import Fit
from convvis_core.models.base import LoadedModel

GROUPINGS = WorkCounter()  # neuron groups computed (not served from the cache), by layer path


@dataclass(frozen=True, eq=False)
class NeuronGroups(LayerParts):
    """One image's channels at one layer in groups; arrays indexed by group in the factorization's order,
    :attr:`order` sorts them by the size of their contribution; each group's ``direction`` (feature
    visualization) and ``strongest_channels`` come from :class:`LayerParts`."""

    layer: str
    target: Target
    image: np.ndarray = field(repr=False)  # (H, W, C) uint8: the image as the model sees it
    maps: np.ndarray = field(repr=False)  # U (h, w, k): each group's coefficient at each position
    bank: np.ndarray = field(repr=False)  # W (k, C), unit rows: each group's channel direction
    contributions: np.ndarray  # (k,) gradient × activation of each group's share of the activations
    leftover: float  # the same for what the groups leave out, A − U W
    total: float  # gradient × activation over the whole layer (= contributions.sum() + leftover)
    error: float  # ‖A − U W‖ / ‖A‖ (Frobenius): 0 is exact
    negative_share: float  # share of the activations' mass below 0, clipped for the factorization
    seconds: float
    from_cache: bool = False

    @property
    def count(self) -> int:
        return len(self.bank)

    @property
    def order(self) -> np.ndarray:
        """Group indices, the largest contribution (by size) first."""
        return np.argsort(-np.abs(self.contributions), kind="stable")

    def effect(self, group: int) -> str:
        return "raises" if self.contributions[group] >= 0 else "lowers"

    def dominant(self) -> np.ndarray:
        """(h, w): the group with the largest coefficient at each position."""
        return np.argmax(self.maps, axis=-1)

    def rows(self) -> list[dict]:
        """One row per group, the largest contribution first (a CSV)."""
        area = np.bincount(self.dominant().ravel(), minlength=self.count) / self.dominant().size
        return [{"rank": rank, "group": int(group), "contribution": float(self.contributions[group]),
                 "effect": self.effect(group), "share of the map": float(area[group]),
                 "strongest channels": " ".join(str(channel) for channel, _ in self.strongest_channels(group))}
                for rank, group in enumerate(self.order, start=1)]

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"image": self.image, "maps": self.maps, "bank": self.bank, "contributions": self.contributions,
                "numbers": np.array([self.leftover, self.total, self.error, self.negative_share, self.seconds])}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], layer: str, target: Target) -> "NeuronGroups":
        leftover, total, error, negative, seconds = (float(value) for value in arrays["numbers"])
        return cls(layer, target, arrays["image"], arrays["maps"], arrays["bank"], arrays["contributions"], leftover,
                   total, error, negative, seconds, from_cache=True)


def neuron_groups(loaded: LoadedModel, image: Image.Image, target: Target | None = None, layer: str | None = None,
                  groups: int = 6, seed: int = 0, fit: Fit = "stretch",
                  cache: ResultCache | None = None) -> NeuronGroups:
    """``groups`` groups of ``layer``'s channels (default: the last layer with a real map) on ``image``, with
    each group's contribution to ``target`` (default: the output kind's, a class pinned to the top
    prediction); one pass for the activations and the gradients. Cached on disk by the model, the layer,
    the target, the image and the settings."""
    if groups > MAX_CONCEPTS:
        raise ConceptError(f"Neuron groups: at most {MAX_CONCEPTS}; got {groups}.")
    pixels = seen_pixels([image], loaded, fit)
    reading = layer_reading(loaded, layer, target, pixels, "Neuron groups")
    found = reading.layer
    positions = (found.height or 0) * (found.width or 0)
    if positions < 2:
        raise ConceptError(f"{found.path} has a {found.shape_text} map: one position has no places to group; pick "
                           "a layer with a larger map.")
    check_parts(groups, found, positions, f"positions of {found.path}'s {found.height}×{found.width} map",
                "Neuron groups")
    cache = cache or default_cache(CACHE_NAMESPACE)
    key = reading.key("groups", pixels, groups=groups, seed=seed)
    with cache.computing(key):
        stored = cache.get(key)
        if stored is not None:
            return NeuronGroups.from_arrays(stored, found.path, reading.target)
        started = time.perf_counter()
        (_, activations, gradients), = reading.batches(pixels, gradients=True)
        activations, gradients = activations[0], gradients[0]
        if not activations.any():
            raise ConceptError(f"{found.path} is silent (all zero) on this image: there are no groups to find; try an "
                               "earlier layer.")
        factorized = factorize(activations.reshape(-1, found.channels), groups, seed)
        maps = factorized.coefficients.reshape(*activations.shape[:2], groups)
        contributions = np.einsum("hwk,kc,hwc->k", maps, factorized.bank, gradients, optimize=True)
        total = float((activations * gradients).sum())
        result = NeuronGroups(found.path, reading.target, pixels[0], maps, factorized.bank,
                              contributions.astype(np.float32), total - float(contributions.sum()), total,
                              factorized.error, factorized.negative_share, time.perf_counter() - started)
        GROUPINGS.add(found.path)
        cache.put(key, result.to_arrays())
    return result
