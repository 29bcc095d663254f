"""Images → batches the model takes: the batching every streamed pass shares (Top k's scans, the
Compare page's passes over a dataset, the atlas's shards, receptive fields).

One name per idea: :func:`pixel_batch` is images (one photo, a list, or an array of decoded images) →
pixels at the model's size, 0..255 before preprocessing, as one batch; :func:`preprocessed` is pixels →
what the model takes, inside a traced function too; :func:`model_input` is both at once, for a model
called outside any traced pass. Streamed passes keep pixels uint8 (a quarter of the memory of floats)
until the traced function, and decode the next batch while the model works on this one
(:func:`prefetched`). Every pass over a dataset reads :func:`scan_count` images and takes a layer's maps
through the model's shared sub-model (:func:`layer_maps`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence, TypeVar

import keras
import numpy as np
import tensorflow as tf
from numpy.typing import DTypeLike
from PIL import Image

from convvis_core.config import MAX_SCAN_IMAGES
from convvis_core.datasets.base import Dataset, DatasetError
from convvis_core.graph import sub_model
from convvis_core.images import Fit, as_model_sees_it
from convvis_core.models.base import ModelInfo
from convvis_core.preprocessing import preprocess

T = TypeVar("T")


Images = Image.Image | Sequence[Image.Image | np.ndarray] | np.ndarray


def pixel_batch(images: Images, info: ModelInfo, fit: Fit = "stretch", *, dtype: DTypeLike = np.uint8) -> np.ndarray:
    """Images (one photo, a list of photos or uint8 arrays, or an (N, h, w[, c]) uint8 array) → one batch
    (N, H, W, C) of pixels 0..255 as the model sees them (its size and channels, ``fit`` as in
    :func:`convvis_core.images.as_model_sees_it`), in ``dtype``: uint8 for streamed passes, float32 for
    arithmetic on pixels (masks, baselines, interpolation paths). Decoded images already at the model's
    size and channels (MNIST on LeNet) are taken as they are, without a copy when the dtype matches."""
    height, width = info.input_size
    if isinstance(images, Image.Image):
        images = [images]
    elif isinstance(images, np.ndarray) and images.shape[1:3] == (height, width):
        pixels = images[..., None] if images.ndim == 3 else images
        if pixels.shape[-1] == info.channels:
            return pixels.astype(dtype, copy=False)
    batch = np.empty((len(images), height, width, info.channels), dtype)
    for slot, image in zip(batch, images):
        seen = as_model_sees_it(image if isinstance(image, Image.Image) else Image.fromarray(image), info, fit)
        slot[...] = np.asarray(seen).reshape(slot.shape)
    return batch


def preprocessed(pixels: np.ndarray | tf.Tensor, preprocessing: str) -> tf.Tensor:
    """A pixel batch (uint8 or float, 0..255) → the model's float input, by the model's preprocessing mode;
    inside a traced function too."""
    return preprocess(tf.cast(pixels, tf.float32), preprocessing)


def model_input(images: Images, info: ModelInfo, fit: Fit = "stretch") -> np.ndarray:
    """Images → the batch the model takes, (N, H, W, C) float32, for a model called outside a traced pass
    (a page's photo through ``model.predict`` or ``model(...)``)."""
    return np.asarray(preprocess(pixel_batch(images, info, fit, dtype=np.float32), info.preprocessing), dtype=np.float32)


def layer_maps(model: keras.Model, path: str, inputs: tf.Tensor | np.ndarray) -> tf.Tensor:
    """The layer's maps (N, H, W, C) as float32 for preprocessed inputs, through the shared sub-model."""
    return tf.cast(sub_model(model, [path])(inputs, training=False), tf.float32)


def scan_count(dataset: Dataset, count: int | None) -> int:
    """How many images a scan of ``count`` reads (None: all, up to the limit per scan); a count the
    dataset or the limit does not allow is refused with what to choose instead."""
    count = min(len(dataset), MAX_SCAN_IMAGES) if count is None else count
    if len(dataset) == 0:
        raise DatasetError(f"{dataset.name} holds no images.")
    if not 1 <= count <= min(len(dataset), MAX_SCAN_IMAGES):
        raise DatasetError(f"Cannot scan {count:,} images of {dataset.name}: choose 1 to "
                           f"{min(len(dataset), MAX_SCAN_IMAGES):,} (the limit per scan is {MAX_SCAN_IMAGES:,}).")
    return count


def prefetched(items: Iterator[T]) -> Iterator[T]:
    """The items, each next one made in a background thread while the caller works on the current one
    (decoding and resizing the next batch overlaps the model's pass over this one)."""
    with ThreadPoolExecutor(max_workers=1) as worker:
        pending = worker.submit(next, items, None)
        while (item := pending.result()) is not None:
            pending = worker.submit(next, items, None)
            yield item
