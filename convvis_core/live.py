"""Live camera: one frame in, the frame with its heatmap, the top-5 and a layer's strongest channels out.

A :class:`LiveProcessor` holds a model, a layer, a method and the view's settings for one viewer. Its
:meth:`~LiveProcessor.process` runs on whatever thread delivers frames (the page's WebRTC worker):
settings are read under a lock, so the page may change them between frames, and the model is shared
(its traced passes are thread-safe). One traced pass per frame gives everything: the class
probabilities (the top-5 and the class explained, the top one), the layer's activations and the
gradients the map needs, so a frame costs a forward and a backward pass, not a ``predict`` and then a
heatmap. The pass is traced once per (model, layer, method kind) and reused by every frame of the
same size (:func:`traces` counts traces, so tests can check that frames never re-trace).

Frames are converted to the model's input as uploads are (:func:`convvis_core.batches.pixel_batch`,
stretched): a grayscale model (LeNet's 28×28) gets grey frames. The map is drawn over the frame as
the Heatmaps page draws it (``presentation.overlays.overlay``), so a live frame's map equals the
Heatmaps page's map of the same picture.
"""

from __future__ import annotations

import functools

import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import tensorflow as tf
from PIL import Image

from convvis_core.batches import pixel_batch
from convvis_core.cam.base import EmptyHeatmapError, Probe, probe_for, unit_map
from convvis_core.cam.methods import method_named
from convvis_core.cam.targets import ClassTarget
from convvis_core.errors import ConvVisError
from convvis_core.graph import squashed
from convvis_core.layers import default_layer, find_layer
from convvis_core.models.base import LoadedModel
from convvis_core.predictions import Prediction, ranked, shown_squash
from convvis_core.presentation.channel_grids import channel_grid
from convvis_core.presentation.overlays import overlay

LiveMethod = Literal["gradcam", "layercam", "saliency"]
LIVE_METHODS: tuple[LiveMethod, ...] = ("gradcam", "layercam", "saliency")  # one backward pass each
TOP = 5
GRID_CHANNELS = 16  # the strongest channels shown in the grid
RATE_WINDOW_S = 2.0  # frames per second are counted over this many seconds

_TRACES = 0
_TRACES_LOCK = threading.Lock()


def traces() -> int:
    """How many times a live pass has been traced in this process (each (model, layer, method kind)
    should trace once, whatever the number of frames)."""
    return _TRACES


def _traced_once() -> None:  # runs while tf.function traces, never per call
    global _TRACES
    with _TRACES_LOCK:
        _TRACES += 1


@dataclass(frozen=True)
class LiveSettings:
    """What a viewer chose: the layer (its activations make the map and the grid), the method, the
    grid of strongest channels or not, and how the map is drawn."""

    layer: str
    method: LiveMethod = "gradcam"
    grid: bool = False
    alpha: float = 0.5
    colormap: str = "jet"


@dataclass(frozen=True)
class LiveFrame:
    """One processed frame."""

    frame: np.ndarray  # (H, W, 3) uint8: the frame as it came in (what a freeze-frame keeps)
    overlay: np.ndarray  # (H, W, 3) uint8: the frame (as given) with the map over it
    top: tuple[Prediction, ...]  # the top-5 classes, most probable first
    explained: int  # the class the map explains (the top one)
    grid: np.ndarray | None  # (h, w, 3) uint8: the layer's strongest channels tiled, or None
    problem: str | None  # why there is no map on this frame (a flat map), else None
    model_s: float  # the traced pass (forward + backward) alone
    total_s: float  # the whole of process(): conversion, pass, map, overlay, grid
    settings: LiveSettings


class LiveProcessor:
    """Frames of one viewer through one model; see the module's docstring. Thread-safe."""

    def __init__(self, loaded: LoadedModel, settings: LiveSettings):
        output = loaded.info.output_info
        if output.kind != "classes":
            raise ConvVisError(f"{loaded.info.display_name}'s output '{output.name}' {output.holds}, not class "
                               "scores: the live view explains the top class of each frame. Pick a classifier.")
        self.loaded = loaded
        self._lock = threading.Lock()
        self._settings = self._checked(settings)
        self._latest: LiveFrame | None = None
        self._done: deque[float] = deque()  # when recent frames finished, for the rate

    def _checked(self, settings: LiveSettings) -> LiveSettings:
        if settings.method not in LIVE_METHODS:
            raise ConvVisError(f"The live view draws {', '.join(LIVE_METHODS)}; not {settings.method!r}.")
        return replace(settings, layer=find_layer(self.loaded.model, settings.layer).path)

    @classmethod
    def for_model(cls, loaded: LoadedModel, **settings) -> "LiveProcessor":
        """A processor on the model's default layer (the last one with a real map) unless told otherwise."""
        settings.setdefault("layer", default_layer(loaded.model).path)
        return cls(loaded, LiveSettings(**settings))

    @property
    def settings(self) -> LiveSettings:
        with self._lock:
            return self._settings

    def configure(self, settings: LiveSettings) -> None:
        """New settings, used from the next frame on."""
        checked = self._checked(settings)
        with self._lock:
            self._settings = checked

    def process(self, frame: np.ndarray) -> LiveFrame:
        """One RGB uint8 frame (H, W, 3) → its :class:`LiveFrame`; also kept as :attr:`latest`."""
        started = time.perf_counter()
        settings = self.settings
        image = Image.fromarray(np.asarray(frame, np.uint8), "RGB")
        pixels = pixel_batch(image, self.loaded.info, "stretch", dtype=np.float32)
        probe = probe_for(self.loaded, settings.layer, ClassTarget())
        passed = time.perf_counter()
        saliency = settings.method == "saliency"
        outputs = probe.traced(_SALIENCY_PASS if saliency else _CAM_PASS)(tf.convert_to_tensor(pixels))
        probabilities, activations, gradients = (tensor.numpy()[0] for tensor in outputs)
        model_s = time.perf_counter() - passed
        top = tuple(ranked(probabilities, self.loaded.info.class_names, TOP))
        explained = top[0].class_index
        problem, shown = None, image
        try:
            values = frame_map(settings.method, activations, gradients, pixels.shape[1:3], explained)
            shown = overlay(image, values, settings.alpha, settings.colormap)
        except EmptyHeatmapError as error:
            problem = str(error)
        grid = strongest_channels(activations, image.height) if settings.grid else None
        result = LiveFrame(np.asarray(frame, np.uint8), np.asarray(shown), top, explained, grid, problem, model_s,
                           time.perf_counter() - started, settings)
        with self._lock:
            self._latest = result
            now = time.monotonic()
            self._done.append(now)
            while self._done and self._done[0] < now - RATE_WINDOW_S:
                self._done.popleft()
        return result

    @property
    def latest(self) -> LiveFrame | None:
        """The last frame processed (by any thread), for the page to show its numbers."""
        with self._lock:
            return self._latest

    def frames_per_second(self) -> float:
        """Frames processed per second over the last ``RATE_WINDOW_S`` seconds."""
        with self._lock:
            done = [t for t in self._done if t >= time.monotonic() - RATE_WINDOW_S]
        if len(done) < 2:
            return 0.0
        return (len(done) - 1) / max(done[-1] - done[0], 1e-6)


def _frame_pass(probe: Probe, pixels: tf.Tensor, *, to_pixels: bool) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Probabilities (read as top-k reads them, ``predictions.shown_squash``), the layer's activations,
    and the gradients of the top class's logit with respect to the layer's activations (Grad-CAM's and
    Layer-CAM's: the backward pass from the logits down to the layer only) or, ``to_pixels``, to the
    pixels (the vanilla gradient, through the whole network): one forward and one backward pass."""
    _traced_once()
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(pixels)
        activations, logits = probe.layer_model(probe.preprocess(pixels), training=False)
        logits = tf.cast(logits, tf.float32)
        value = tf.reduce_sum(ClassTarget.value(logits, tf.argmax(logits[0], output_type=tf.int32), None))
    gradients = tape.gradient(value, pixels if to_pixels else activations)
    gradients = tf.zeros_like(pixels if to_pixels else activations) if gradients is None else gradients
    probabilities = squashed(logits, shown_squash(probe.squash, logits.shape[-1]))
    return probabilities, tf.cast(activations, tf.float32), tf.cast(gradients, tf.float32)


_CAM_PASS = functools.partial(_frame_pass, to_pixels=False)  # each traced once per probe (Probe.traced)
_SALIENCY_PASS = functools.partial(_frame_pass, to_pixels=True)


def frame_map(method: LiveMethod, activations: np.ndarray, gradients: np.ndarray, size: tuple[int, int],
              explained: int) -> np.ndarray:
    """The method's map from one pass's activations and gradients, resized to ``size`` and scaled to 0..1
    exactly as :meth:`HeatmapMethod.explain` does; :class:`EmptyHeatmapError` when it is flat."""
    chosen = method_named(method)
    if method == "saliency":
        raw = np.abs(gradients).max(axis=-1)
    else:
        raw = np.maximum((activations * chosen.weights(_Captured(activations, gradients))).sum(axis=-1), 0.0)
    values = unit_map(raw, size)
    if values is None:
        raise EmptyHeatmapError(f"{chosen.title}: no map for class {explained} on this frame (the map is flat); "
                                "try another layer, or hold the object closer.")
    return values


@dataclass(frozen=True)
class _Captured:
    """What ``CamMethod.weights`` reads of a capture."""

    activations: np.ndarray
    gradients: np.ndarray


def strongest_channels(activations: np.ndarray, height: int, count: int = GRID_CHANNELS) -> np.ndarray:
    """The ``count`` channels of (h, w, C) maps with the highest mean activation, tiled strongest first
    (each standardized, as the Activations page shows them), as an RGB picture ``height`` pixels tall."""
    strongest = np.argsort(-activations.mean(axis=(0, 1)), kind="stable")[:count]
    grid = channel_grid(activations[..., strongest], "standardize").to_pil("viridis")
    width = max(1, round(grid.width * height / grid.height))
    return np.asarray(grid.resize((width, height), Image.NEAREST).convert("RGB"))
