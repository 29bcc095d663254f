"""Both models over the same images in one streamed pass: layer CKA and per-filter activation change.

Each batch goes through each model ONCE (one sub-model reaching all chosen layers, as topk.py's scan);
inside the traced function every layer's maps are reduced to a b × b Gram matrix, and every matched
pair of layers of equal shape to per-channel moments, so only small arrays leave the graph and memory
stays flat however many images pass. The result is cached by both models' identities and weights, the
dataset, the count and the layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from convvis_core.cache import ResultCache, cache_key, default_cache, model_fingerprint
from convvis_core.compare.cka import MIN_BATCH, StreamedCKA
from convvis_core.counters import WorkCounter
from convvis_core.datasets.base import Dataset
from convvis_core.errors import ConvVisError
from convvis_core.graph import sub_model
from convvis_core.layers import find_layer, spatial_layers
from convvis_core.models.base import LoadedModel
from convvis_core.per_model import PerModelCache
from convvis_core.progress import StepProgress
from convvis_core.topk import prefetched, model_inputs, pixel_batch, scan_count

CACHE_NAMESPACE = "compare-v1"
BATCH_SIZE = 64
_PASSES = PerModelCache(4)  # by model A, then B's weights and the layers
COMPARISONS = WorkCounter()  # passes run by :func:`compare_models`, by A's display name (not those from the cache)


class CompareError(ConvVisError):
    """Two models that cannot be compared: different inputs, or no layers in common."""


@dataclass(frozen=True)
class Similarity:
    """CKA between A's layers (rows) and B's (columns), and for each matched pair (same path, same shape)
    every channel's activation correlation over the images (and positions)."""

    layers_a: tuple[str, ...]
    layers_b: tuple[str, ...]
    cka: np.ndarray  # (len(layers_a), len(layers_b))
    correlation: dict[str, np.ndarray]  # matched path -> (channels,) Pearson correlation
    count: int
    dataset: str
    from_cache: bool = False

    @property
    def matched(self) -> list[str]:
        return [path for path in self.layers_a if path in self.layers_b]

    def layer_cka(self, path: str) -> float:
        return float(self.cka[self.layers_a.index(path), self.layers_b.index(path)])

    def activation_change(self, path: str) -> np.ndarray | None:
        """1 − correlation per channel; None where the two layers differ in shape."""
        found = self.correlation.get(path)
        return None if found is None else 1.0 - found

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"layers_a": np.array(self.layers_a), "layers_b": np.array(self.layers_b), "cka": self.cka,
                  "count": np.array(self.count), "dataset": np.array(self.dataset),
                  "correlated": np.array(list(self.correlation), dtype=str)}
        return arrays | {f"corr_{i}": value for i, value in enumerate(self.correlation.values())}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "Similarity":
        correlated = [str(path) for path in arrays["correlated"]]
        return cls(tuple(str(p) for p in arrays["layers_a"]), tuple(str(p) for p in arrays["layers_b"]),
                   np.asarray(arrays["cka"]), {path: np.asarray(arrays[f"corr_{i}"]) for i, path in enumerate(correlated)},
                   int(arrays["count"]), str(arrays["dataset"]), from_cache=True)


def check_comparable(a: LoadedModel, b: LoadedModel) -> None:
    """Both models must read the same images: same input size and channels."""
    if (a.info.input_size, a.info.channels) != (b.info.input_size, b.info.channels):
        size = lambda info: f"{info.input_size[0]}×{info.input_size[1]}×{info.channels}"  # noqa: E731
        raise CompareError(f"The two models read different images: '{a.info.display_name}' takes {size(a.info)}, "
                           f"'{b.info.display_name}' takes {size(b.info)}. Compare models with the same input size "
                           "and channels (e.g. a model before and after fine-tuning).")


def matching_layers(a: LoadedModel, b: LoadedModel) -> list[str]:
    """The spatial layers both models have at the same path, in A's graph order."""
    theirs = {layer.path for layer in spatial_layers(b.model)}
    return [layer.path for layer in spatial_layers(a.model) if layer.path in theirs]


def shared_layers(a: LoadedModel, b: LoadedModel, among: Sequence[str] = ()) -> list[str]:
    """The layers of ``among`` (none: every spatial layer of A) that B has at the same path, in A's order, so
    a job on both models (``convvis atlas --compare``) computes for B only what can be compared with A."""
    check_comparable(a, b)
    theirs = matching_layers(a, b)
    shared = [path for path in among if path in theirs] if among else theirs
    if not shared:
        asked = f" among {', '.join(among)}" if among else ""
        raise CompareError(f"'{a.info.display_name}' and '{b.info.display_name}' have no spatial layer at the same "
                           f"path{asked}, so no layer can be compared with its counterpart. Compare two versions of "
                           "one architecture (e.g. a model before and after fine-tuning), or choose --layers both have.")
    return shared


def choose_layers(a: LoadedModel, b: LoadedModel, layers: Sequence[str] | None,
                  matrix: bool) -> tuple[list[str], list[str]]:
    """The layers to compare: the given paths (in both), else every matching layer; with ``matrix``
    and no match, every spatial layer of each."""
    check_comparable(a, b)
    if layers:
        for path in layers:
            find_layer(a.model, path), find_layer(b.model, path)
        return list(layers), list(layers)
    matched = matching_layers(a, b)
    if matched:
        return matched, matched
    if matrix:
        return [layer.path for layer in spatial_layers(a.model)], [layer.path for layer in spatial_layers(b.model)]
    raise CompareError(f"'{a.info.display_name}' and '{b.info.display_name}' have no layer at the same path, so no "
                       "layer can be compared with its counterpart. Ask for the full layer × layer matrix instead "
                       "(--matrix, or 'All pairs' on the page), which compares every layer with every other.")


def _pass(a: LoadedModel, b: LoadedModel, layers_a: tuple[str, ...], layers_b: tuple[str, ...],
          paired: tuple[str, ...]) -> Callable:
    """Traced: both models' uint8 pixel batches → Gram matrices of A's layers and of B's, and the
    per-channel moments of every paired layer; one forward pass of each model, only small arrays leave."""

    def build() -> Callable:
        model_a, model_b = sub_model(a.model, list(layers_a)), sub_model(b.model, list(layers_b))

        def grams(outputs) -> tf.Tensor:
            flats = [tf.reshape(tf.cast(output, tf.float32), [tf.shape(output)[0], -1]) for output in outputs]
            return tf.stack([tf.matmul(flat, flat, transpose_b=True) for flat in flats])

        @tf.function(reduce_retracing=True)
        def run(pixels_a: tf.Tensor, pixels_b: tf.Tensor):
            outputs_a = model_a(model_inputs(pixels_a, a.info.preprocessing), training=False)
            outputs_b = model_b(model_inputs(pixels_b, b.info.preprocessing), training=False)
            outputs_a = outputs_a if len(layers_a) > 1 else [outputs_a]
            outputs_b = outputs_b if len(layers_b) > 1 else [outputs_b]
            moments = [_moments(tf.cast(outputs_a[layers_a.index(path)], tf.float32),
                                tf.cast(outputs_b[layers_b.index(path)], tf.float32)) for path in paired]
            return grams(outputs_a), grams(outputs_b), moments

        return run

    key = (model_fingerprint(b.model), a.info.preprocessing, b.info.preprocessing, layers_a, layers_b, paired)
    return _PASSES.get(a.model, key, build)


def _moments(x: tf.Tensor, y: tf.Tensor):
    """Per channel over images × positions: count, means, centred second moments and co-moment."""
    channels = tf.shape(x)[-1]
    x = tf.reshape(x, [-1, channels])
    y = tf.reshape(y, [-1, channels])
    mx, my = tf.reduce_mean(x, 0), tf.reduce_mean(y, 0)
    dx, dy = x - mx, y - my
    return tf.shape(x)[0], mx, my, tf.reduce_sum(dx * dx, 0), tf.reduce_sum(dy * dy, 0), tf.reduce_sum(dx * dy, 0)


class _Correlation:
    """Pearson correlation per channel, merged over batches (Chan et al.'s parallel update, float64)."""

    def __init__(self):
        self.n = 0
        self.mx = self.my = self.sxx = self.syy = self.sxy = 0.0

    def add(self, n, mx, my, sxx, syy, sxy) -> None:
        mx, my, sxx, syy, sxy = (np.asarray(v, np.float64) for v in (mx, my, sxx, syy, sxy))
        total = self.n + int(n)
        dx, dy = mx - self.mx, my - self.my
        weight = self.n * int(n) / total
        self.sxx = self.sxx + sxx + dx * dx * weight
        self.syy = self.syy + syy + dy * dy * weight
        self.sxy = self.sxy + sxy + dx * dy * weight
        self.mx = self.mx + dx * int(n) / total
        self.my = self.my + dy * int(n) / total
        self.n = total

    def value(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            both_constant = (self.sxx == 0) & (self.syy == 0)
            found = self.sxy / np.sqrt(self.sxx * self.syy)
        return np.where(both_constant, 1.0, np.nan_to_num(found, nan=0.0))  # two dead filters did not change


def similarity_key(a: LoadedModel, b: LoadedModel, dataset: Dataset, count: int, layers_a, layers_b) -> str:
    return cache_key("compare", a.identity, model_fingerprint(a.model), b.identity, model_fingerprint(b.model),
                     dataset.identity, count, list(layers_a), list(layers_b))


def compare_models(a: LoadedModel, b: LoadedModel, dataset: Dataset, count: int | None = None,
                   layers: Sequence[str] | None = None, matrix: bool = False, batch_size: int = BATCH_SIZE,
                   progress: StepProgress | None = None, cache: ResultCache | None = None) -> Similarity:
    """CKA between the two models' layers over the first ``count`` images of ``dataset`` (matching
    layers, or with ``matrix`` every chosen layer of A against every one of B), and the activation
    correlation of every channel of each matched pair of equal shape."""
    layers_a, layers_b = choose_layers(a, b, layers, matrix)
    count = scan_count(dataset, count)
    if count < MIN_BATCH:
        raise CompareError(f"CKA needs at least {MIN_BATCH} images (its unbiased estimate divides by n − 3); "
                           f"'{dataset.name}' gives {count}.")
    cache = cache or default_cache(CACHE_NAMESPACE)
    key = similarity_key(a, b, dataset, count, layers_a, layers_b)
    stored = cache.get(key)
    if stored is not None:
        return Similarity.from_arrays(stored)
    with cache.computing(key):
        stored = cache.get(key)
        if stored is not None:
            return Similarity.from_arrays(stored)
        result = _compute(a, b, dataset, count, layers_a, layers_b, batch_size, progress)
        COMPARISONS.add(a.info.display_name)
        cache.put(key, result.to_arrays())
    return result


def _compute(a: LoadedModel, b: LoadedModel, dataset: Dataset, count: int, layers_a: list[str], layers_b: list[str],
             batch_size: int, progress: StepProgress | None) -> Similarity:
    shapes_a = {path: find_layer(a.model, path) for path in layers_a}
    shapes_b = {path: find_layer(b.model, path) for path in layers_b}
    same = lambda x, y: (x.height, x.width, x.channels) == (y.height, y.width, y.channels)  # noqa: E731
    paired = [path for path in layers_a if path in shapes_b and same(shapes_a[path], shapes_b[path])]
    run = _pass(a, b, tuple(layers_a), tuple(layers_b), tuple(paired))
    streamed = StreamedCKA(len(layers_a), len(layers_b))
    correlations = {path: _Correlation() for path in paired}
    prepared = ((indices, pixel_batch(images, a.info))  # the same pixels for both: check_comparable
                for indices, images in dataset.batches(batch_size, count))
    for indices, pixels in prefetched(prepared):
        pixels = tf.constant(pixels)
        grams_a, grams_b, moments = run(pixels, pixels)
        streamed.add(grams_a.numpy(), grams_b.numpy())
        for path, found in zip(paired, moments):
            correlations[path].add(*(value.numpy() for value in found))
        if progress:
            progress(int(indices[-1]) + 1, count)
    return Similarity(tuple(layers_a), tuple(layers_b), streamed.matrix(),
                      {path: found.value() for path, found in correlations.items()}, count, dataset.identity)
