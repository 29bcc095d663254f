"""What a heatmap explains: one scalar per image, as small objects (pytorch-grad-cam's targets).

A target names the model output it reads (``source``: the output's logits or a layer path) and
reduces that output to one number per image. Gradients follow ``value`` (for a class, the logit:
it does not saturate as the softmax does); Score-CAM weights and the faithfulness curves follow
``score``, which reads the source as the model's head gives it: for a class, its probability under
a softmax head, its own sigmoid under a sigmoid head (one label, or several that may all be on), its
logit under a linear head (the probe squashes logits so, see ``Probe.score``; :func:`score_name`
says what the score is).
Traced code gets what varies between targets of one kind (the class index, a region mask, a
reference embedding) as tensors, from :meth:`arguments`, so asking about another class, region or
reference does not re-trace. Those tensors hold one row per image (:func:`batch_arguments`), or one
row for a whole batch (the masked, noisy or path copies of one image): one traced pass explains a
batch of images, each for its own target (:func:`per_image`).

Kinds, by what the chosen output holds: class scores (``ClassTarget``), a feature map of any layer
(``FilterTarget``), values such as a regression or an embedding (``OutputUnitTarget``,
``OutputNormTarget``, ``SimilarityTarget``), and per-pixel class maps (``RegionTarget``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol, Sequence

import numpy as np
import tensorflow as tf
from PIL import Image

from convvis_core.activations import channel_stats, feature_maps
from convvis_core.batches import model_input
from convvis_core.errors import LayerError, TargetError
from convvis_core.graph import LOGITS, OUTPUT, output_squash
from convvis_core.images import Fit
from convvis_core.layers import default_layer, find_layer
from convvis_core.models.base import LoadedModel

NO_ARGUMENT = np.zeros((), np.float32)  # the second argument of targets that need only an index
WHOLE_MAP = np.ones((1, 1), np.float32)  # a region target's mask for every pixel (broadcast to the map)


class Target(Protocol):
    index: int | None
    score_name: ClassVar[str]

    @property
    def source(self) -> str: ...

    def arguments(self) -> tuple[np.ndarray, np.ndarray]: ...

    @staticmethod
    def value(outputs: tf.Tensor, index: tf.Tensor, extra: tf.Tensor) -> tf.Tensor: ...

    @staticmethod
    def score(scores: tf.Tensor, index: tf.Tensor, extra: tf.Tensor) -> tf.Tensor: ...

    def describe(self, class_names: Sequence[str] | None = None) -> str: ...


def per_image(argument: tf.Tensor, outputs: tf.Tensor) -> tf.Tensor:
    """A target argument with one row per image, or one row (or a scalar) for the whole batch, as one
    row for each image of ``outputs``."""
    argument = tf.convert_to_tensor(argument)
    return tf.broadcast_to(argument, tf.concat([tf.shape(outputs)[:1], tf.shape(argument)[1:]], axis=0))


def _gathered(outputs: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """Each image's unit ``index`` of the last axis of ``outputs`` (its class, filter or output unit)."""
    return tf.gather(outputs, per_image(index, outputs), axis=-1, batch_dims=1)


def batch_arguments(targets: Sequence[Target]) -> tuple[np.ndarray, np.ndarray]:
    """The arguments of targets of one kind, one row per target (a region and the whole map broadcast alike)."""
    indices, extras = zip(*(target.arguments() for target in targets))
    return np.stack(indices), np.stack(np.broadcast_arrays(*extras))


def _indexed(self) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(self.index or 0, np.int32), NO_ARGUMENT


def _named(index: int, class_names: Sequence[str] | None, what: str = "class") -> str:
    name = class_names[index] if class_names and index < len(class_names) else None
    return f"{name} ({what} {index})" if name and name != f"{what} {index}" else f"{what} {index}"


@dataclass(frozen=True)
class ClassTarget:
    """A class: its logit (the score before the head's softmax or sigmoid) for gradients, what the head
    makes of it for the score; ``index=None`` means the image's top prediction."""

    index: int | None = None
    source: ClassVar[str] = LOGITS
    score_name: ClassVar[str] = "probability"
    arguments = _indexed

    @staticmethod
    def value(logits: tf.Tensor, index: tf.Tensor, extra: tf.Tensor) -> tf.Tensor:
        return _gathered(logits, index)

    score = value  # of the head's scores: the same unit, after the head's own activation

    def describe(self, class_names: Sequence[str] | None = None) -> str:
        return "the top prediction" if self.index is None else _named(self.index, class_names)


@dataclass(frozen=True)
class FilterTarget:
    """The mean activation of one filter (channel) of any spatial layer: needs no classifier head."""

    layer: str
    index: int
    score_name: ClassVar[str] = "mean activation"
    arguments = _indexed

    @property
    def source(self) -> str:
        return self.layer

    @staticmethod
    def value(maps: tf.Tensor, index: tf.Tensor, extra: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(_gathered(maps, index), axis=[1, 2])

    score = value

    def describe(self, class_names: Sequence[str] | None = None) -> str:
        return f"filter {self.index} of {self.layer}"


@dataclass(frozen=True)
class OutputUnitTarget:
    """One unit of a values output (a regression's prediction, one embedding dimension), as it is."""

    index: int
    source: ClassVar[str] = OUTPUT
    score_name: ClassVar[str] = "output value"
    arguments = _indexed

    @staticmethod
    def value(outputs: tf.Tensor, index: tf.Tensor, extra: tf.Tensor) -> tf.Tensor:
        return _gathered(outputs, index)

    score = value

    def describe(self, class_names: Sequence[str] | None = None) -> str:
        return _named(self.index, class_names, "output unit")


@dataclass(frozen=True)
class OutputNormTarget:
    """The Euclidean norm of the whole output vector: how strongly the image drives it at all."""

    index: ClassVar[None] = None
    source: ClassVar[str] = OUTPUT
    score_name: ClassVar[str] = "output norm"
    arguments = _indexed

    @staticmethod
    def value(outputs: tf.Tensor, index: tf.Tensor, extra: tf.Tensor) -> tf.Tensor:
        return tf.norm(tf.reshape(outputs, [tf.shape(outputs)[0], -1]), axis=-1)

    score = value

    def describe(self, class_names: Sequence[str] | None = None) -> str:
        return "the output's norm"


@dataclass(frozen=True)
class SimilarityTarget:
    """Cosine similarity of the output to a reference output (pytorch-grad-cam's similarity target):
    for embedding models, "what in this picture makes it look like the reference"."""

    reference: tuple[float, ...]  # the reference image's output, flattened
    reference_name: str = "the reference image"
    index: ClassVar[None] = None
    source: ClassVar[str] = OUTPUT
    score_name: ClassVar[str] = "cosine similarity to the reference"

    def arguments(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(0, np.int32), np.asarray(self.reference, np.float32)

    @staticmethod
    def value(outputs: tf.Tensor, index: tf.Tensor, reference: tf.Tensor) -> tf.Tensor:
        flat = tf.reshape(outputs, [tf.shape(outputs)[0], -1])
        reference = tf.math.l2_normalize(per_image(reference, flat), axis=-1)
        return tf.reduce_sum(tf.math.l2_normalize(flat, axis=-1) * reference, axis=-1)

    score = value

    def describe(self, class_names: Sequence[str] | None = None) -> str:
        return f"similarity to {self.reference_name}"


@dataclass(frozen=True)
class Region:
    """A set of pixels of a segmentation output's map, packed so that it hashes (cache keys)."""

    shape: tuple[int, int]  # (h, w) of the output map
    bits: bytes  # np.packbits of the boolean mask, row-major
    name: str = "the drawn region"

    @classmethod
    def of(cls, mask: np.ndarray, name: str = "the drawn region") -> "Region":
        mask = np.asarray(mask, bool)
        if mask.ndim != 2:
            raise TargetError(f"A region is a 2-D mask of the output map; got shape {mask.shape}.")
        return cls(tuple(int(side) for side in mask.shape), np.packbits(mask).tobytes(), name)

    @classmethod
    def box(cls, shape: tuple[int, int], top: int, left: int, bottom: int, right: int,
            name: str | None = None) -> "Region":
        """The pixels of rows top..bottom-1 and columns left..right-1 (clipped to the map)."""
        mask = np.zeros(shape, bool)
        mask[max(top, 0):max(bottom, 0), max(left, 0):max(right, 0)] = True
        return cls.of(mask, name or f"rows {top}–{bottom - 1}, columns {left}–{right - 1}")

    def mask(self) -> np.ndarray:
        size = self.shape[0] * self.shape[1]
        return np.unpackbits(np.frombuffer(self.bits, np.uint8), count=size).reshape(self.shape).astype(bool)

    @property
    def pixels(self) -> int:
        return int(self.mask().sum())


@dataclass(frozen=True)
class RegionTarget:
    """Class c of a segmentation output over a region (pytorch-grad-cam's SemanticSegmentationTarget):
    the sum of c's logits over the region's pixels; ``region=None`` is the whole image. Its score is
    the mean of c's score over the region: its probability as the head gives it (a softmax across the
    classes, or c's own sigmoid), its logit under a linear head."""

    index: int
    region: Region | None = None
    source: ClassVar[str] = LOGITS
    score_name: ClassVar[str] = "region's mean probability"

    def arguments(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.index, np.int32), (WHOLE_MAP if self.region is None
                                                  else self.region.mask().astype(np.float32))

    @staticmethod
    def value(logits: tf.Tensor, index: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(_gathered(logits, index) * per_image(mask, logits), axis=[1, 2])

    @staticmethod
    def score(scores: tf.Tensor, index: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        mask = tf.broadcast_to(per_image(mask, scores), tf.shape(scores)[:3])
        return tf.reduce_sum(_gathered(scores, index) * mask, axis=[1, 2]) / tf.reduce_sum(mask, axis=[1, 2])

    def describe(self, class_names: Sequence[str] | None = None) -> str:
        where = "the whole image" if self.region is None else self.region.name
        return f"{_named(self.index, class_names)} over {where}"


LINEAR_HEAD_SCORE_NAMES: dict[type, str] = {ClassTarget: "logit", RegionTarget: "region's mean logit"}


def score_name(loaded: LoadedModel, target: Target) -> str:
    """What ``target``'s score is on this model: a class's probability where the head squashes its
    logits (softmax, sigmoid), the logit itself where the head is linear."""
    if output_squash(loaded.model) is None:
        return LINEAR_HEAD_SCORE_NAMES.get(type(target), target.score_name)
    return target.score_name


def similarity_target(loaded: LoadedModel, reference: Image.Image, name: str, fit: Fit = "stretch") -> SimilarityTarget:
    """The similarity target to ``reference``'s output under the same model (and output)."""
    output = np.asarray(loaded.model(model_input(reference, loaded.info, fit), training=False), np.float64)
    return SimilarityTarget(tuple(output.ravel().tolist()), name)


def check_target(loaded: LoadedModel, target: Target) -> None:
    """Raise a :class:`TargetError` (for a filter out of range, a :class:`LayerError`) saying what is
    wrong with a target for this model."""
    info, output = loaded.info, loaded.info.output_info
    if isinstance(target, FilterTarget):
        channels = find_layer(loaded.model, target.layer).channels
        if not 0 <= target.index < channels:
            raise LayerError(f"Filter {target.index} is out of range: {target.layer} has {channels} "
                             f"filters (0–{channels - 1}).")
        return
    wanted = {ClassTarget: "classes", RegionTarget: "segmentation", OutputUnitTarget: "values",
              OutputNormTarget: "values", SimilarityTarget: "values"}.get(type(target))
    if wanted is None:
        raise TargetError(f"{type(target).__name__} is not a target ConvVis knows: explain a class, a filter, an "
                           "output unit, the output's norm, a similarity or a region.")
    if output.kind != wanted:
        raise TargetError(f"{info.display_name}'s output '{output.name}' {output.holds}, so it cannot be "
                           f"explained as {target.describe()}. " + output.what_to_explain)
    units = output.units
    if target.index is not None and not 0 <= target.index < units:
        what = "Output unit" if wanted == "values" else "Class"
        raise TargetError(f"{what} {target.index} is out of range: output '{output.name}' has {units} "
                           f"{'units' if wanted == 'values' else 'classes'} (0–{units - 1}).")
    if isinstance(target, SimilarityTarget) and len(target.reference) != int(np.prod(output.shape)):
        raise TargetError(f"The reference has {len(target.reference)} values but output '{output.name}' has "
                           f"{int(np.prod(output.shape))}: take the reference from the same model and output.")
    if isinstance(target, RegionTarget) and target.region is not None:
        if target.region.shape != tuple(output.shape[:2]):
            raise TargetError(f"The region is {target.region.shape[0]}×{target.region.shape[1]} but output "
                               f"'{output.name}' maps {output.shape[0]}×{output.shape[1]} pixels.")
        if target.region.pixels == 0:
            raise TargetError("The region holds no pixels: draw or pick a region that covers part of the image.")


INDEXED: dict[str, type] = {"classes": ClassTarget, "values": OutputUnitTarget, "segmentation": RegionTarget}


def indexed_target(loaded: LoadedModel, index: int, layer: str | None) -> Target:
    """What an int names: a class of a classifier, a unit of a values output, a class of a segmentation
    (over the whole image), else a filter of ``layer`` (default: the last layer with a map)."""
    kind = loaded.info.output_info.kind
    if kind in INDEXED:
        return INDEXED[kind](int(index))
    return FilterTarget(layer or default_layer(loaded.model).path, int(index))


def strongest_filter(loaded: LoadedModel, image: Image.Image, layer: str, fit: Fit = "stretch") -> int:
    """The filter of ``layer`` with the highest mean activation on this image: a live default."""
    return int(np.argmax(channel_stats(feature_maps(loaded, image, [layer], fit)[layer]).mean))


def default_target(loaded: LoadedModel, image: Image.Image, layer: str, fit: Fit = "stretch") -> Target:
    """The top prediction for a classifier; class 1 (the first after background) of a segmentation
    over the whole image; the norm of a values output; otherwise the layer's most active filter."""
    kind = loaded.info.output_info.kind
    if kind == "classes":
        return ClassTarget()
    if kind == "segmentation":
        return RegionTarget(min(1, loaded.info.output_info.units - 1))
    if kind == "values":
        return OutputUnitTarget(0) if loaded.info.output_info.units == 1 else OutputNormTarget()
    return FilterTarget(layer, strongest_filter(loaded, image, layer, fit))
