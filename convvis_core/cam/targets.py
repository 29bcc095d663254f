"""What a heatmap explains: one scalar per image, as small objects (pytorch-grad-cam's targets).

A target names the model output it reads (``source``: the class logits or a layer path) and
reduces that output to one number per image. Gradients follow ``value`` (for a class, the logit:
it does not saturate as the softmax does); Score-CAM weights and the faithfulness curves follow
``score`` (for a class, its probability, which is what users read). Traced code gets the index as
a tensor, so asking about another class or filter does not re-trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol, Sequence

import numpy as np
import tensorflow as tf
from PIL import Image

from convvis_core.activations import channel_stats, feature_maps
from convvis_core.errors import ConvVisError, LayerError
from convvis_core.images import Fit
from convvis_core.graph import LOGITS
from convvis_core.layers import find_layer
from convvis_core.models.base import LoadedModel


class Target(Protocol):
    index: int | None
    score_name: ClassVar[str]

    @property
    def source(self) -> str: ...

    @staticmethod
    def value(outputs: tf.Tensor, index: tf.Tensor) -> tf.Tensor: ...

    @staticmethod
    def score(outputs: tf.Tensor, index: tf.Tensor) -> tf.Tensor: ...

    def describe(self, class_names: Sequence[str] | None = None) -> str: ...


@dataclass(frozen=True)
class ClassTarget:
    """A class's pre-softmax score; ``index=None`` means the image's top prediction."""

    index: int | None = None
    source: ClassVar[str] = LOGITS
    score_name: ClassVar[str] = "probability"

    @staticmethod
    def value(logits: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        return tf.gather(logits, index, axis=-1)

    @staticmethod
    def score(logits: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        return tf.gather(tf.nn.softmax(logits), index, axis=-1)

    def describe(self, class_names: Sequence[str] | None = None) -> str:
        if self.index is None:
            return "the top prediction"
        name = class_names[self.index] if class_names and self.index < len(class_names) else None
        return f"{name} (class {self.index})" if name else f"class {self.index}"


@dataclass(frozen=True)
class FilterTarget:
    """The mean activation of one filter (channel) of any spatial layer: needs no classifier head."""

    layer: str
    index: int
    score_name: ClassVar[str] = "mean activation"

    @property
    def source(self) -> str:
        return self.layer

    @staticmethod
    def value(maps: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(tf.gather(maps, index, axis=-1), axis=[1, 2])

    score = value

    def describe(self, class_names: Sequence[str] | None = None) -> str:
        return f"filter {self.index} of {self.layer}"


def check_target(loaded: LoadedModel, target: Target) -> None:
    """Raise a :class:`ConvVisError` saying what is wrong with a target for this model."""
    if isinstance(target, ClassTarget):
        names = loaded.info.class_names
        if not loaded.info.is_classifier:
            raise ConvVisError(f"{loaded.info.display_name} has no classes, so there is no class to explain. "
                               "Explain a filter instead (a layer and a filter index).")
        if target.index is not None and not 0 <= target.index < len(names):
            raise ConvVisError(f"Class {target.index} is out of range: {loaded.info.display_name} has "
                               f"{len(names)} classes (0–{len(names) - 1}).")
    elif isinstance(target, FilterTarget):
        channels = find_layer(loaded.model, target.layer).channels
        if not 0 <= target.index < channels:
            raise LayerError(f"Filter {target.index} is out of range: {target.layer} has {channels} "
                             f"filters (0–{channels - 1}).")


def strongest_filter(loaded: LoadedModel, image: Image.Image, layer: str, fit: Fit = "stretch") -> int:
    """The filter of ``layer`` with the highest mean activation on this image: a live default."""
    return int(np.argmax(channel_stats(feature_maps(loaded, image, [layer], fit)[layer]).mean))


def default_target(loaded: LoadedModel, image: Image.Image, layer: str, fit: Fit = "stretch") -> Target:
    """The top prediction for a classifier; otherwise the layer's most active filter on this image."""
    if loaded.info.is_classifier:
        return ClassTarget()
    return FilterTarget(layer, strongest_filter(loaded, image, layer, fit))
