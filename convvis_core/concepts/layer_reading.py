"""Where CRAFT and neuron groups read a model: its images as the model sees them, the layer (a
spatial one), the target pinned to a concrete unit, and the heatmaps' probe that gives the layer's
activations and the target's gradients there in one traced pass per batch (:mod:`convvis_core.cam.base`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
from PIL import Image

from convvis_core.cache import cache_key, model_fingerprint
from convvis_core.cam.base import BATCH_SIZE, Probe, probe_for
from convvis_core.cam.replaced import producer
from convvis_core.cam.targets import ClassTarget, Target, check_target, default_target
from convvis_core.errors import ConceptError, ConvVisError
from convvis_core.images import Fit, as_model_sees_it
from convvis_core.layers import SpatialLayer, default_layer, find_layer
from convvis_core.models.base import LoadedModel
from convvis_core.progress import StepProgress

CACHE_NAMESPACE = "concepts"  # the result cache's folder for CRAFT and neuron groups


def seen_pixels(images: Sequence[Image.Image] | np.ndarray, loaded: LoadedModel, fit: Fit = "stretch") -> np.ndarray:
    """The images as the model sees them (its size and channels), one uint8 batch (n, H, W, C); a uint8 batch
    of that shape already (what a page prepared once) is taken as it is."""
    shape = (*loaded.info.input_size, loaded.info.channels)
    if isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.shape[1:] == shape:
        return images
    seen = [np.asarray(as_model_sees_it(image, loaded.info, fit)) for image in images]
    if not seen:
        return np.zeros((0, *shape), np.uint8)
    return np.stack([picture[..., None] if picture.ndim == 2 else picture for picture in seen])


def pixels_digest(pixels: np.ndarray) -> str:
    """A digest of a uint8 batch: the images' part of a cache key."""
    return hashlib.sha256(f"{pixels.shape}".encode() + np.ascontiguousarray(pixels).tobytes()).hexdigest()


@dataclass(frozen=True)
class LayerReading:
    """A layer of a model read for one target."""

    loaded: LoadedModel
    layer: SpatialLayer
    target: Target  # concrete: never "the top prediction"
    probe: Probe

    def key(self, kind: str, pixels: np.ndarray, **settings) -> str:
        """The cache key of a result of ``kind`` over ``pixels`` with ``settings``: the model's identity and
        weights, the layer, the target, the images' digest and every setting."""
        loaded = self.loaded
        return cache_key(kind, loaded.identity, model_fingerprint(loaded.model), loaded.info.preprocessing,
                         self.layer.path, repr(self.target), pixels_digest(pixels), settings)

    def batches(self, pixels: np.ndarray, gradients: bool, progress: StepProgress | None = None,
                done: int = 0, total: int = 0) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
        """(first row, activations, target gradients or None) for batches of ``pixels`` (uint8), each
        (b, h, w, C): one traced pass per batch; ``progress`` hears ``done`` plus the rows read."""
        for start in range(0, len(pixels), BATCH_SIZE):
            batch = pixels[start:start + BATCH_SIZE].astype(np.float32)
            activations, grads = self.probe.capture(batch, self.target, gradients)
            if progress:
                progress(done + start + len(batch), total or len(pixels))
            yield start, activations, grads


def layer_reading(loaded: LoadedModel, layer: str | None, target: Target | None, pixels: np.ndarray,
                  what: str) -> LayerReading:
    """``layer`` (default: the last with a real map) read for ``target`` (default: the output kind's,
    a class pinned to the one the model predicts most often over ``pixels``); ``what`` names the
    method in messages. Raises :class:`ConceptError` when the target does not depend on the layer."""
    if not len(pixels):
        raise ConceptError(f"{what} needs images: none were given.")
    found = find_layer(loaded.model, layer) if layer else default_layer(loaded.model)
    if target is None:
        target = default_target(loaded, Image.fromarray(pixels[0].squeeze()), found.path)
    check_target(loaded, target)
    probe = probe_for(loaded, found.path, target)
    if isinstance(target, ClassTarget) and target.index is None:
        top = np.concatenate([np.argmax(probe.outputs(pixels[start:start + BATCH_SIZE].astype(np.float32)), axis=-1)
                              for start in range(0, len(pixels), BATCH_SIZE)])
        target = ClassTarget(int(np.bincount(top).argmax()))
    try:
        producer(probe.target_model, probe.layer_model.outputs[0])
    except ConvVisError:
        raise ConceptError(f"{target.describe(loaded.info.output_info.class_names)} comes before {found.path} (it "
                           f"does not depend on it), so {what} at that layer has nothing to explain: pick an earlier "
                           "layer or another target.") from None
    return LayerReading(loaded, found, target, probe)


def check_parts(count: int, layer: SpatialLayer, rows: int, rows_name: str, what: str) -> None:
    """Refuse ``count`` parts (concepts, groups) that the layer's channels or the ``rows`` factorized cannot give."""
    if count < 1:
        raise ConceptError(f"{what}: ask for at least 1; got {count}.")
    if count > layer.channels:
        raise ConceptError(f"{what}: {count} from {layer.path}, which has {layer.channels} channels: a factorization "
                           f"gives at most one part per channel; choose 1 to {layer.channels}.")
    if count > rows:
        raise ConceptError(f"{what}: {count} from {rows} {rows_name}: choose at most {rows}, or give more.")
