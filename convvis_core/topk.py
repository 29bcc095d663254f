"""Which dataset images excite a filter most, and where: OpenAI Microscope's "dataset examples".

A synthetic feature visualization can mislead; the real images a filter responds to most ground it.
One streamed pass runs a dataset through the model in batches. Inside the traced function every
channel's map is reduced to its maximum, the maximum's position and its mean, so only
(batch × channels) numbers leave the graph; a running top-k and bottom-k per channel keeps memory at
O(k × channels) however many images pass. Each image's maximum per channel is also kept, for the
histogram (images × channels floats, small). The index is cached on disk by model weights, layer and
dataset, so after one scan every filter's examples are instant.

Where an example's maximum sits in the image is receptive_field.py's job; its pictures, drawing.py's.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from convvis_core.batches import layer_maps, pixel_batch, prefetched, preprocessed, scan_count
from convvis_core.cache import ResultCache, cache_key, default_cache, model_fingerprint
from convvis_core.config import MAX_REDUCERS_PER_MODEL, MAX_SCAN_IMAGES, TOPK_KEPT
from convvis_core.counters import WorkCounter
from convvis_core.datasets.base import Dataset, DatasetError
from convvis_core.errors import LayerError
from convvis_core.images import as_model_sees_it
from convvis_core.graph import sub_model
from convvis_core.layers import find_layer
from convvis_core.models.base import LoadedModel
from convvis_core.per_model import PerModelCache
from convvis_core.progress import StepProgress

CACHE_NAMESPACE = "topk-v1"
BATCH_SIZE = 64


@dataclass(frozen=True)
class Example:
    """One image's response to one channel."""

    rank: int  # 1 = first of its ranking (strongest for the top, weakest for the bottom)
    index: int  # position in the dataset
    value: float  # the channel's maximum over its map
    mean: float  # the channel's mean over its map
    row: int  # where the maximum is, in map coordinates
    col: int


@dataclass(frozen=True)
class ChannelRanking:
    """For every channel, the kept images in rank order: arrays of shape (kept, channels)."""

    index: np.ndarray  # int64 dataset indices
    value: np.ndarray  # float32 maxima
    mean: np.ndarray  # float32 means
    row: np.ndarray  # int32 position of the maximum
    col: np.ndarray

    @classmethod
    def empty(cls, channels: int) -> "ChannelRanking":
        return cls(np.empty((0, channels), np.int64), np.empty((0, channels), np.float32),
                   np.empty((0, channels), np.float32), np.empty((0, channels), np.int32),
                   np.empty((0, channels), np.int32))

    def merged(self, later: "ChannelRanking", keep: int, descending: bool) -> "ChannelRanking":
        """The best ``keep`` rows of both per channel. ``later`` holds higher dataset indices, and a
        stable sort keeps ties in dataset order, so the result never depends on the batch size."""
        both = {field.name: np.concatenate([getattr(self, field.name), getattr(later, field.name)])
                for field in fields(self)}
        order = np.argsort(-both["value"] if descending else both["value"], axis=0, kind="stable")[:keep]
        return ChannelRanking(**{name: np.take_along_axis(array, order, axis=0) for name, array in both.items()})

    def examples(self, channel: int, k: int) -> list[Example]:
        """The first ``k`` examples of ``channel`` (fewer if fewer images were scanned)."""
        channels = self.value.shape[1]
        if not 0 <= channel < channels:
            raise LayerError(f"The layer has {channels} filters (0–{channels - 1}); there is no filter {channel}.")
        return [Example(rank + 1, int(self.index[rank, channel]), float(self.value[rank, channel]),
                        float(self.mean[rank, channel]), int(self.row[rank, channel]), int(self.col[rank, channel]))
                for rank in range(min(k, len(self.index)))]


@dataclass(frozen=True)
class TopKIndex:
    """The result of one scan: rankings for every channel of a layer over ``count`` images from
    ``first`` (the first ``count`` images, as the pages use it). A scan done in pieces (the shards of
    a resumable job, batches on other machines) is :meth:`joined` into exactly the index of one pass:
    the best k of a union are among the best k of each part."""

    layer: str
    dataset: str  # the dataset's identity
    count: int
    map_size: tuple[int, int]  # (height, width) of the layer's maps
    top: ChannelRanking  # strongest maximum first
    bottom: ChannelRanking  # weakest maximum first
    maxima: np.ndarray  # (count, channels) float32: every image's maximum per channel, for histograms
    first: int = 0
    from_cache: bool = False

    @property
    def channels(self) -> int:
        return self.maxima.shape[1]

    @staticmethod
    def joined(pieces: Sequence["TopKIndex"], keep: int) -> "TopKIndex":
        """Consecutive pieces of one scan (each starting where the one before ends) as one index."""
        first = pieces[0]
        top, bottom = first.top, first.bottom
        for before, piece in zip(pieces, pieces[1:]):
            if (piece.first, piece.layer, piece.dataset) != (before.first + before.count, first.layer, first.dataset):
                raise ValueError(f"Cannot join images {piece.first}… of {piece.layer} after {before.first}…"
                                 f"{before.first + before.count - 1} of {before.layer}: join one scan's pieces in order.")
            top = top.merged(piece.top, keep, descending=True)
            bottom = bottom.merged(piece.bottom, keep, descending=False)
        return TopKIndex(first.layer, first.dataset, sum(piece.count for piece in pieces), pieces[-1].map_size, top,
                         bottom, np.concatenate([piece.maxima for piece in pieces]), first.first)

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"{name}_{field.name}": getattr(ranking, field.name)
                  for name, ranking in (("top", self.top), ("bottom", self.bottom)) for field in fields(ChannelRanking)}
        return {**arrays, "maxima": self.maxima, "layer": np.array(self.layer), "dataset": np.array(self.dataset),
                "count": np.array(self.count), "map_size": np.array(self.map_size), "first": np.array(self.first)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], from_cache: bool = False) -> "TopKIndex":
        top, bottom = (ChannelRanking(**{field.name: arrays[f"{name}_{field.name}"]
                                         for field in fields(ChannelRanking)}) for name in ("top", "bottom"))
        return cls(str(arrays["layer"]), str(arrays["dataset"]), int(arrays["count"]),
                   tuple(int(size) for size in arrays["map_size"]), top, bottom, arrays["maxima"],
                   int(arrays["first"]) if "first" in arrays else 0, from_cache)


SCANS = WorkCounter()  # scans run by :func:`scan`, by layer path (not those answered from the cache)
REDUCERS = PerModelCache(MAX_REDUCERS_PER_MODEL)  # by layers: sessions scanning them at once share a trace


def _summary(maps: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """Maps (N, H, W, C) → per (image, channel) maximum, mean, and the maximum's row and column, plus the map size."""
    shape = tf.shape(maps)
    flat = tf.reshape(maps, [shape[0], shape[1] * shape[2], shape[3]])
    where = tf.argmax(flat, axis=1, output_type=tf.int32)  # the first maximum, as numpy's argmax
    return tf.reduce_max(flat, 1), tf.reduce_mean(flat, 1), where // shape[2], where % shape[2], shape[1:3]


def _reducer(model: keras.Model, paths: tuple[str, ...]) -> Callable:
    """A traced function: uint8 pixel batch → one :func:`_summary` per layer, all layers from one
    forward pass. One trace per set of layers and preprocessing serves every batch."""

    def build() -> Callable:
        @tf.function(reduce_retracing=True)
        def reduce(pixels: tf.Tensor, preprocessing: str) -> list[tuple[tf.Tensor, ...]]:
            outputs = sub_model(model, list(paths))(preprocessed(pixels, preprocessing), training=False)
            return [_summary(tf.cast(maps, tf.float32)) for maps in (outputs if len(paths) > 1 else [outputs])]

        return reduce

    return REDUCERS.get(model, paths, build)


def prepare_ranking(loaded: LoadedModel, paths: Sequence[str], rows: int) -> None:
    """Trace the pass that ranks ``paths`` for batches of ``rows`` images now, on a blank batch (a worker's
    start), so its first real batch runs at full speed; the trace is kept for every scan of those layers."""
    height, width = loaded.info.input_size
    _reducer(loaded.model, tuple(paths))(tf.zeros((rows, height, width, loaded.info.channels), tf.uint8),
                                         loaded.info.preprocessing)


def _padded(pixels: np.ndarray, batch_size: int) -> np.ndarray:
    """A short last batch filled up with copies of its last image: every batch then runs the same
    kernels (one input shape, one trace), so equal images give bit-equal values and ties rank in
    dataset order whatever the batch size; the extra rows are dropped."""
    missing = batch_size - len(pixels)
    return pixels if missing <= 0 else np.concatenate([pixels, np.repeat(pixels[-1:], missing, axis=0)])


def index_key(loaded: LoadedModel, dataset: Dataset, path: str, count: int, keep: int) -> str:
    info = loaded.info
    return cache_key("topk", model_fingerprint(loaded.model), path, dataset.identity, count, keep,
                     info.preprocessing, info.input_size, info.channels)


def cached_index(loaded: LoadedModel, dataset: Dataset, path: str, count: int | None = None,
                 keep: int = TOPK_KEPT, cache: ResultCache | None = None) -> TopKIndex | None:
    """The stored index of an earlier scan with the same model, layer and dataset, or None."""
    find_layer(loaded.model, path)
    stored = (cache or default_cache(CACHE_NAMESPACE)).get(
        index_key(loaded, dataset, path, scan_count(dataset, count), keep))
    return None if stored is None else TopKIndex.from_arrays(stored, from_cache=True)


def scan(loaded: LoadedModel, dataset: Dataset, path: str, count: int | None = None, keep: int = TOPK_KEPT,
         batch_size: int = BATCH_SIZE, progress: StepProgress | None = None,
         cache: ResultCache | None = None) -> TopKIndex:
    """Rank the first ``count`` images (default: all, up to the limit) for every channel of ``path``.

    Served from the cache when this model, layer and dataset were scanned before; sessions asking
    for the same scan at once run it once.
    """
    found = cached_index(loaded, dataset, path, count, keep, cache)
    if found is not None:
        return found
    cache = cache or default_cache(CACHE_NAMESPACE)
    count = scan_count(dataset, count)
    key = index_key(loaded, dataset, path, count, keep)
    with cache.computing(key):
        found = cached_index(loaded, dataset, path, count, keep, cache)  # another session's, just finished
        if found is not None:
            return found
        index = scan_layers(loaded, dataset, [path], 0, count, keep, batch_size, progress)[0]
        SCANS.add(path)
        cache.put(key, index.to_arrays())
    return index


def rank_batch(loaded: LoadedModel, dataset: str, paths: Sequence[str], indices: np.ndarray, pixels: np.ndarray,
               keep: int, batch_size: int = BATCH_SIZE, offset: int = 0) -> list[TopKIndex]:
    """One batch of images of ``dataset`` (its identity; ``pixels`` as :func:`pixel_batch` makes them,
    at consecutive positions ``indices``) ranked for every channel of every layer in ``paths``, from
    one forward pass of ``batch_size`` rows with the images from row ``offset`` on (the rows around
    them copies of the first and last image; an image's values depend on its row in the pass, so a
    piece of a scan placed as the scan would place it is bit-equal to it): a piece of a scan per
    layer, to :meth:`TopKIndex.joined` with the other batches'."""
    placed = np.concatenate([np.repeat(pixels[:1], offset, axis=0), pixels]) if offset else pixels
    summaries = _reducer(loaded.model, tuple(paths))(tf.constant(_padded(placed, batch_size)), loaded.info.preprocessing)
    pieces = []
    for path, (*per_image, size) in zip(paths, summaries):
        peak, mean, row, col = (np.asarray(value)[offset:offset + len(indices)] for value in per_image)
        batch = ChannelRanking(np.broadcast_to(indices[:, None], peak.shape).astype(np.int64), peak, mean, row, col)
        empty = ChannelRanking.empty(peak.shape[1])
        pieces.append(TopKIndex(path, dataset, len(indices), (int(size[0]), int(size[1])),
                                empty.merged(batch, keep, descending=True), empty.merged(batch, keep, descending=False),
                                peak, int(indices[0])))
    return pieces


def scan_layers(loaded: LoadedModel, dataset: Dataset, paths: Sequence[str], first: int, stop: int, keep: int,
                batch_size: int = BATCH_SIZE, progress: StepProgress | None = None) -> list[TopKIndex]:
    """Images ``first`` … ``stop`` − 1 ranked for every layer in ``paths`` (one forward pass reaches
    them all; each image is read once): one index, or piece of one, per layer. Batches start at
    ``first``, so pieces that start at multiples of ``batch_size`` see exactly the batches of one pass."""
    channels = [find_layer(loaded.model, path).channels for path in paths]
    tops = [ChannelRanking.empty(count) for count in channels]
    bottoms = list(tops)
    maxima = [np.empty((stop - first, count), np.float32) for count in channels]
    map_sizes = [(0, 0)] * len(paths)
    prepared = ((indices, pixel_batch(images, loaded.info))
                for indices, images in dataset.batches(batch_size, stop, first))
    for indices, pixels in prefetched(prepared):
        for layer, piece in enumerate(rank_batch(loaded, dataset.identity, paths, indices, pixels, keep, batch_size)):
            tops[layer] = tops[layer].merged(piece.top, keep, descending=True)
            bottoms[layer] = bottoms[layer].merged(piece.bottom, keep, descending=False)
            maxima[layer][indices - first] = piece.maxima
            map_sizes[layer] = piece.map_size
        if progress:
            progress(int(indices[-1]) + 1 - first, stop - first)
    return [TopKIndex(path, dataset.identity, stop - first, map_sizes[layer], tops[layer], bottoms[layer],
                      maxima[layer], first) for layer, path in enumerate(paths)]


def example_maps(loaded: LoadedModel, dataset: Dataset, path: str, channel: int,
                 examples: Sequence[Example]) -> tuple[list[Image.Image], np.ndarray]:
    """Each example's image as the model sees it, and the channel's map on it, (examples, H, W):
    one batch through the model, for showing where the examples respond."""
    seen = [as_model_sees_it(Image.fromarray(dataset.image(example.index)), loaded.info) for example in examples]
    pixels = pixel_batch([np.asarray(image) for image in seen], loaded.info)
    return seen, layer_maps(loaded.model, path, preprocessed(pixels, loaded.info.preprocessing)).numpy()[..., channel]
