"""The one mechanism every heatmap method shares (pytorch-grad-cam's ``base_cam``, in Keras 3).

A :class:`Probe` is a two-output sub-model [layer, target output], cut from the model's one flat
graph (so the target depends on the layer even inside a nested base model), with its passes
traced once: one ``tf.GradientTape`` pass captures the layer's activations A and the gradients
dS/dA of the target's scalar S. A class activation map method only says how to weight A
(:meth:`CamMethod.weights`: per channel, or per element); the base sums the weighted maps over
channels, applies ReLU, resizes to the input, normalizes to 0..1, and refuses to return a map that
is empty, flat or not finite, saying why.

Images are explained in batches (:meth:`HeatmapMethod.explain_batch`; one image is a batch of one):
one pass captures every image's activations and gradients, each image for its own target, and only
the cheap per-image arithmetic (weights, ReLU, resizing) runs image by image.
"""

from __future__ import annotations

import functools
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from convvis_core.batches import pixel_batch
from convvis_core.cam.baselines import Baseline, baseline_pixels
from convvis_core.cam.completeness import Completeness
from convvis_core.cam.targets import ClassTarget, Target, batch_arguments, check_target, default_target
from convvis_core.config import MAX_PROBES_PER_MODEL
from convvis_core.errors import ConvVisError, TargetError
from convvis_core.images import Fit
from convvis_core.graph import LOGITS, output_squash, squashed, sub_model
from convvis_core.layers import default_layer, find_layer
from convvis_core.models.base import LoadedModel
from convvis_core.per_model import PerModelCache
from convvis_core.preprocessing import preprocess

BATCH_SIZE = 32  # images per pass of a batched explanation
Targets = Target | Sequence[Target]  # one target for every image of a pass, or one per image


class EmptyHeatmapError(ConvVisError):
    """A map with nothing to show (all zero, flat, or not finite); the message says why."""


@dataclass(frozen=True)
class Heatmap:
    """Where the model looked, for one target: 1 marks the most important pixels."""

    method: str  # a key of ``METHODS``
    values: np.ndarray  # (H, W) float32 in 0..1, at the model's input size
    target: Target  # pinned: a concrete class or filter, never "the top prediction"
    layer: str | None  # the layer the map was computed at; None for input-gradient maps
    completeness: Completeness | None = None  # Integrated Gradients: does the attributions' sum add up?


class Probe:
    """Traced passes for one (model, layer, target source and kind, preprocessing), built once and
    reused for every class, filter and method. Every pass takes pixels (0..255, before preprocessing)
    and preprocesses them inside, so masks, noise, baselines and input gradients live in pixel space
    wherever the model keeps its preprocessing. Traced functions take the target's arguments as
    tensors (:meth:`Target.arguments`), so another class, region or reference does not re-trace.
    ``layer`` may be several layers (a tuple of paths): one pass then captures them all (:meth:`capture_layers`)."""

    def __init__(self, model: keras.Model, layer: str | tuple[str, ...] | None, source: str, kind: type,
                 preprocessing: str):
        self.layers = () if layer is None else (layer,) if isinstance(layer, str) else tuple(layer)
        self.target_model = sub_model(model, [source])
        self.layer_model = sub_model(model, [*self.layers, source]) if self.layers else None
        self.kind = kind
        self.squash = output_squash(model) if source == LOGITS else None  # what the head makes of the logits
        self.preprocessing = preprocessing
        self._traced: dict[Callable, Callable] = {}
        self._lock = threading.Lock()

    def preprocess(self, pixels: tf.Tensor) -> tf.Tensor:
        return preprocess(pixels, self.preprocessing)

    def traced(self, function: Callable) -> Callable:
        """``function(probe, pixels, *tensors)`` as a ``tf.function``, traced once per probe (methods
        add their own passes this way); sessions calling at once share it (tf.function itself is
        thread-safe: it traces under its own lock)."""
        with self._lock:
            if function not in self._traced:
                self._traced[function] = tf.function(functools.partial(function, self), reduce_retracing=True)
            return self._traced[function]

    def call(self, function: Callable, pixels: tf.Tensor | np.ndarray, targets: Targets, *more) -> Any:
        """The traced ``function`` on pixels, the targets' arguments (one target for all images, or one
        per image), then ``more`` tensors."""
        index, extra = batch_arguments(targets if isinstance(targets, (list, tuple)) else [targets])
        return self.traced(function)(tf.convert_to_tensor(pixels, tf.float32), tf.constant(index),
                                     tf.constant(extra), *more)

    def score(self, outputs: tf.Tensor, index: tf.Tensor, extra: tf.Tensor) -> tf.Tensor:
        """The target's score of its source's outputs, class logits first squashed as the model's own
        head squashes them (a softmax, each unit's sigmoid, or not at all), in traced passes."""
        return self.kind.score(squashed(as_float32(outputs), self.squash), index, extra)

    def outputs(self, pixels: np.ndarray) -> np.ndarray:
        """The target's source output (logits, values, or the layer's maps), from a traced pass (an
        eager call of a model costs several times as much)."""
        return self.traced(_outputs)(tf.convert_to_tensor(pixels, tf.float32)).numpy()

    def scores(self, pixels: tf.Tensor | np.ndarray, targets: Targets) -> np.ndarray:
        """The target's score (class probability, mean filter activation, ...) for each image."""
        return self.call(_scores, pixels, targets).numpy()

    def values(self, pixels: tf.Tensor | np.ndarray, targets: Targets) -> np.ndarray:
        """The target's value (what gradients follow: a logit, ...) for each image."""
        return self.call(_values, pixels, targets).numpy()

    def capture(self, pixels: np.ndarray, targets: Targets, gradients: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """The layer's activations and the gradients of each image's target value, each (N, h, w, C)."""
        activations, grads = self.capture_layers(pixels, targets, gradients)
        return activations[0], None if grads is None else grads[0]

    def capture_layers(self, pixels: np.ndarray, targets: Targets,
                       gradients: bool = True) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """:meth:`capture` for every layer of the probe, in its order, from one forward (and backward) pass."""
        if not gradients:
            return [found.numpy() for found in self.traced(_activations)(tf.convert_to_tensor(pixels, tf.float32))], None
        activations, grads = self.call(_capture, pixels, targets)
        return [found.numpy() for found in activations], [found.numpy() for found in grads]

    def input_gradients(self, pixels: np.ndarray, targets: Targets) -> np.ndarray:
        """Gradients of the target's value with respect to each image's pixels, (N, H, W, C)."""
        return self.call(_input_gradients, pixels, targets).numpy()


def _outputs(probe: Probe, pixels: tf.Tensor) -> tf.Tensor:
    return as_float32(probe.target_model(probe.preprocess(pixels), training=False))


def _activations(probe: Probe, pixels: tf.Tensor) -> list[tf.Tensor]:
    return [as_float32(maps) for maps in probe.layer_model(probe.preprocess(pixels), training=False)[:-1]]


def _scores(probe: Probe, pixels: tf.Tensor, index: tf.Tensor, extra: tf.Tensor) -> tf.Tensor:
    return probe.score(probe.target_model(probe.preprocess(pixels), training=False), index, extra)


def _values(probe: Probe, pixels: tf.Tensor, index: tf.Tensor, extra: tf.Tensor) -> tf.Tensor:
    return probe.kind.value(as_float32(probe.target_model(probe.preprocess(pixels), training=False)), index, extra)


def as_float32(tensor: tf.Tensor) -> tf.Tensor:
    """Mixed-precision models compute in float16: targets and maps are read in float32."""
    return tf.cast(tensor, tf.float32)


def _capture(probe: Probe, pixels: tf.Tensor, index: tf.Tensor,
             extra: tf.Tensor) -> tuple[list[tf.Tensor], list[tf.Tensor]]:
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(pixels)  # records every op from the input on, frozen weights included
        *activations, outputs = probe.layer_model(probe.preprocess(pixels), training=False)
        value = tf.reduce_sum(probe.kind.value(as_float32(outputs), index, extra))
    gradients = tape.gradient(value, activations)  # None: the target does not depend on the layer (comes before it)
    return ([as_float32(maps) for maps in activations],
            [as_float32(tf.zeros_like(maps) if found is None else found) for maps, found in zip(activations, gradients)])


def _input_gradients(probe: Probe, pixels: tf.Tensor, index: tf.Tensor, extra: tf.Tensor) -> tf.Tensor:
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(pixels)
        outputs = probe.target_model(probe.preprocess(pixels), training=False)
        value = tf.reduce_sum(probe.kind.value(as_float32(outputs), index, extra))
    return tape.gradient(value, pixels)


_PROBES = PerModelCache(MAX_PROBES_PER_MODEL)


def probe_for(loaded: LoadedModel, layer: str | tuple[str, ...] | None, target: Target) -> Probe:
    """The cached probe reaching ``layer`` (several: a tuple of paths; None: the target's output only) for
    ``target``'s kind; the most recently used ``MAX_PROBES_PER_MODEL`` are kept."""
    mode = loaded.info.preprocessing
    return _PROBES.get(loaded.model, (layer, target.source, type(target), mode),
                       lambda: Probe(loaded.model, layer, target.source, type(target), mode))


def pinned(targets: Sequence[Target], probe: Probe, pixels: np.ndarray) -> list[Target]:
    """Each image's class target for "the top prediction" replaced by the class the model actually
    predicts for it (one pass for all of them)."""
    open_ = [i for i, target in enumerate(targets) if isinstance(target, ClassTarget) and target.index is None]
    top = np.argmax(probe.outputs(pixels[open_]), axis=-1) if open_ else []
    found = dict(zip(open_, top))
    return [ClassTarget(int(found[i])) if i in found else target for i, target in enumerate(targets)]


def or_reason(compute: Callable[[], np.ndarray]) -> np.ndarray | EmptyHeatmapError:
    """A map, or the :class:`EmptyHeatmapError` saying why there is none (an answer, kept in its place)."""
    try:
        return compute()
    except EmptyHeatmapError as error:
        return error


def padded_batches(rows: np.ndarray, batch_size: int) -> Iterator[tuple[np.ndarray, int]]:
    """``rows`` in batches of exactly ``batch_size`` (the last one padded with copies of its last row, so
    one trace serves every batch and it splits into slices per core), each with how many rows are real."""
    for start in range(0, len(rows), batch_size):
        part = rows[start:start + batch_size]
        padding = np.repeat(part[-1:], batch_size - len(part), axis=0)
        yield np.concatenate([part, padding]), len(part)


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
    settings: ClassVar[tuple[str, ...]] = ()  # constructor arguments users set (page, CLI): ("steps",), ...

    def explain(self, loaded: LoadedModel, image: Image.Image, target: Target | None = None,
                layer: str | None = None, fit: Fit = "stretch", baseline: Baseline = "blur") -> Heatmap:
        """The heatmap of ``target`` (default: the top class, or the most active filter) at ``layer``
        (default: the last layer with a real map); methods that remove pixels replace them with
        ``baseline``. Raises :class:`EmptyHeatmapError` with the reason when the map would be empty."""
        found = self.explain_batch(loaded, [image], [target], layer, fit, baseline)[0]
        if isinstance(found, EmptyHeatmapError):
            raise found
        return found

    def explain_batch(self, loaded: LoadedModel, images: Sequence[Image.Image],
                      targets: Sequence[Target | None] | None = None, layer: str | None = None,
                      fit: Fit = "stretch", baseline: Baseline = "blur",
                      batch_size: int = BATCH_SIZE) -> list[Heatmap | EmptyHeatmapError]:
        """:meth:`explain` for many images, each for its own target (None: its default), from passes of
        ``batch_size`` images; an image whose map would be empty gets the :class:`EmptyHeatmapError`
        saying why, in its place. The targets must be of one kind (classes, or filters of one layer, ...)."""
        targets = [None] * len(images) if targets is None else list(targets)
        if len(targets) != len(images):
            raise TargetError(f"{len(images)} images but {len(targets)} targets: give one target per image, or none.")
        model = loaded.model
        defaults_to_a_filter = loaded.info.output_info.kind == "none" and any(target is None for target in targets)
        if self.uses_layer or layer or defaults_to_a_filter:
            layer = (find_layer(model, layer) if layer else default_layer(model)).path  # a filter target needs one
        targets = [default_target(loaded, image, layer, fit) if target is None else target
                   for image, target in zip(images, targets)]
        for target in targets:
            check_target(loaded, target)
        kinds = sorted({f"{type(target).__name__} of {target.source}" for target in targets})
        if len(kinds) > 1:
            raise TargetError(f"One call explains targets of one kind on one output; these are {' and '.join(kinds)}. "
                              "Explain each kind in its own call.")
        probe = probe_for(loaded, layer if self.uses_layer else None, targets[0]) if targets else None
        found: list[Heatmap | EmptyHeatmapError] = []
        for start in range(0, len(images), batch_size):
            part = images[start:start + batch_size]
            pixels = pixel_batch(part, loaded.info, fit, dtype=np.float32)
            removed = np.concatenate([baseline_pixels(image, loaded.info, fit, baseline) for image in part])
            scenes = [Scene(probe, pixels[i:i + 1], removed[i:i + 1], target, layer)
                      for i, target in enumerate(pinned(targets[start:start + batch_size], probe, pixels))]
            found += [self.finished(scene, raw) for scene, raw in zip(scenes, self.raw_maps(scenes))]
        return found

    def finished(self, scene: "Scene", raw: np.ndarray | EmptyHeatmapError) -> Heatmap | EmptyHeatmapError:
        """A raw map resized to the image and scaled to 0..1, or why there is none."""
        if isinstance(raw, EmptyHeatmapError):
            return raw
        values = unit_map(raw, scene.pixels.shape[1:3])
        if values is None:
            where, advice = ((f" at {scene.layer}", "choose a layer with a larger map") if self.uses_layer else
                             ("", "the target does not depend on where anything is in this image"))
            return EmptyHeatmapError(
                f"{self.title}: the map is flat ({raw.shape[0]}×{raw.shape[1]}{where}, the same value "
                f"everywhere), so it cannot say where the evidence is; {advice}.")
        return Heatmap(self.name, values, scene.target, scene.layer if self.uses_layer else None)

    @abstractmethod
    def raw_maps(self, scenes: Sequence["Scene"]) -> list[np.ndarray | EmptyHeatmapError]:
        """For each scene (images of one pass, sharing a probe and layer), a finite, non-negative 2-D map
        with a positive maximum, or the :class:`EmptyHeatmapError` saying why there is none."""

    def raw_map(self, scene: "Scene") -> np.ndarray:
        """One scene's raw map; raises :class:`EmptyHeatmapError` when there is none."""
        found = self.raw_maps([scene])[0]
        if isinstance(found, EmptyHeatmapError):
            raise found
        return found


def unit_map(raw: np.ndarray, size: tuple[int, int]) -> np.ndarray | None:
    """``raw`` resized to ``size`` (height, width) and scaled to 0..1, or None when it is flat or not finite:
    a map that cannot say where anything is."""
    values = resized(raw, size)
    low, high = float(values.min()), float(values.max())
    if not (np.isfinite(values).all() and high > low):
        return None
    return (values - low) / (high - low)


@dataclass(frozen=True)
class Scene:
    """What a method explains: one image's pixels, its 'removed' baseline, the target, the layer."""

    probe: Probe
    pixels: np.ndarray  # (1, H, W, C), float 0..255 before preprocessing
    baseline: np.ndarray  # (1, H, W, C), the same image with every pixel removed (see ``baselines``)
    target: Target
    layer: str


@dataclass(frozen=True)
class Capture(Scene):
    """What one pass saw at the layer, for one image."""

    activations: np.ndarray  # A, (h, w, C)
    gradients: np.ndarray | None  # dS/dA, (h, w, C); None for gradient-free methods


def captured(scenes: Sequence[Scene], gradients: bool = True) -> list[Capture]:
    """What one pass sees at the scenes' layer, image by image: activations, and each image's target
    gradients if asked."""
    activations, grads = scenes[0].probe.capture(np.concatenate([scene.pixels for scene in scenes]),
                                                 [scene.target for scene in scenes], gradients)
    return [Capture(**vars(scene), activations=activations[i], gradients=None if grads is None else grads[i])
            for i, scene in enumerate(scenes)]


class CamMethod(HeatmapMethod):
    """A class activation map: ReLU(sum over channels of weights · A). Subclasses give the weights."""

    needs_gradients: ClassVar[bool] = True

    @abstractmethod
    def weights(self, capture: Capture) -> np.ndarray:
        """One weight per channel, (C,), or one per element of A, (h, w, C)."""

    def raw_maps(self, scenes: Sequence[Scene]) -> list[np.ndarray | EmptyHeatmapError]:
        return [or_reason(functools.partial(self.map_of, capture))
                for capture in captured(scenes, self.needs_gradients)]

    def map_of(self, capture: Capture) -> np.ndarray:
        """One image's map from what the pass saw; :class:`EmptyHeatmapError` when it is empty."""
        weights = self.weights(capture)
        return checked_map(self, capture, weights, (capture.activations * weights).sum(axis=-1))

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


def checked_map(method: CamMethod, capture: Capture, weights: np.ndarray, summed: np.ndarray) -> np.ndarray:
    """ReLU of a method's weighted sum over channels, or :class:`EmptyHeatmapError` saying why it is empty."""
    cam = np.maximum(summed, 0.0)
    if not (np.isfinite(cam).all() and cam.max() > 0):
        raise EmptyHeatmapError(f"{method.title}: no map for {capture.target.describe()} at {capture.layer}: "
                                f"{method.why_empty(capture, weights)}.")
    return cam
