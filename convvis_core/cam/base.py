"""The one mechanism every heatmap method shares (pytorch-grad-cam's ``base_cam``, in Keras 3).

A :class:`Probe` is a two-output sub-model [layer, target output], cut from the model's one flat
graph (so the target depends on the layer even inside a nested base model), with its passes
traced once: one ``tf.GradientTape`` pass captures the layer's activations A and the gradients
dS/dA of the target's scalar S. A class activation map method only says how to weight A
(:meth:`CamMethod.weights`: per channel, or per element); the base sums the weighted maps over
channels, applies ReLU, resizes to the input, normalizes to 0..1, and refuses to return a map that
is empty, flat or not finite, saying why.
"""

from __future__ import annotations

import functools
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from convvis_core.cam.targets import ClassTarget, Target, check_target, default_target
from convvis_core.config import MAX_PROBES_PER_MODEL
from convvis_core.errors import ConvVisError
from convvis_core.images import Fit, model_input
from convvis_core.graph import sub_model
from convvis_core.layers import default_layer, find_layer
from convvis_core.models.base import LoadedModel
from convvis_core.per_model import PerModelCache


class EmptyHeatmapError(ConvVisError):
    """A map with nothing to show (all zero, flat, or not finite); the message says why."""


@dataclass(frozen=True)
class Heatmap:
    """Where the model looked, for one target: 1 marks the most important pixels."""

    method: str  # a key of ``METHODS``
    values: np.ndarray  # (H, W) float32 in 0..1, at the model's input size
    target: Target  # pinned: a concrete class or filter, never "the top prediction"
    layer: str | None  # the layer the map was computed at; None for input-gradient maps


class Probe:
    """Traced passes for one (model, layer, target source), built once and reused for every class,
    filter and method; traced functions take the target index as a tensor."""

    def __init__(self, model: keras.Model, layer: str | None, source: str, kind: type):
        self.target_model = sub_model(model, [source])
        self.layer_model = None if layer is None else sub_model(model, [layer, source])
        self.kind = kind
        self._traced: dict[Callable, Callable] = {}
        self._lock = threading.Lock()

    def traced(self, function: Callable) -> Callable:
        """``function(probe, *tensors)`` as a ``tf.function``, traced once per probe (methods add
        their own passes this way); sessions calling at once share it (tf.function itself is
        thread-safe: it traces under its own lock)."""
        with self._lock:
            if function not in self._traced:
                self._traced[function] = tf.function(functools.partial(function, self), reduce_retracing=True)
            return self._traced[function]

    def outputs(self, inputs: np.ndarray) -> np.ndarray:
        """The target's source output (logits, or the layer's maps)."""
        return np.asarray(self.target_model(inputs, training=False))

    def scores(self, inputs: tf.Tensor | np.ndarray, index: int) -> np.ndarray:
        """The target's score (class probability, or mean filter activation) for each image."""
        return self.traced(_scores)(tf.convert_to_tensor(inputs, tf.float32), tf.constant(index, tf.int32)).numpy()

    def capture(self, inputs: np.ndarray, index: int, gradients: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """The layer's activations and the gradients of the target's value, each (h, w, C), for one image."""
        if not gradients:
            return np.asarray(self.layer_model(inputs, training=False)[0])[0], None
        activations, grads = self.traced(_capture)(tf.convert_to_tensor(inputs, tf.float32),
                                                   tf.constant(index, tf.int32))
        return activations.numpy()[0], grads.numpy()[0]

    def input_gradients(self, inputs: np.ndarray, index: int) -> np.ndarray:
        """Gradients of the target's value with respect to each input image, (N, H, W, C)."""
        return self.traced(_input_gradients)(tf.convert_to_tensor(inputs, tf.float32),
                                             tf.constant(index, tf.int32)).numpy()


def _scores(probe: Probe, inputs: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    return probe.kind.score(probe.target_model(inputs, training=False), index)


def _capture(probe: Probe, inputs: tf.Tensor, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(inputs)  # records every op from the input on, frozen weights included
        activations, outputs = probe.layer_model(inputs, training=False)
        value = tf.reduce_sum(probe.kind.value(outputs, index))
    gradients = tape.gradient(value, activations)  # None: the target does not depend on the layer (comes before it)
    return activations, tf.zeros_like(activations) if gradients is None else gradients


def _input_gradients(probe: Probe, inputs: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(inputs)
        value = tf.reduce_sum(probe.kind.value(probe.target_model(inputs, training=False), index))
    return tape.gradient(value, inputs)


_PROBES = PerModelCache(MAX_PROBES_PER_MODEL)


def probe_for(model: keras.Model, layer: str | None, target: Target) -> Probe:
    """The cached probe reaching ``layer`` (None: the target's output only) for ``target``'s kind;
    the most recently used ``MAX_PROBES_PER_MODEL`` are kept."""
    return _PROBES.get(model, (layer, target.source), lambda: Probe(model, layer, target.source, type(target)))


def pinned(target: Target, probe: Probe, inputs: np.ndarray) -> Target:
    """A class target for "the top prediction" replaced by the class the model actually predicts."""
    if isinstance(target, ClassTarget) and target.index is None:
        return ClassTarget(int(np.argmax(probe.outputs(inputs)[0])))
    return target


def resized(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A 2-D map bilinearly resized to ``size`` = (height, width), pixel centres aligned."""
    if values.shape == tuple(size):
        return values.astype(np.float32)
    return tf.image.resize(values[None, :, :, None].astype(np.float32), size, "bilinear").numpy()[0, :, :, 0]


class HeatmapMethod(ABC):
    """What every method does around its own map: choose the layer and target, run, check, normalize."""

    name: ClassVar[str]  # key in METHODS and on the command line
    title: ClassVar[str]  # as shown to users
    uses_layer: ClassVar[bool] = True

    def explain(self, loaded: LoadedModel, image: Image.Image, target: Target | None = None,
                layer: str | None = None, fit: Fit = "stretch") -> Heatmap:
        """The heatmap of ``target`` (default: the top class, or the most active filter) at ``layer``
        (default: the last layer with a real map). Raises :class:`EmptyHeatmapError` with the reason
        when the map would be empty."""
        model = loaded.model
        layer = (find_layer(model, layer) if layer else default_layer(model)).path
        target = default_target(loaded, image, layer, fit) if target is None else target
        check_target(loaded, target)
        inputs = model_input(image, loaded.info, fit)
        probe = probe_for(model, layer if self.uses_layer else None, target)
        target = pinned(target, probe, inputs)
        raw = self.raw_map(probe, inputs, target, layer)
        values = resized(raw, inputs.shape[1:3])
        low, high = float(values.min()), float(values.max())
        if not high > low:
            raise EmptyHeatmapError(
                f"{self.title}: the map is flat ({raw.shape[0]}×{raw.shape[1]} at {layer}, the same value "
                "everywhere), so it cannot say where the evidence is; choose a layer with a larger map.")
        return Heatmap(self.name, (values - low) / (high - low), target, layer if self.uses_layer else None)

    @abstractmethod
    def raw_map(self, probe: Probe, inputs: np.ndarray, target: Target, layer: str) -> np.ndarray:
        """A finite, non-negative 2-D map with a positive maximum, or :class:`EmptyHeatmapError`."""


@dataclass(frozen=True)
class Capture:
    """What one pass saw at the layer, for one image."""

    probe: Probe
    inputs: np.ndarray  # (1, H, W, C), preprocessed
    activations: np.ndarray  # A, (h, w, C)
    gradients: np.ndarray | None  # dS/dA, (h, w, C); None for gradient-free methods
    target: Target
    layer: str


class CamMethod(HeatmapMethod):
    """A class activation map: ReLU(sum over channels of weights · A). Subclasses give the weights."""

    needs_gradients: ClassVar[bool] = True

    @abstractmethod
    def weights(self, capture: Capture) -> np.ndarray:
        """One weight per channel, (C,), or one per element of A, (h, w, C)."""

    def raw_map(self, probe: Probe, inputs: np.ndarray, target: Target, layer: str) -> np.ndarray:
        activations, gradients = probe.capture(inputs, target.index, self.needs_gradients)
        capture = Capture(probe, inputs, activations, gradients, target, layer)
        weights = self.weights(capture)
        cam = np.maximum((activations * weights).sum(axis=-1), 0.0)
        if not (np.isfinite(cam).all() and cam.max() > 0):
            raise EmptyHeatmapError(f"{self.title}: no map for {target.describe()} at {layer}: "
                                    f"{self.why_empty(capture, weights)}.")
        return cam

    def why_empty(self, capture: Capture, weights: np.ndarray) -> str:
        """The reason a map came out all zero (or not finite), in words a user can act on."""
        grads = capture.gradients
        if not (np.isfinite(capture.activations).all() and (grads is None or np.isfinite(grads).all())
                and np.isfinite(weights).all()):
            return "the activations or gradients are not finite (NaN or infinity); the model overflows on this image"
        if not capture.activations.any():
            return "the layer's activations are all zero on this image, so there is nothing to weight; try an earlier layer"
        if grads is not None and not grads.any():
            return ("the target's gradient is zero everywhere at this layer: the target does not depend on it "
                    "(it comes after the target, or the path is saturated); try another layer or target")
        if not (weights > 0).any():
            return ("all channel weights are negative for this target at this layer: the layer holds no positive "
                    "evidence; try an earlier layer or another class")
        return ("the positively and negatively weighted maps cancel out: their sum is at most zero everywhere, so "
                "the layer holds no positive evidence; try an earlier layer or another class")
