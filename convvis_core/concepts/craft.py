"""CRAFT (Fel et al., CVPR 2023): the concepts a layer holds for a target, found in crops of the
target's images, each with its importance for the target, the crops that hold it most and where it
lies in an image.

1. Crops: random squares of the images (as the model sees them), each resized to the model's input.
2. Their activations at the layer, averaged over the map (≥ 0; a layer with negative values is clipped,
   and the result says how much), factorized by NMF into k concepts, A ≈ U W: W's rows are the
   concepts (unit directions in channel space), U how much of each a crop holds.
3. Importance, on the images themselves: each map position's activations projected on W (U per
   position, non-negative least squares), and then
   - ``gradient`` (fast): gradient × coefficient, Σ over positions U_k (W_k · ∂y/∂A), the first-order
     change of the target's value y (a class's logit) if concept k were taken out of the image; signed
     (the concept raises or lowers the target); from the same pass that reads the activations;
   - ``sobol``: Sobol total indices (:mod:`convvis_core.concepts.sobol`): each concept's coefficients
     scaled by a quasi-Monte Carlo mask m_k in [0, 1], the activations rebuilt as A + Σ_k (m_k − 1) U_k W_k
     (what the concepts leave out stays as it was), the rest of the network run from the layer on
     (:mod:`convvis_core.cam.replaced`): the share of y's variance each concept carries, interactions
     included; n (k + 2) runs of the network after the layer per image. Averaged over the images.
   Concepts are sorted by importance (gradient × coefficient by its size; its sign is shown in both modes).
4. Where a concept lies in any image: its coefficient at each map position (:func:`concept_maps`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import tensorflow as tf
from PIL import Image

from convvis_core.cache import ResultCache, default_cache
from convvis_core.cam.base import BATCH_SIZE, Probe, as_float32
from convvis_core.cam.replaced import run_replaced
from convvis_core.cam.targets import Target
from convvis_core.concepts.crops import crop_side, cut, random_boxes
from convvis_core.concepts.factorization import LayerParts, factorize, project
from convvis_core.concepts.layer_reading import CACHE_NAMESPACE, LayerReading, check_parts, layer_reading, seen_pixels
from convvis_core.concepts.sobol import jansen_total_indices, replicated_design
from convvis_core.config import MAX_CONCEPT_CROPS, MAX_CONCEPT_IMAGES, MAX_CONCEPTS
from convvis_core.counters import WorkCounter
from convvis_core.errors import ConceptError
from convvis_core.images import Fit
from convvis_core.models.base import LoadedModel
from convvis_core.progress import StepProgress

IMPORTANCES = {"gradient": "gradient × coefficient", "sobol": "Sobol total index"}
CRAFTS = WorkCounter()  # CRAFT runs computed (not served from the cache), by layer path
REPLACED_BYTES = 64 * 1024**2  # rebuilt activations per run of the network after the layer (the rows of one call)


@dataclass(frozen=True, eq=False)
class Craft(LayerParts):
    """The concepts of one layer for one target: arrays indexed by concept in the factorization's order;
    :attr:`order` sorts them by importance; each concept's ``vector``, ``direction`` (feature visualization)
    and ``strongest_channels`` come from :class:`LayerParts`."""

    layer: str
    target: Target
    importance: str  # a key of IMPORTANCES: which number ranks the concepts
    images: np.ndarray = field(repr=False)  # (n, H, W, C) uint8: the target's images as the model sees them
    boxes: np.ndarray = field(repr=False)  # (N, 3) ints: each crop's image, top, left
    side: int  # every crop's side, in pixels of the images
    coefficients: np.ndarray = field(repr=False)  # U (N, k): how much of each concept each crop holds
    bank: np.ndarray = field(repr=False)  # W (k, C), unit rows: the concepts, directions in channel space
    image_coefficients: np.ndarray = field(repr=False)  # (n, h, w, k): each image's map positions on the concepts
    gradient_x_coefficient: np.ndarray  # (k,) mean over the images, signed
    sobol: np.ndarray | None  # (k,) mean Sobol total index over the images; None in the fast mode
    error: float  # ‖A − U W‖ / ‖A‖ over the crops' averaged activations
    negative_share: float  # share of the crops' activation mass below 0, clipped for the factorization
    designs: int  # Sobol: QMC designs per image (runs per image: designs × (k + 2))
    seconds: float  # what computing it took (0 when served from the cache: see ``from_cache``)
    from_cache: bool = False

    @property
    def count(self) -> int:
        return len(self.bank)

    @property
    def order(self) -> np.ndarray:
        """Concept indices, most important first (gradient × coefficient by its size)."""
        return np.argsort(-(self.sobol if self.importance == "sobol" else np.abs(self.gradient_x_coefficient)),
                          kind="stable")

    def effect(self, concept: int) -> str:
        """Whether the concept "raises" or "lowers" the target (the sign of gradient × coefficient)."""
        return "raises" if self.gradient_x_coefficient[concept] >= 0 else "lowers"

    @property
    def runs(self) -> int:
        """Runs of the network after the layer that the importance took (0 for gradient × coefficient)."""
        return len(self.images) * self.designs * (self.count + 2) if self.importance == "sobol" else 0

    def cost(self) -> str:
        """What the importance cost, in words."""
        read = (f"{len(self.boxes):,} crops read once (forward) and {len(self.images):,} images once (forward and "
                "backward)")
        if self.importance == "sobol":
            return (f"Sobol total indices: {read}, then {self.runs:,} runs of the network after {self.layer} "
                    f"({self.designs} QMC designs × {self.count + 2} per image)")
        return f"gradient × coefficient: {read}; no further runs"

    def top_crops(self, concept: int, count: int = 10) -> np.ndarray:
        """Indices of the ``count`` crops that hold ``concept`` most, most first."""
        return np.argsort(-self.coefficients[:, concept], kind="stable")[:count]

    def crops(self, indices: Sequence[int]) -> np.ndarray:
        """The crops at ``indices`` as the model saw them (resized to its input), uint8 (len, H, W, C)."""
        return cut(self.images, self.boxes[np.asarray(indices, int)], self.side)

    def concept_images(self, concept: int, count: int = 10) -> np.ndarray:
        """The crops that hold ``concept`` most, uint8 (count, H, W, C): concept images for TCAV
        ("test this concept on other classes")."""
        return self.crops(self.top_crops(concept, count))

    def rows(self) -> list[dict]:
        """One row per concept, most important first (a CSV of scores)."""
        rows = []
        for rank, concept in enumerate(self.order, start=1):
            row = {"rank": rank, "concept": int(concept)}
            if self.sobol is not None:
                row["sobol total index"] = float(self.sobol[concept])
            row |= {"gradient × coefficient": float(self.gradient_x_coefficient[concept]),
                    "effect": self.effect(concept),
                    "share of crops": float(np.mean(np.argmax(self.coefficients, axis=1) == concept)),
                    "strongest channels": " ".join(str(channel) for channel, _ in self.strongest_channels(concept))}
            rows.append(row)
        return rows

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {name: getattr(self, name) for name in
                  ("images", "boxes", "coefficients", "bank", "image_coefficients", "gradient_x_coefficient")}
        return arrays | {"sobol": np.zeros(0) if self.sobol is None else self.sobol,
                         "numbers": np.array([self.side, self.error, self.negative_share, self.designs, self.seconds])}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], layer: str, target: Target, importance: str) -> "Craft":
        side, error, negative, designs, seconds = arrays["numbers"]
        sobol = arrays["sobol"] if len(arrays["sobol"]) else None
        return cls(layer, target, importance, arrays["images"], arrays["boxes"], int(side), arrays["coefficients"],
                   arrays["bank"], arrays["image_coefficients"], arrays["gradient_x_coefficient"], sobol, float(error),
                   float(negative), int(designs), float(seconds), from_cache=True)


def _masked_values(probe: Probe, pixels: tf.Tensor, index: tf.Tensor, extra: tf.Tensor, activations: tf.Tensor,
                   parts: tf.Tensor, masks: tf.Tensor) -> tf.Tensor:
    """The target's value for each row of ``masks`` (M, k), with the layer's ``activations`` (1, h, w, C)
    rebuilt as A + Σ_k (m_k − 1) U_k W_k from each concept's ``parts`` U_k W_k (h, w, k, C)."""
    changed = activations + tf.tensordot(masks - 1.0, parts, axes=[[1], [2]])  # (M, h, w, C)
    (output,) = run_replaced(probe.target_model, probe.layer_model.outputs[0], probe.preprocess(pixels), [changed])
    return probe.kind.value(as_float32(output), index, extra)


def sobol_indices(reading: LayerReading, pixels: np.ndarray, activations: np.ndarray, coefficients: np.ndarray,
                  bank: np.ndarray, designs: int, seed: int) -> np.ndarray:
    """One image's Sobol total index of each concept (k,): ``pixels`` (H, W, C), its ``activations``
    (h, w, C) and ``coefficients`` (h, w, k) at the layer; the runs in calls of equal size (one trace)."""
    masks = replicated_design(len(bank), designs, seed)
    parts = tf.constant(coefficients[..., None] * bank, tf.float32)  # (h, w, k, C)
    rows = int(max(1, min(len(masks), REPLACED_BYTES // (activations.size * 4))))
    image, held = pixels[None].astype(np.float32), tf.constant(activations[None], tf.float32)
    values = []
    for start in range(0, len(masks), rows):
        chunk = masks[start:start + rows]
        padded = np.concatenate([chunk, np.ones((rows - len(chunk), chunk.shape[1]), np.float32)])
        values.append(reading.probe.call(_masked_values, image, reading.target, held, parts,
                                         tf.constant(padded)).numpy()[:len(chunk)])
    return jansen_total_indices(np.concatenate(values), designs, len(bank))


def check_settings(images: int, concepts: int, crops: int, crop_fraction: float, importance: str, designs: int) -> None:
    if images == 0:
        raise ConceptError("CRAFT needs images of the target (or one image, for its crops): none were given.")
    if images > MAX_CONCEPT_IMAGES:
        raise ConceptError(f"CRAFT reads 1 to {MAX_CONCEPT_IMAGES} images of the target; got {images}.")
    if not 1 <= crops <= MAX_CONCEPT_CROPS:
        raise ConceptError(f"CRAFT takes 1 to {MAX_CONCEPT_CROPS:,} crops; got {crops:,}.")
    if concepts > MAX_CONCEPTS:
        raise ConceptError(f"CRAFT finds at most {MAX_CONCEPTS} concepts; got {concepts}.")
    if not 0 < crop_fraction <= 1:
        raise ConceptError(f"A crop's side is a fraction of the image's (0 to 1]; got {crop_fraction}.")
    if importance not in IMPORTANCES:
        raise ConceptError(f"Importance {importance!r} is not known: choose "
                           + " or ".join(f"'{name}' ({title})" for name, title in IMPORTANCES.items()) + ".")
    if importance == "sobol" and designs < 2:
        raise ConceptError(f"Sobol indices need at least 2 designs (32 is usual); got {designs}.")


def craft_concepts(loaded: LoadedModel, images: Sequence[Image.Image] | np.ndarray, target: Target | None = None,
                   layer: str | None = None, concepts: int = 10, crops: int = 200, crop_fraction: float = 0.35,
                   importance: str = "gradient", designs: int = 32, seed: int = 0, fit: Fit = "stretch",
                   progress: StepProgress | None = None, cache: ResultCache | None = None) -> Craft:
    """CRAFT over ``images`` of ``target`` (default: the class the model predicts most often over them) at
    ``layer`` (default: the last with a real map): ``concepts`` concepts from ``crops`` random crops
    (each ``crop_fraction`` of an image's side), ranked by ``importance`` ("gradient" or "sobol", with
    ``designs`` QMC designs per image). One image gives its own crops. ``images`` may be a uint8 batch at
    the model's input size, taken as it is. Cached on disk by the model, the
    layer, the target, the images and every setting."""
    check_settings(len(images), concepts, crops, crop_fraction, importance, designs)
    pixels = seen_pixels(images, loaded, fit)
    reading = layer_reading(loaded, layer, target, pixels, "CRAFT")
    check_parts(concepts, reading.layer, crops, "crops", "CRAFT's concepts")
    settings = dict(concepts=concepts, crops=crops, crop_fraction=crop_fraction, importance=importance,
                    designs=designs if importance == "sobol" else 0, seed=seed)
    cache = cache or default_cache(CACHE_NAMESPACE)
    key = reading.key("craft", pixels, **settings)
    with cache.computing(key):
        stored = cache.get(key)
        if stored is not None:
            return Craft.from_arrays(stored, reading.layer.path, reading.target, importance)
        found = _computed(reading, pixels, concepts, crops, crop_fraction, importance, designs, seed, progress)
        CRAFTS.add(reading.layer.path)
        cache.put(key, found.to_arrays())
    return found


def _computed(reading: LayerReading, pixels: np.ndarray, concepts: int, crops: int, crop_fraction: float,
              importance: str, designs: int, seed: int, progress: StepProgress | None) -> Craft:
    started = time.perf_counter()
    count, height, width = pixels.shape[:3]
    side = crop_side(height, width, crop_fraction)
    boxes = random_boxes(crops, count, height, width, side, seed)
    total = crops + count + (count if importance == "sobol" else 0)
    means = np.concatenate([activations.mean(axis=(1, 2)) for start in range(0, crops, BATCH_SIZE)
                            for _, activations, _ in reading.batches(cut(pixels, boxes[start:start + BATCH_SIZE], side),
                                                                     False, progress, start, total)])
    if not means.any():
        raise ConceptError(f"{reading.layer.path} is silent (all zero) on every crop: there is nothing to factorize; "
                           "try an earlier layer.")
    factorized = factorize(means, concepts, seed)
    activations, gradients = zip(*((found, grads) for _, found, grads in reading.batches(
        pixels, gradients=True, progress=progress, done=crops, total=total)))
    activations, gradients = np.concatenate(activations), np.concatenate(gradients)
    if not gradients.any():
        raise ConceptError(f"The gradient of {reading.target.describe()} is zero everywhere at {reading.layer.path} "
                           "on these images (the path is saturated): no concept can move it; try another layer.")
    bank = factorized.bank
    image_coefficients = project(activations, bank)  # (n, h, w, k)
    gradient_x_coefficient = np.einsum("nhwk,nhwc,kc->k", image_coefficients, gradients, bank, optimize=True) / count
    sobol = None
    if importance == "sobol":
        per_image = []
        for index in range(count):
            per_image.append(sobol_indices(reading, pixels[index], activations[index], image_coefficients[index], bank,
                                           designs, seed))
            if progress:
                progress(crops + count + index + 1, total)
        sobol = np.mean(per_image, axis=0)
    return Craft(reading.layer.path, reading.target, importance, pixels, boxes, side, factorized.coefficients, bank,
                 image_coefficients, gradient_x_coefficient.astype(np.float32), sobol, factorized.error,
                 factorized.negative_share, designs if importance == "sobol" else 0, time.perf_counter() - started)


def concept_maps(loaded: LoadedModel, image: Image.Image, found: Craft, fit: Fit = "stretch") -> np.ndarray:
    """Where each concept lies in ``image``: its coefficient at each position of the layer's map, (h, w, k)
    (one forward pass, then each position's activations projected on the concepts)."""
    pixels = seen_pixels([image], loaded, fit)
    reading = layer_reading(loaded, found.layer, found.target, pixels, "A concept map")
    activations, _ = reading.probe.capture(pixels.astype(np.float32), reading.target, gradients=False)
    return project(activations[0], found.bank)
