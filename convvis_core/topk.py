"""Which dataset images excite a filter most, and where: OpenAI Microscope's "dataset examples".

A synthetic feature visualization can mislead; the real images a filter responds to most ground it.
One streamed pass runs a dataset through the model in batches. Inside the traced function every
channel's map is reduced to its maximum, the maximum's position and its mean, so only
(batch × channels) numbers leave the graph; a running top-k and bottom-k per channel keeps memory at
O(k × channels) however many images pass. Each image's maximum per channel is also kept, for the
histogram (images × channels floats, small). The index is cached on disk by model weights, layer and
dataset, so after one scan every filter's examples are instant.

The receptive field of every map position, measured once per layer from the gradient of that
position with respect to the input, says which part of an image to crop around a maximum.
"""

from __future__ import annotations

import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Callable, Iterator, Sequence, TypeVar

import keras
import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw

from convvis_core.activations import overlay
from convvis_core.cache import ResultCache, cache_key, default_cache, model_fingerprint
from convvis_core.config import MAX_SCAN_IMAGES, TOPK_KEPT
from convvis_core.datasets.base import Dataset, DatasetError
from convvis_core.errors import LayerError
from convvis_core.images import as_model_sees_it
from convvis_core.graph import sub_model
from convvis_core.layers import find_layer
from convvis_core.models.base import LoadedModel, ModelInfo
from convvis_core.preprocessing import preprocess

CACHE_NAMESPACE = "topk-v1"
BATCH_SIZE = 64
DISPLAY_SIDE = 224  # smaller inputs (28×28 digits) are enlarged by a whole factor for display
CROP_SIDE = 112  # crops are enlarged to about this many pixels a side
Progress = Callable[[int, int], None]  # (images done, images in all)
T = TypeVar("T")


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
class Ranking:
    """For every channel, the kept images in rank order: arrays of shape (kept, channels)."""

    index: np.ndarray  # int64 dataset indices
    value: np.ndarray  # float32 maxima
    mean: np.ndarray  # float32 means
    row: np.ndarray  # int32 position of the maximum
    col: np.ndarray

    @classmethod
    def empty(cls, channels: int) -> "Ranking":
        return cls(np.empty((0, channels), np.int64), np.empty((0, channels), np.float32),
                   np.empty((0, channels), np.float32), np.empty((0, channels), np.int32),
                   np.empty((0, channels), np.int32))

    def merged(self, later: "Ranking", keep: int, descending: bool) -> "Ranking":
        """The best ``keep`` rows of both per channel. ``later`` holds higher dataset indices, and a
        stable sort keeps ties in dataset order, so the result never depends on the batch size."""
        both = {field.name: np.concatenate([getattr(self, field.name), getattr(later, field.name)])
                for field in fields(self)}
        order = np.argsort(-both["value"] if descending else both["value"], axis=0, kind="stable")[:keep]
        return Ranking(**{name: np.take_along_axis(array, order, axis=0) for name, array in both.items()})

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
    top: Ranking  # strongest maximum first
    bottom: Ranking  # weakest maximum first
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
                  for name, ranking in (("top", self.top), ("bottom", self.bottom)) for field in fields(Ranking)}
        return {**arrays, "maxima": self.maxima, "layer": np.array(self.layer), "dataset": np.array(self.dataset),
                "count": np.array(self.count), "map_size": np.array(self.map_size), "first": np.array(self.first)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], from_cache: bool = False) -> "TopKIndex":
        top, bottom = (Ranking(**{field.name: arrays[f"{name}_{field.name}"] for field in fields(Ranking)})
                       for name in ("top", "bottom"))
        return cls(str(arrays["layer"]), str(arrays["dataset"]), int(arrays["count"]),
                   tuple(int(size) for size in arrays["map_size"]), top, bottom, arrays["maxima"],
                   int(arrays["first"]) if "first" in arrays else 0, from_cache)


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


def _prefetched(items: Iterator[T]) -> Iterator[T]:
    """The items, each next one made in a background thread while the caller works on the current one
    (decoding and resizing the next batch overlaps the model's pass over this one)."""
    with ThreadPoolExecutor(max_workers=1) as worker:
        pending = worker.submit(next, items, None)
        while (item := pending.result()) is not None:
            pending = worker.submit(next, items, None)
            yield item


def layer_maps(model: keras.Model, path: str, inputs: tf.Tensor | np.ndarray) -> tf.Tensor:
    """The layer's maps (N, H, W, C) as float32 for preprocessed inputs, through the shared sub-model."""
    return tf.cast(sub_model(model, [path])(inputs, training=False), tf.float32)


_REDUCERS: "weakref.WeakKeyDictionary[keras.Model, dict[tuple[str, ...], Callable]]" = weakref.WeakKeyDictionary()
_REDUCERS_LOCK = threading.Lock()  # sessions scanning the same layers at once share one trace


def _summary(maps: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """Maps (N, H, W, C) → per (image, channel) maximum, mean, and the maximum's row and column, plus the map size."""
    shape = tf.shape(maps)
    flat = tf.reshape(maps, [shape[0], shape[1] * shape[2], shape[3]])
    where = tf.argmax(flat, axis=1, output_type=tf.int32)  # the first maximum, as numpy's argmax
    return tf.reduce_max(flat, 1), tf.reduce_mean(flat, 1), where // shape[2], where % shape[2], shape[1:3]


def _reducer(model: keras.Model, paths: tuple[str, ...]) -> Callable:
    """A traced function: uint8 pixel batch → one :func:`_summary` per layer, all layers from one
    forward pass. One trace per set of layers and preprocessing serves every batch."""
    with _REDUCERS_LOCK:
        per_model = _REDUCERS.setdefault(model, {})
        if paths not in per_model:

            @tf.function(reduce_retracing=True)
            def reduce(pixels: tf.Tensor, preprocessing: str) -> list[tuple[tf.Tensor, ...]]:
                outputs = sub_model(model, list(paths))(model_inputs(pixels, preprocessing), training=False)
                return [_summary(tf.cast(maps, tf.float32)) for maps in (outputs if len(paths) > 1 else [outputs])]

            per_model[paths] = reduce
        return per_model[paths]


def _padded(pixels: np.ndarray, batch_size: int) -> np.ndarray:
    """A short last batch filled up with copies of its last image: every batch then runs the same
    kernels (one input shape, one trace), so equal images give bit-equal values and ties rank in
    dataset order whatever the batch size; the extra rows are dropped."""
    missing = batch_size - len(pixels)
    return pixels if missing <= 0 else np.concatenate([pixels, np.repeat(pixels[-1:], missing, axis=0)])


def scan_count(dataset: Dataset, count: int | None) -> int:
    """How many images a scan of ``count`` (None: all, up to the limit) reads, checked against the limit."""
    count = min(len(dataset), MAX_SCAN_IMAGES) if count is None else count
    if len(dataset) == 0:
        raise DatasetError(f"{dataset.name} holds no images.")
    if not 1 <= count <= min(len(dataset), MAX_SCAN_IMAGES):
        raise DatasetError(f"Cannot scan {count:,} images of {dataset.name}: choose 1 to "
                           f"{min(len(dataset), MAX_SCAN_IMAGES):,} (the limit per scan is {MAX_SCAN_IMAGES:,}).")
    return count


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
         batch_size: int = BATCH_SIZE, progress: Progress | None = None,
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
        index = _scan(loaded, dataset, path, count, keep, batch_size, progress)
        cache.put(key, index.to_arrays())
    return index


def _scan(loaded: LoadedModel, dataset: Dataset, path: str, count: int, keep: int, batch_size: int,
          progress: Progress | None) -> TopKIndex:
    return scan_layers(loaded, dataset, [path], 0, count, keep, batch_size, progress)[0]


def rank_batch(loaded: LoadedModel, dataset: str, paths: Sequence[str], indices: np.ndarray, pixels: np.ndarray,
               keep: int, batch_size: int = BATCH_SIZE) -> list[TopKIndex]:
    """One batch of images of ``dataset`` (its identity; ``pixels`` as :func:`pixel_batch` makes them,
    at consecutive positions ``indices``) ranked for every channel of every layer in ``paths``, from
    one forward pass: a piece of a scan per layer, to :meth:`TopKIndex.joined` with the other batches'."""
    summaries = _reducer(loaded.model, tuple(paths))(tf.constant(_padded(pixels, batch_size)), loaded.info.preprocessing)
    pieces = []
    for path, (*per_image, size) in zip(paths, summaries):
        peak, mean, row, col = (np.asarray(value)[:len(indices)] for value in per_image)
        batch = Ranking(np.broadcast_to(indices[:, None], peak.shape).astype(np.int64), peak, mean, row, col)
        empty = Ranking.empty(peak.shape[1])
        pieces.append(TopKIndex(path, dataset, len(indices), (int(size[0]), int(size[1])),
                                empty.merged(batch, keep, descending=True), empty.merged(batch, keep, descending=False),
                                peak, int(indices[0])))
    return pieces


def scan_layers(loaded: LoadedModel, dataset: Dataset, paths: Sequence[str], first: int, stop: int, keep: int,
                batch_size: int = BATCH_SIZE, progress: Progress | None = None) -> list[TopKIndex]:
    """Images ``first`` … ``stop`` − 1 ranked for every layer in ``paths`` (one forward pass reaches
    them all; each image is read once): one index, or piece of one, per layer. Batches start at
    ``first``, so pieces that start at multiples of ``batch_size`` see exactly the batches of one pass."""
    channels = [find_layer(loaded.model, path).channels for path in paths]
    tops = [Ranking.empty(count) for count in channels]
    bottoms = list(tops)
    maxima = [np.empty((stop - first, count), np.float32) for count in channels]
    map_sizes = [(0, 0)] * len(paths)
    prepared = ((indices, pixel_batch(images, loaded.info))
                for indices, images in dataset.batches(batch_size, stop, first))
    for indices, pixels in _prefetched(prepared):
        for layer, piece in enumerate(rank_batch(loaded, dataset.identity, paths, indices, pixels, keep, batch_size)):
            tops[layer] = tops[layer].merged(piece.top, keep, descending=True)
            bottoms[layer] = bottoms[layer].merged(piece.bottom, keep, descending=False)
            maxima[layer][indices - first] = piece.maxima
            map_sizes[layer] = piece.map_size
        if progress:
            progress(int(indices[-1]) + 1 - first, stop - first)
    return [TopKIndex(path, dataset.identity, stop - first, map_sizes[layer], tops[layer], bottoms[layer],
                      maxima[layer], first) for layer, path in enumerate(paths)]


@dataclass(frozen=True)
class ReceptiveField:
    """The input pixels each map position can see: per map row the first and last input row
    (inclusive), per map column the first and last input column."""

    rows: np.ndarray  # (map height, 2)
    cols: np.ndarray  # (map width, 2)

    def box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) in input pixels, right and bottom exclusive: PIL's crop box."""
        return (int(self.cols[col, 0]), int(self.rows[row, 0]), int(self.cols[col, 1]) + 1,
                int(self.rows[row, 1]) + 1)


def _extent(reached: np.ndarray) -> np.ndarray:
    """(positions, pixels) booleans → (positions, 2) first and last True pixel (all of them if none)."""
    any_reached = reached.any(axis=1)
    first = np.where(any_reached, reached.argmax(axis=1), 0)
    last = np.where(any_reached, reached.shape[1] - 1 - reached[:, ::-1].argmax(axis=1), reached.shape[1] - 1)
    return np.stack([first, last], axis=1)


def receptive_field(loaded: LoadedModel, path: str, chunk: int = 16,
                    cache: ResultCache | None = None) -> ReceptiveField:
    """Measured, not derived from the architecture: the input pixels on which the gradient of one map
    position (summed over channels) is non-zero, for a noise image. That works through any padding,
    stride, dilation, pooling or branch; position i of a batch of copies probes map row and column i.
    Cached per model and layer."""
    find_layer(loaded.model, path)
    info = loaded.info
    cache = cache or default_cache(CACHE_NAMESPACE)
    key = cache_key("receptive-field", model_fingerprint(loaded.model), path, info.input_size, info.channels,
                    info.preprocessing)
    stored = cache.get(key)
    if stored is not None:
        return ReceptiveField(stored["rows"], stored["cols"])

    def channel_sums(inputs: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(layer_maps(loaded.model, path, inputs), axis=-1)

    height, width = info.input_size
    noise = np.random.default_rng(0).integers(0, 256, (1, height, width, info.channels), dtype=np.uint8)
    noise = model_inputs(noise, info.preprocessing)
    map_height, map_width = channel_sums(noise).shape[1:]
    positions = max(map_height, map_width)
    rows_probed = np.minimum(np.arange(positions), map_height - 1)
    cols_probed = np.minimum(np.arange(positions), map_width - 1)
    reach_rows = np.zeros((positions, height), bool)
    reach_cols = np.zeros((positions, width), bool)
    for start in range(0, positions, chunk):
        probe = np.arange(start, min(start + chunk, positions))
        inputs = tf.repeat(noise, len(probe), axis=0)
        mask = np.zeros((len(probe), map_height, map_width), np.float32)
        mask[np.arange(len(probe)), rows_probed[probe], cols_probed[probe]] = 1.0
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            total = tf.reduce_sum(channel_sums(inputs) * mask)
        reached = np.abs(tape.gradient(total, inputs).numpy()).sum(axis=-1) > 0  # (probes, height, width)
        reach_rows[probe] = reached.any(axis=2)
        reach_cols[probe] = reached.any(axis=1)
    field = ReceptiveField(_extent(reach_rows[:map_height]), _extent(reach_cols[:map_width]))
    cache.put(key, {"rows": field.rows, "cols": field.cols})
    return field


@dataclass(frozen=True)
class ExampleView:
    """What the page and the command line show for one example."""

    example: Example
    caption: str  # the dataset's name for the image
    overlay: Image.Image  # the channel's map over the image as the model sees it, the maximum's field outlined
    crop: Image.Image  # the receptive field of the maximum, cut out and enlarged
    box: tuple[int, int, int, int]  # that field in input pixels (left, top, right, bottom)
    field_fraction: float  # the share of the input inside that field (deep layers: nearly all of it)


def _enlarged(image: Image.Image, side: int) -> Image.Image:
    """Enlarged by a whole factor (sharp pixels) until its longer side reaches about ``side``."""
    factor = max(1, side // max(image.size))
    return image.resize((image.width * factor, image.height * factor), Image.NEAREST) if factor > 1 else image


def example_views(loaded: LoadedModel, dataset: Dataset, path: str, channel: int, examples: Sequence[Example],
                  alpha: float = 0.5, colormap: str = "viridis") -> list[ExampleView]:
    """Each example's image with the channel's map overlaid and its maximum's receptive field outlined,
    and that field cropped. The maps come from one batch through the model."""
    if not examples:
        return []
    seen = [as_model_sees_it(Image.fromarray(dataset.image(example.index)), loaded.info) for example in examples]
    pixels = pixel_batch([np.asarray(image) for image in seen], loaded.info)
    maps = layer_maps(loaded.model, path, model_inputs(pixels, loaded.info.preprocessing)).numpy()[..., channel]
    field = receptive_field(loaded, path)
    views = []
    for example, image, channel_map in zip(examples, seen, maps):
        box = field.box(example.row, example.col)
        shown = _enlarged(image, DISPLAY_SIDE)
        scale = shown.width // image.width
        outlined = overlay(shown, channel_map, alpha, colormap)
        left, top, right, bottom = (edge * scale for edge in box)
        ImageDraw.Draw(outlined).rectangle((left, top, right - 1, bottom - 1), outline=(255, 64, 64),
                                           width=max(1, scale // 2, shown.width // 112))
        crop = _enlarged(image.crop(box), CROP_SIDE)
        fraction = (right - left) * (bottom - top) / (shown.width * shown.height)
        views.append(ExampleView(example, dataset.caption(example.index), outlined, crop, box, fraction))
    return views


def example_sheet(views: Sequence[ExampleView], gap: int = 6) -> Image.Image:
    """The overlays side by side, each example's crop below its overlay: one PNG for the command line."""
    cell = max(view.overlay.width for view in views)
    overlay_height = max(view.overlay.height for view in views)
    crop_height = max(view.crop.height for view in views)
    sheet = Image.new("RGB", (len(views) * (cell + gap) - gap, overlay_height + gap + crop_height), "white")
    for position, view in enumerate(views):
        left = position * (cell + gap)
        sheet.paste(view.overlay, (left, 0))
        sheet.paste(view.crop.convert("RGB"), (left + (cell - view.crop.width) // 2, overlay_height + gap))
    return sheet
