"""Images → batches the model takes: the batching every streamed pass shares (Top k's scans, the
Compare page's passes over a dataset, the atlas's shards, receptive fields).

Pixels travel as uint8 batches at the model's size (:func:`pixel_batch`) and become the model's
preprocessed float input only inside the traced function (:func:`model_inputs`); the next batch is
decoded while the model works on this one (:func:`prefetched`). One image at a time (a page's photo)
goes through :func:`convvis_core.images.model_input` instead.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence, TypeVar

import numpy as np
import tensorflow as tf
from PIL import Image

from convvis_core.images import as_model_sees_it
from convvis_core.models.base import ModelInfo
from convvis_core.preprocessing import preprocess

T = TypeVar("T")


def pixel_batch(images: np.ndarray | Sequence[np.ndarray], info: ModelInfo) -> np.ndarray:
    """uint8 images → one uint8 batch (N, H, W, C) as the model sees them: a view when they already
    have the model's size and channels (MNIST on LeNet), else resized image by image as everywhere
    else. Pixels stay uint8 until the traced function: a quarter of the memory of float inputs."""
    height, width = info.input_size
    if isinstance(images, np.ndarray) and images.shape[1:3] == (height, width):
        pixels = images[..., None] if images.ndim == 3 else images
        if pixels.shape[-1] == info.channels:
            return pixels
    batch = np.empty((len(images), height, width, info.channels), np.uint8)
    for slot, image in zip(batch, images):
        slot[...] = np.asarray(as_model_sees_it(Image.fromarray(image), info)).reshape(slot.shape)
    return batch


def model_inputs(pixels: np.ndarray | tf.Tensor, preprocessing: str) -> tf.Tensor:
    """A uint8 pixel batch → the model's preprocessed float input (inside a traced function, too)."""
    return preprocess(tf.cast(pixels, tf.float32), preprocessing)


def prefetched(items: Iterator[T]) -> Iterator[T]:
    """The items, each next one made in a background thread while the caller works on the current one
    (decoding and resizing the next batch overlaps the model's pass over this one)."""
    with ThreadPoolExecutor(max_workers=1) as worker:
        pending = worker.submit(next, items, None)
        while (item := pending.result()) is not None:
            pending = worker.submit(next, items, None)
            yield item
