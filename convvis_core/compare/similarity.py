"""Both models over the same images in one streamed pass: layer CKA and per-filter activation change.

Each batch goes through each model ONCE (one sub-model reaching all chosen layers, as topk.py's scan);
inside the traced function every layer's maps are reduced to 16 × 16 Gram matrices (blocks of the batch), and
every matched pair of layers of equal shape to each image's per-channel moments, so only small arrays leave the
graph and memory
stays flat however many images pass. The result is cached by both models' identities and weights, the
dataset, the count and the layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from convvis_core.batches import pixel_batch, prefetched, preprocessed, scan_count
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

CACHE_NAMESPACE = "compare-v2"  # v2: layers matched in pairs (A's path, B's path); v1 entries are recomputed
BATCH_SIZE = 64
GRAM_BLOCK = 16  # CKA's minibatches: b × b Grams cost 2·b·D per image, so 16 costs a quarter of 64 (see gram_blocks)
_PASSES = PerModelCache(4)  # by model A, then B's weights and the layers
COMPARISONS = WorkCounter()  # passes run by :func:`compare_models`, by A's display name (not those from the cache)


class CompareError(ConvVisError):
    """Two models that cannot be compared: different inputs, or no layers in common."""


@dataclass(frozen=True)
class LayerMatching:
    """Which of B's layers is each A layer's counterpart: the same path, else the path one ends with the
    other's (a base nested in a head, or two heads on one base), whole path components only."""

    pairs: tuple[tuple[str, str], ...]  # (A's path, B's path), in A's graph order
    ambiguous: dict[str, tuple[str, ...]] = field(default_factory=dict)  # A's path -> B's equally good candidates

    def lines(self) -> list[str]:
        """How the layers were matched, for the CLI and the page: nothing where every path is the same."""
        renamed = [(path_a, path_b) for path_a, path_b in self.pairs if path_a != path_b]
        if not renamed:
            return []
        grouped: dict[tuple[str, str], int] = {}
        for path_a, path_b in renamed:
            grouped[_prefixes(path_a, path_b)] = grouped.get(_prefixes(path_a, path_b), 0) + 1
        lines = [f"{count} of {len(self.pairs)} layers matched by the end of their path: A's "
                 f"'{prefix_a or ''}<layer>' with B's '{prefix_b or ''}<layer>'"
                 for (prefix_a, prefix_b), count in grouped.items()]
        counterpart = dict(self.pairs)
        lines += [f"ambiguous: A's '{path}' ends like B's {', '.join(repr(c) for c in candidates)}; "
                  f"matched with '{counterpart[path]}'" for path, candidates in self.ambiguous.items()]
        return lines


def _prefixes(path_a: str, path_b: str) -> tuple[str, str]:
    """What each path has before their common end: ('', 'mobilenet_1.00_224/') for conv1 and its nested twin."""
    shorter = min(path_a.count("/"), path_b.count("/")) + 1
    tail = "/".join(path_a.split("/")[-shorter:])
    return path_a[:len(path_a) - len(tail)], path_b[:len(path_b) - len(tail)]


def _ends_alike(path_a: str, path_b: str) -> bool:
    """One path is the other's last components (``conv1`` and ``base/conv1``; not ``conv1`` and ``myconv1``)."""
    parts_a, parts_b = path_a.split("/"), path_b.split("/")
    shorter = min(len(parts_a), len(parts_b))
    return parts_a[-shorter:] == parts_b[-shorter:]


def match_layers(paths_a: Sequence[str], paths_b: Sequence[str]) -> LayerMatching:
    """Each of A's paths with its counterpart among B's: the same path first; else a path that ends with the
    other (the nearest in nesting depth; equally near ones are ambiguous: the first in B's order is taken
    and the others reported). Every B layer is matched at most once."""
    exact = set(paths_a) & set(paths_b)
    free = [path for path in paths_b if path not in exact]
    pairs, ambiguous = [], {}
    for path in paths_a:
        if path in exact:
            pairs.append((path, path))
            continue
        candidates = [other for other in free if _ends_alike(path, other)]
        if not candidates:
            continue
        depth = lambda other: abs(other.count("/") - path.count("/"))  # noqa: E731
        nearest = [other for other in candidates if depth(other) == min(map(depth, candidates))]
        if len(nearest) > 1:
            ambiguous[path] = tuple(nearest)
        pairs.append((path, nearest[0]))
        free.remove(nearest[0])
    return LayerMatching(tuple(pairs), ambiguous)


@dataclass(frozen=True)
class Similarity:
    """CKA between A's layers (rows) and B's (columns), and for each matched pair (A's layer and its
    counterpart in B, of the same shape) every channel's activation correlation over the images (and positions)."""

    layers_a: tuple[str, ...]
    layers_b: tuple[str, ...]
    cka: np.ndarray  # (len(layers_a), len(layers_b))
    correlation: dict[str, np.ndarray]  # A's path of a matched pair -> (channels,) Pearson correlation
    count: int
    dataset: str
    matching: LayerMatching = LayerMatching(())
    from_cache: bool = False

    @property
    def matched(self) -> list[str]:
        """A's paths that have a counterpart in B."""
        return [path_a for path_a, _ in self.matching.pairs]

    def counterpart(self, path: str) -> str:
        """B's layer matched with A's ``path``."""
        return dict(self.matching.pairs)[path]

    def layer_cka(self, path: str) -> float:
        """CKA of A's layer at ``path`` with its counterpart in B."""
        return float(self.cka[self.layers_a.index(path), self.layers_b.index(self.counterpart(path))])

    def activation_change(self, path: str) -> np.ndarray | None:
        """1 − correlation per channel; None where the two layers differ in shape."""
        found = self.correlation.get(path)
        return None if found is None else 1.0 - found

    def to_arrays(self) -> dict[str, np.ndarray]:
        pairs = np.array(self.matching.pairs, dtype=str).reshape(-1, 2)
        ambiguous = np.array([[path, "|".join(found)] for path, found in self.matching.ambiguous.items()],
                             dtype=str).reshape(-1, 2)
        arrays = {"layers_a": np.array(self.layers_a), "layers_b": np.array(self.layers_b), "cka": self.cka,
                  "count": np.array(self.count), "dataset": np.array(self.dataset), "pairs": pairs,
                  "ambiguous": ambiguous, "correlated": np.array(list(self.correlation), dtype=str)}
        return arrays | {f"corr_{i}": value for i, value in enumerate(self.correlation.values())}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "Similarity":
        correlated = [str(path) for path in arrays["correlated"]]
        matching = LayerMatching(tuple((str(a), str(b)) for a, b in arrays["pairs"]),
                                 {str(path): tuple(str(found).split("|")) for path, found in arrays["ambiguous"]})
        return cls(tuple(str(p) for p in arrays["layers_a"]), tuple(str(p) for p in arrays["layers_b"]),
                   np.asarray(arrays["cka"]), {path: np.asarray(arrays[f"corr_{i}"]) for i, path in enumerate(correlated)},
                   int(arrays["count"]), str(arrays["dataset"]), matching, from_cache=True)


def check_comparable(a: LoadedModel, b: LoadedModel) -> None:
    """Both models must read the same images: same input size and channels."""
    if (a.info.input_size, a.info.channels) != (b.info.input_size, b.info.channels):
        size = lambda info: f"{info.input_size[0]}×{info.input_size[1]}×{info.channels}"  # noqa: E731
        raise CompareError(f"The two models read different images: '{a.info.display_name}' takes {size(a.info)}, "
                           f"'{b.info.display_name}' takes {size(b.info)}. Compare models with the same input size "
                           "and channels (e.g. a model before and after fine-tuning).")


def matching_layers(a: LoadedModel, b: LoadedModel) -> LayerMatching:
    """A's spatial layers matched with their counterparts among B's (:func:`match_layers`)."""
    return match_layers([layer.path for layer in spatial_layers(a.model)], [layer.path for layer in spatial_layers(b.model)])


def shared_layers(a: LoadedModel, b: LoadedModel, among: Sequence[str] = ()) -> LayerMatching:
    """The layers of ``among`` (A's paths; none: every spatial layer of A) matched with B's counterparts, so a
    job on both models (``convvis atlas --compare``) computes for B only what can be compared with A."""
    check_comparable(a, b)
    matching = matching_layers(a, b)
    shared = LayerMatching(tuple(pair for pair in matching.pairs if not among or pair[0] in among),
                           {path: found for path, found in matching.ambiguous.items() if not among or path in among})
    if not shared.pairs:
        asked = f" among {', '.join(among)}" if among else ""
        raise CompareError(f"'{a.info.display_name}' and '{b.info.display_name}' have no spatial layer at the same "
                           f"path, or at a path ending with the other's{asked}, so no layer can be compared with its "
                           "counterpart. Compare two versions of one architecture (e.g. a model before and after "
                           "fine-tuning), or choose --layers both have.")
    return shared


def choose_layers(a: LoadedModel, b: LoadedModel, layers: Sequence[str] | None,
                  matrix: bool) -> tuple[list[str], list[str], LayerMatching]:
    """The layers to compare and how they pair: the given paths of A with their counterparts in B, else every
    matched layer; with ``matrix``, every spatial layer of each (matched pairs still paired)."""
    check_comparable(a, b)
    matching = matching_layers(a, b)
    if layers:
        counterparts = dict(matching.pairs)
        for path in layers:
            find_layer(a.model, path)
            find_layer(b.model, counterparts.get(path, path))  # no counterpart: B's error names its close paths
        pairs = tuple((path, counterparts.get(path, path)) for path in layers)
        return list(layers), [path_b for _, path_b in pairs], LayerMatching(
            pairs, {path: found for path, found in matching.ambiguous.items() if path in layers})
    if matrix:
        return ([layer.path for layer in spatial_layers(a.model)], [layer.path for layer in spatial_layers(b.model)],
                matching)
    if matching.pairs:
        return [path_a for path_a, _ in matching.pairs], [path_b for _, path_b in matching.pairs], matching
    raise CompareError(f"'{a.info.display_name}' and '{b.info.display_name}' have no layer at the same path (or at "
                       "a path ending with the other's), so no layer can be compared with its counterpart. Ask for "
                       "the full layer × layer matrix instead (--matrix, or 'All pairs' on the page), which compares "
                       "every layer with every other.")


PARTS = ("grams", "moments")  # what the pass reduces each batch to; the bench times it part by part


def comparison_pass(a: LoadedModel, b: LoadedModel, layers_a: tuple[str, ...], layers_b: tuple[str, ...],
                    paired: tuple[tuple[str, str], ...], parts: tuple[str, ...] = PARTS) -> Callable:
    """Traced: both models' uint8 pixel batches → Gram matrices of A's layers and of B's, and each image's
    per-channel moments of every paired layer; one forward pass of each model, only small arrays leave.
    Without ``parts`` it runs the forward passes alone (and returns a corner of each map, so none is pruned)."""

    def build() -> Callable:
        model_a, model_b = sub_model(a.model, list(layers_a)), sub_model(b.model, list(layers_b))

        @tf.function(reduce_retracing=True)
        def run(pixels_a: tf.Tensor, pixels_b: tf.Tensor):
            outputs_a = model_a(preprocessed(pixels_a, a.info.preprocessing), training=False)
            outputs_b = model_b(preprocessed(pixels_b, b.info.preprocessing), training=False)
            outputs_a = [tf.cast(x, tf.float32) for x in (outputs_a if len(layers_a) > 1 else [outputs_a])]
            outputs_b = [tf.cast(x, tf.float32) for x in (outputs_b if len(layers_b) > 1 else [outputs_b])]
            if not parts:
                return [output[:1, :1, :1, :1] for output in outputs_a + outputs_b]
            grams = (gram_blocks(outputs_a), gram_blocks(outputs_b)) if "grams" in parts else ((), ())
            moments = [image_moments(outputs_a[layers_a.index(path_a)], outputs_b[layers_b.index(path_b)])
                       for path_a, path_b in paired] if "moments" in parts else []
            return *grams, moments

        return run

    key = (model_fingerprint(b.model), a.info.preprocessing, b.info.preprocessing, layers_a, layers_b, paired, parts)
    return _PASSES.get(a.model, key, build)


def gram_blocks(outputs: Sequence[tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
    """Each layer's Gram matrices (maps flattened per image, times their transpose: CKA's kernel) over
    blocks of :data:`GRAM_BLOCK` images: (layers, blocks, 16, 16) for the batch's first blocks, and
    (layers, t, t) for its tail of 16 to 31 images (the whole batch below 32), so no image is left out.
    The unbiased minibatch estimator sums HSIC over any partition of the images: on LeNet's real
    activations, blocks of 16, 32 and 64 all agree with the whole set's CKA within 7e-4."""
    images = tf.shape(outputs[0])[0]
    head = GRAM_BLOCK * tf.maximum(images // GRAM_BLOCK - 1, 0)
    blocks, tails = [], []
    for output in outputs:
        flat = tf.reshape(output, [images, -1])
        blocked = tf.reshape(flat[:head], [-1, GRAM_BLOCK, tf.shape(flat)[1]])
        blocks.append(tf.einsum("nid,njd->nij", blocked, blocked))  # an einsum: ~2x tf.matmul's speed on CPU here
        tails.append(tf.einsum("id,jd->ij", flat[head:], flat[head:]))
    return tf.stack(blocks), tf.stack(tails)


def image_moments(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """Each image's per-channel moments over its positions: count, means (b, C), centred second moments and
    co-moment (b, C), as means. Per image, so float32 sums run over at most H × W values (the batch is merged
    in float64 by :class:`_Correlation`: 4e-6 from a float64 reference where one float32 sum over the whole
    batch was 2e-3 off), and as matrix products with a row of 1 / (H × W), which are several times faster on
    CPU than reducing the long axis (a column reduction)."""
    images, channels = tf.shape(x)[0], tf.shape(x)[-1]
    x, y = tf.reshape(x, [images, -1, channels]), tf.reshape(y, [images, -1, channels])
    positions = tf.shape(x)[1]
    averaging = tf.fill([images, 1, positions], 1.0 / tf.cast(positions, tf.float32))
    mean = lambda values: tf.matmul(averaging, values)  # noqa: E731  (b, 1, C)
    mean_x, mean_y = mean(x), mean(y)
    dx, dy = x - mean_x, y - mean_y
    return positions, mean_x[:, 0], mean_y[:, 0], mean(dx * dx)[:, 0], mean(dy * dy)[:, 0], mean(dx * dy)[:, 0]


class _Correlation:
    """Pearson correlation per channel, merged over batches (Chan et al.'s parallel update, float64)."""

    def __init__(self):
        self.n = 0
        self.mx = self.my = self.sxx = self.syy = self.sxy = 0.0

    def add_images(self, positions, mx, my, vxx, vyy, vxy) -> None:
        """A batch of :func:`image_moments` (per image, as means over ``positions``), merged in float64."""
        mx, my, vxx, vyy, vxy = (np.asarray(v, np.float64) for v in (mx, my, vxx, vyy, vxy))
        batch_x, batch_y = mx.mean(axis=0), my.mean(axis=0)
        dx, dy, positions = mx - batch_x, my - batch_y, int(positions)
        self.add(positions * len(mx), batch_x, batch_y, positions * (vxx.sum(0) + (dx * dx).sum(0)),
                 positions * (vyy.sum(0) + (dy * dy).sum(0)), positions * (vxy.sum(0) + (dx * dy).sum(0)))

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


def similarity_key(a: LoadedModel, b: LoadedModel, dataset: Dataset, count: int, layers_a, layers_b,
                   matching: LayerMatching) -> str:
    return cache_key("compare", a.identity, model_fingerprint(a.model), b.identity, model_fingerprint(b.model),
                     dataset.identity, count, list(layers_a), list(layers_b), [list(pair) for pair in matching.pairs])


def compare_models(a: LoadedModel, b: LoadedModel, dataset: Dataset, count: int | None = None,
                   layers: Sequence[str] | None = None, matrix: bool = False, batch_size: int = BATCH_SIZE,
                   progress: StepProgress | None = None, cache: ResultCache | None = None) -> Similarity:
    """CKA between the two models' layers over the first ``count`` images of ``dataset`` (matching
    layers, or with ``matrix`` every chosen layer of A against every one of B), and the activation
    correlation of every channel of each matched pair of equal shape."""
    layers_a, layers_b, matching = choose_layers(a, b, layers, matrix)
    count = scan_count(dataset, count)
    if count < MIN_BATCH:
        raise CompareError(f"CKA needs at least {MIN_BATCH} images (its unbiased estimate divides by n − 3); "
                           f"'{dataset.name}' gives {count}.")
    cache = cache or default_cache(CACHE_NAMESPACE)
    key = similarity_key(a, b, dataset, count, layers_a, layers_b, matching)
    stored = cache.get(key)
    if stored is not None:
        return Similarity.from_arrays(stored)
    with cache.computing(key):
        stored = cache.get(key)
        if stored is not None:
            return Similarity.from_arrays(stored)
        result = _compute(a, b, dataset, count, layers_a, layers_b, matching, batch_size, progress)
        COMPARISONS.add(a.info.display_name)
        cache.put(key, result.to_arrays())
    return result


def _compute(a: LoadedModel, b: LoadedModel, dataset: Dataset, count: int, layers_a: list[str], layers_b: list[str],
             matching: LayerMatching, batch_size: int, progress: StepProgress | None) -> Similarity:
    shapes_a = {path: find_layer(a.model, path) for path in layers_a}
    shapes_b = {path: find_layer(b.model, path) for path in layers_b}
    same = lambda x, y: (x.height, x.width, x.channels) == (y.height, y.width, y.channels)  # noqa: E731
    paired = [(path_a, path_b) for path_a, path_b in matching.pairs if same(shapes_a[path_a], shapes_b[path_b])]
    run = comparison_pass(a, b, tuple(layers_a), tuple(layers_b), tuple(paired))
    streamed = StreamedCKA(len(layers_a), len(layers_b))
    correlations = {path_a: _Correlation() for path_a, _ in paired}
    prepared = ((indices, pixel_batch(images, a.info))  # the same pixels for both: check_comparable
                for indices, images in dataset.batches(batch_size, count))
    for indices, pixels in prefetched(prepared):
        pixels = tf.constant(pixels)
        (blocks_a, tail_a), (blocks_b, tail_b), moments = run(pixels, pixels)
        blocks_a, blocks_b = blocks_a.numpy(), blocks_b.numpy()
        for block in range(blocks_a.shape[1]):
            streamed.add(blocks_a[:, block], blocks_b[:, block])
        streamed.add(tail_a.numpy(), tail_b.numpy())
        for (path, _), found in zip(paired, moments):
            correlations[path].add_images(*(value.numpy() for value in found))
        if progress:
            progress(int(indices[-1]) + 1, count)
    return Similarity(tuple(layers_a), tuple(layers_b), streamed.matrix(),
                      {path: found.value() for path, found in correlations.items()}, count, dataset.identity, matching)
