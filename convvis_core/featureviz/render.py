"""The render loop: objective × parameterization × transforms × optimizer, for many filters at once.

One traced step serves every filter of a layer: the filter index is a tensor argument, never a
Python constant (the keras.io example re-traces per filter: half its time). Filters are optimized in batches,
one image each; a repeat request is served from the result cache.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, replace
from typing import Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from convvis_core.cache import ResultCache, cache_key, default_cache, model_fingerprint
from convvis_core.config import MAX_FILTERS_PER_REQUEST, MAX_IMAGE_SIDE, MAX_RENDERERS_PER_MODEL, MAX_STEPS
from convvis_core.errors import ConvVisError, LayerError, SettingsError
from convvis_core.featureviz.optimizers import make_optimizer
from convvis_core.featureviz.parameterizations import make_parameterization
from convvis_core.featureviz.objectives import Diversity, Filter, LayerTerm, Reading, Term, per_class
from convvis_core.featureviz.presets import default_preset, fitted_preset
from convvis_core.featureviz.settings import Settings
from convvis_core.featureviz.transforms import apply_transforms, build_transforms
from convvis_core.graph import LOGITS, PRE_ACTIVATION, activation_name, sub_model
from convvis_core.layers import find_layer, get_layer
from convvis_core.models.base import LoadedModel
from convvis_core.per_model import PerModelCache
from convvis_core.parallel import in_slices
from convvis_core.precision import fast_dtype, with_compute_dtype
from convvis_core.progress import StepProgress
from convvis_core.preprocessing import preprocess

CACHE_NAMESPACE = "featureviz-v2"  # v2: "dead" means zero gradient only
FrameCallback = Callable[[int, dict[int, np.ndarray]], None]  # (step, {filter: uint8 image})


class RenderStats:
    """Optimizations actually run (not answered from the cache), by layer: public, so tests and benches
    see that work was shared without patching the renderer."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()  # batches optimized
        self.images: Counter[str] = Counter()  # pictures optimized (a padded batch counts its padding)
        self.traces: Counter[tuple[str, int]] = Counter()  # optimization steps traced, by (layer, batch size)
        self._lock = threading.Lock()

    def add(self, layer: str, images: int) -> None:
        with self._lock:
            self.runs[layer] += 1
            self.images[layer] += images

    def traced(self, layer: str, size: int) -> None:
        with self._lock:
            self.traces[layer, size] += 1


RENDER_STATS = RenderStats()


@dataclass(frozen=True)
class FilterResult:
    filter_index: int
    image: np.ndarray  # uint8, (H, W, 3) or (H, W) for grayscale models
    start_activation: float  # the objective on the starting image
    final_activation: float  # the objective on the final image (no transforms)
    optimized_value: float  # what was maximized at the end (pre-activation for rectified layers)
    dead: bool  # zero gradient throughout: nothing in the image moves this filter (e.g. all-zero weights)
    from_cache: bool = False
    preset: str | None = None  # the named preset it was made with, where the caller knows it

    @property
    def weak(self) -> bool:
        """Alive (the image moves it), but what was maximized never rose above zero: the filter barely
        fires on its picture. Not dead: another recipe (plain pixels, a larger step) may reach it."""
        return not self.dead and self.optimized_value <= 0


class _Batch:
    """Variables and traced functions for one batch size (so the trace is reused across chunks)."""

    def __init__(self, renderer: "_Renderer", size: int):
        self.params = tf.Variable(renderer.param.initial([0] * size, 0), trainable=False)
        self.optimizer = make_optimizer(renderer.settings.optimizer, renderer.settings.learning_rate,
                                        tuple(self.params.shape))
        self.max_gradient = tf.Variable(tf.zeros([size]), trainable=False)
        self.step = tf.function(self._step, autograph=False)
        self.renderer = renderer

    def evaluate(self, filters: tf.Tensor, params: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor]:
        """(optimized, reported) values on the untransformed images of ``params`` (default: the
        current ones), in float32. Eager: two calls per request cost less than tracing another
        function of the model."""
        images = self.renderer.param.to_image(self.params if params is None else params)
        return self.renderer.objective_on(self.renderer.target, images, filters)

    def _step(self, filters: tf.Tensor, iteration: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        renderer = self.renderer
        RENDER_STATS.traced(renderer.layer, int(filters.shape[0]))  # Python runs here only while tracing
        with tf.GradientTape() as tape:
            tape.watch(self.params)
            images = renderer.param.to_image(self.params)
            values, _ = renderer.objective_on(renderer.fast_target, images, filters, tf.stack([seed, iteration]),
                                              slices=None)
            total = tf.reduce_sum(values)
        gradients = tape.gradient(total, self.params)
        norms = tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=list(range(1, len(gradients.shape)))))
        self.max_gradient.assign(tf.maximum(self.max_gradient, norms))
        self.optimizer.step(self.params, gradients, iteration)
        return values


class _Renderer:
    """Everything traced for one (model, layer, settings), reused by every request that matches."""

    def __init__(self, loaded: LoadedModel, layer: str, settings: Settings, compute_dtype: str):
        self.settings = settings
        self.layer = layer
        self.objective = settings.objective
        self.preprocessing = loaded.info.preprocessing
        self.fixed_size: tuple[int, int] | None = None
        # Every layer the objective reads, in one sub-model. A rectified layer (ReLU, or a conv with a fused
        # activation) is also read before its activation, where gradients do not vanish, and that is what most
        # terms maximize; the objective is reported on the real (rectified) outputs.
        self.paths = sorted({layer if read is None else read for read in self.objective.layers()}) or [layer]
        self.outputs = [output for path in self.paths for output in
                        ([path + PRE_ACTIVATION, path] if activation_name(get_layer(loaded.model, path)) else [path])]
        self.target = sub_model(loaded.model, self.outputs)
        if LOGITS in self.paths:
            self.fixed_size = loaded.info.input_size
            side = max(self.fixed_size)
        else:
            side = settings.size
            if tuple(self.target.inputs[0].shape[1:3]) not in ((None, None), (side, side)):
                try:
                    self.target(tf.zeros([1, side, side, loaded.info.channels]))
                except (ValueError, tf.errors.InvalidArgumentError):  # not fully convolutional up to the layer
                    self.fixed_size = loaded.info.input_size
        self.fast_target = with_compute_dtype(self.target, compute_dtype)
        self.param = make_parameterization(settings.parameterization, side, loaded.info.channels, settings.decorrelate)
        self.transforms = build_transforms(settings)
        self._batches: dict[int, _Batch] = {}
        self.lock = threading.Lock()  # the variables are shared: one request at a time

    def objective_on(self, target: keras.Model, images: tf.Tensor, filters: tf.Tensor,
                     seed: tf.Tensor | None = None, slices: int | None = 1) -> tuple[tf.Tensor, tf.Tensor]:
        """(value to optimize, value to report) per image; transformed when a seed is given; the
        model runs as ``slices`` parallel parts of the batch (None: one per core)."""
        if seed is not None:
            images = apply_transforms(self.transforms, images, seed)
        if self.fixed_size is not None:
            images = tf.image.resize(images, self.fixed_size)
        outputs = dict(zip(self.outputs, (tf.cast(output, tf.float32) for output in
                                          in_slices(target, preprocess(images * 255.0, self.preprocessing), slices))))
        reading = Reading(self.layer, {path: outputs.get(path + PRE_ACTIVATION, outputs[path]) for path in self.paths},
                          {path: outputs[path] for path in self.paths}, filters, images)
        return self.objective.value(reading), self.objective.value(reading.as_is())

    def run(self, filters: list[int], steps: int, seed: int, progress: StepProgress | None,
            on_frame: FrameCallback | None, done_before: int, total: int, preview_every: int,
            starts: list[int] | None = None) -> list[FilterResult]:
        """Optimize one image per entry of ``filters``, each starting from ``(seed, starts[i])``
        (default: its filter, so a picture does not depend on its batch)."""
        RENDER_STATS.add(self.layer, len(filters))
        batch = self.batch(len(filters))
        initial = self.param.initial(filters if starts is None else starts, seed)
        batch.params.assign(initial)
        batch.optimizer.reset()
        batch.max_gradient.assign(tf.zeros_like(batch.max_gradient))
        indices = tf.constant(filters, tf.int32)
        seed_tensor = tf.constant(seed, tf.int32)
        for iteration in range(steps):
            batch.step(indices, tf.constant(iteration, tf.int32), seed_tensor)
            if progress:
                progress(done_before + iteration + 1, total)
            if on_frame and (iteration == 0 or (iteration + 1) % preview_every == 0 or iteration + 1 == steps):
                on_frame(iteration + 1, dict(zip(filters, self._display(batch))))  # the first as soon as it exists
        start = batch.evaluate(indices, tf.constant(initial))[1].numpy()  # after the loop: not before the first frame
        optimized, final = (values.numpy() for values in batch.evaluate(indices))
        if not (np.isfinite(final).all() and np.isfinite(batch.params.numpy()).all()):
            raise SettingsError(
                "The optimization diverged (the image became NaN or infinite). Lower the learning rate "
                f"(now {self.settings.learning_rate}) or switch to the Adam optimizer, and run again."
            )
        images = self._display(batch)
        dead = batch.max_gradient.numpy() == 0
        return [FilterResult(f, images[i], float(start[i]), float(final[i]), float(optimized[i]), bool(dead[i]))
                for i, f in enumerate(filters)]

    def batch(self, size: int) -> _Batch:
        """Variables and traced step for ``size`` images at once, made the first time they are asked for."""
        return self._batches.get(size) or self._batches.setdefault(size, _Batch(self, size))

    def traced(self, size: int) -> bool:
        """Whether the step for ``size`` images is already traced (builds nothing)."""
        batch = self._batches.get(size)
        return batch is not None and batch.step.experimental_get_tracing_count() > 0

    def prepare(self, size: int) -> None:
        """Trace and run the step for ``size`` images once (on throwaway values: a request resets
        them), so that a request's first step costs no more than any other."""
        batch = self.batch(size)
        if batch.step.experimental_get_tracing_count() == 0:
            indices = tf.zeros([size], tf.int32)
            zero = tf.constant(0, tf.int32)
            batch.step(indices, zero, zero)
            batch.evaluate(indices)

    def _display(self, batch: _Batch) -> np.ndarray:
        images = self.param.to_display(self.param.to_image(batch.params).numpy())
        return images[..., 0] if images.shape[-1] == 1 else images


_RENDERERS = PerModelCache(MAX_RENDERERS_PER_MODEL)


def _renderer_key(loaded: LoadedModel, layer: str, settings: Settings, compute_dtype: str) -> tuple:
    return layer, loaded.info.preprocessing, compute_dtype, settings.traced_part()


def _renderer(loaded: LoadedModel, layer: str, settings: Settings, compute_dtype: str) -> _Renderer:
    return _RENDERERS.get(loaded.model, _renderer_key(loaded, layer, settings, compute_dtype),
                          lambda: _Renderer(loaded, layer, settings, compute_dtype))


def _traced(loaded: LoadedModel, layer: str, settings: Settings, size: int) -> bool:
    """Whether the step for ``size`` images is already traced (builds nothing, takes no lock)."""
    try:
        renderer = _RENDERERS[loaded.model].get(_renderer_key(loaded, layer, settings, fast_dtype()))
    except KeyError:  # nothing kept for this model yet
        return False
    return renderer is not None and renderer.traced(size)


def _check_request(loaded: LoadedModel, layer: str, filters: Sequence[int], settings: Settings) -> tuple[str, int]:
    """Validate layer, filters and limits; returns the layer key and how many filters it has."""
    if not filters:
        raise ConvVisError("No filters chosen: pick at least one filter index.")
    if len(filters) > MAX_FILTERS_PER_REQUEST or settings.steps > MAX_STEPS or settings.size > MAX_IMAGE_SIDE:
        raise SettingsError(
            f"Request too large: at most {MAX_FILTERS_PER_REQUEST} filters, {MAX_STEPS} steps and "
            f"{MAX_IMAGE_SIDE} px per run (asked {len(filters)} filters, {settings.steps} steps, {settings.size} px)."
        )
    layer, count = grid_units(loaded, layer, settings.objective)
    filters = [int(f) for f in filters]
    reads = [(leaf.layer or layer, leaf) for leaf in settings.objective.leaves() if isinstance(leaf, LayerTerm)]
    for path, term in [(layer, Filter())] + reads:  # Filter(): every filter asked is one of the grid layer's
        count_there, what = _units(loaded, path)
        problem = term.problem(count_there, filters)
        if problem:
            raise LayerError(f"{problem}: {path} has {count_there} {what} (0–{count_there - 1}).")
    return layer, count


def _units(loaded: LoadedModel, layer: str) -> tuple[int, str]:
    """How many units a layer has and what they are: a spatial layer's channels, or the classes (LOGITS)."""
    if layer == LOGITS:
        if not loaded.info.is_classifier:
            raise ConvVisError(f"{loaded.info.display_name} has no classes, so there is no class logit to maximize.")
        return len(loaded.info.class_names), "classes"
    return find_layer(loaded.model, layer).channels, "channels"


def grid_units(loaded: LoadedModel, layer: str, objective: Term) -> tuple[str, int]:
    """The layer whose units a grid of ``objective``'s pictures shows, and how many it has: the classes when
    the objective maximizes each image's own class logit, else ``layer``'s channels."""
    layer = LOGITS if per_class(objective) else layer
    return layer, _units(loaded, layer)[0]


def _result_keys(loaded: LoadedModel, layer: str, filters: Sequence[int], settings: Settings) -> dict[int, str]:
    """Where each filter's picture is cached: model weights, pixels, layer, filter, compute precision and
    every setting but batching, so a batch job and a page find each other's results."""
    model, dtype, part = model_fingerprint(loaded.model), fast_dtype(), settings.result_part()  # once per request
    return {f: cache_key(model, loaded.info.preprocessing, layer, f, dtype, part)
            for f in dict.fromkeys(int(f) for f in filters)}


def result_key(loaded: LoadedModel, layer: str, filter_index: int, settings: Settings) -> str:
    """Where one filter's picture is cached (see :func:`_result_keys`)."""
    return _result_keys(loaded, layer, [filter_index], settings)[int(filter_index)]


def _from_cache(cache: ResultCache, keys: dict[int, str]) -> dict[int, FilterResult]:
    found = {}
    for f, key in keys.items():
        stored = cache.get(key)
        if stored is not None:
            found[f] = FilterResult(f, stored["image"], float(stored["start"]), float(stored["final"]),
                                    float(stored["optimized"]), bool(stored["dead"]), from_cache=True)
    return found


def cached_filters(loaded: LoadedModel, layer: str, filters: Sequence[int], settings: Settings = Settings(), *,
                   cache: ResultCache | None = None) -> dict[int, FilterResult]:
    """The results already computed (by a page, the CLI or an atlas) for these filters; computes nothing."""
    layer, _ = _check_request(loaded, layer, filters, settings)
    return _from_cache(cache if cache is not None else default_cache(CACHE_NAMESPACE),
                       _result_keys(loaded, layer, filters, settings))


def cached_under(loaded: LoadedModel, layer: str, filters: Sequence[int], presets: Mapping[str, Settings], *,
                 cache: ResultCache | None = None) -> dict[int, FilterResult]:
    """For each filter, its picture under the first of ``presets`` (name → settings, in order of preference)
    it was computed with before, by a page, the CLI or an atlas, labelled with that name; computes nothing."""
    found: dict[int, FilterResult] = {}
    for name, settings in presets.items():
        missing = [f for f in dict.fromkeys(int(f) for f in filters) if f not in found]
        if not missing:
            break
        found.update({f: replace(result, preset=name)
                      for f, result in cached_filters(loaded, layer, missing, settings, cache=cache).items()})
    return found


def chunk_size(count: int, batch_size: int) -> int:
    """Filters per batch for ``count`` filters: even chunks of at most ``batch_size`` (one trace, little padding)."""
    return math.ceil(count / math.ceil(count / batch_size)) if count else 0


def prepare_in_background(loaded: LoadedModel, layer: str, filter_count: int,
                          settings: Settings) -> threading.Thread | None:
    """Build and trace, in a background thread, what a request for ``filter_count`` filters of ``layer``
    will use (call it while the user is still choosing): the first preview frame of a layer then comes
    without the trace's delay. A request arriving meanwhile waits for it; problems are left for the
    request to report. None when it is traced already (a page calls this at every rerun)."""
    try:
        layer_key, _ = _check_request(loaded, layer, [0], settings)
    except ConvVisError:  # the request will say it
        return None
    size = chunk_size(filter_count, settings.batch_size)
    if _traced(loaded, layer_key, settings, size):
        return None

    def work() -> None:
        try:
            renderer = _renderer(loaded, layer_key, settings, fast_dtype())
            with renderer.lock:
                renderer.prepare(size)
        except Exception:  # noqa: BLE001 - the request itself will raise it with its message
            pass

    thread = threading.Thread(target=work, name=f"convvis-prepare-{layer}", daemon=True)
    thread.start()
    return thread


def visualize_filters(loaded: LoadedModel, layer: str, filters: Sequence[int], settings: Settings = Settings(), *,
                      cache: ResultCache | None = None, progress: StepProgress | None = None,
                      on_frame: FrameCallback | None = None, preview_every: int = 8) -> list[FilterResult]:
    """Optimize one image per filter; cached results are returned at once, the rest are computed.

    ``progress(done, total)`` is called after every step; ``on_frame(step, {filter: image})`` after the
    first step and every ``preview_every`` steps. Results come back in the order of ``filters``.
    """
    layer, _ = _check_request(loaded, layer, filters, settings)
    cache = cache if cache is not None else default_cache(CACHE_NAMESPACE)
    keys = _result_keys(loaded, layer, filters, settings)
    results: dict[int, FilterResult] = {}

    def from_cache() -> list[int]:
        """Fill ``results`` from the cache; the filters still missing."""
        results.update(_from_cache(cache, {f: key for f, key in keys.items() if f not in results}))
        return [f for f in keys if f not in results]

    missing = from_cache()
    if missing:
        renderer = _renderer(loaded, layer, settings, fast_dtype())
        with renderer.lock:  # the variables are shared: one request at a time
            missing = from_cache()  # a session that held the lock may have just computed some of them
            chunks = math.ceil(len(missing) / settings.batch_size)
            per_chunk = chunk_size(len(missing), settings.batch_size)
            total = chunks * settings.steps
            for index in range(chunks):
                chunk = missing[index * per_chunk:(index + 1) * per_chunk]
                padded = chunk + [chunk[-1]] * (per_chunk - len(chunk))
                for result in renderer.run(padded, settings.steps, settings.seed, progress, on_frame,
                                           index * settings.steps, total, preview_every)[:len(chunk)]:
                    results[result.filter_index] = result
                    cache.put(keys[result.filter_index], {
                        "image": result.image, "start": np.float64(result.start_activation),
                        "final": np.float64(result.final_activation),
                        "optimized": np.float64(result.optimized_value), "dead": np.bool_(result.dead)})
    return [results[int(f)] for f in filters]


def diverse_pictures(loaded: LoadedModel, layer: str, filter_index: int, count: int, settings: Settings = Settings(),
                     weight: float = 3.0, *, cache: ResultCache | None = None,
                     progress: StepProgress | None = None) -> list[FilterResult]:
    """``count`` different pictures of one filter (Lucid's diversity objective): optimized together, each
    from its own start, the objective plus ``weight`` × :class:`~convvis_core.featureviz.objectives.Diversity`
    (each picture's layer statistics pushed away from the others'). Cached like any picture."""
    if not 2 <= count <= 8:
        raise SettingsError(f"Ask for 2 to 8 different pictures (asked {count}).")
    return _together(loaded, layer, int(filter_index), count,
                     settings.replace(objective=settings.objective + weight * Diversity()), cache, progress)


def visualize(loaded: LoadedModel, objective: Term, preset: str | None = None, *, count: int = 1,
              cache: ResultCache | None = None, progress: StepProgress | None = None, **changes) -> list[FilterResult]:
    """Pictures that maximize ``objective``, for a notebook or a script:
    ``visualize(loaded, Channel("conv_pw_8_relu", 3) - 0.5 * Channel("conv_pw_8_relu", 7), preset="fast Lucid")``.

    Each term names its layer (there is no grid, so no filter "being visualized"). ``count`` pictures from as
    many starts are optimized together (add ``Diversity(layer)`` to push them apart); ``preset`` (default: the
    one that fits the model) with any :class:`Settings` field changed by ``changes``. Cached as the pages' are."""
    if None in objective.layers() or objective.own_filter or not objective.layers():
        raise SettingsError(f"{objective} must name the layer of every term and no filter of a grid: write e.g. "
                            'Channel("conv2_relu", 3), Neuron("conv2_relu", 3), ClassLogit(7), DeepDream("conv2_relu").')
    if not 1 <= count <= 8:
        raise SettingsError(f"Ask for 1 to 8 pictures (asked {count}).")
    name = preset or default_preset(loaded.info.input_size)
    settings = fitted_preset(name, loaded.info.input_size).replace(objective=objective, **changes)
    return [replace(result, preset=name) for result in
            _together(loaded, min(objective.layers()), 0, count, settings, cache, progress)]


def _together(loaded: LoadedModel, layer: str, filter_index: int, count: int, settings: Settings,
              cache: ResultCache | None, progress: StepProgress | None) -> list[FilterResult]:
    """``count`` pictures of ``layer``'s filter optimized in one batch, each from its own start (the filter's,
    then 7919 apart), cached as one entry: a term such as diversity makes each depend on the others."""
    layer, _ = _check_request(loaded, layer, [filter_index], settings)
    cache = cache if cache is not None else default_cache(CACHE_NAMESPACE)
    key = cache_key(model_fingerprint(loaded.model), loaded.info.preprocessing, layer, filter_index, fast_dtype(),
                    settings.result_part(), "together", count)
    stored = cache.get(key)
    if stored is None:
        renderer = _renderer(loaded, layer, settings, fast_dtype())
        with renderer.lock:
            results = renderer.run([filter_index] * count, settings.steps, settings.seed, progress, None, 0,
                                   settings.steps, settings.steps, starts=[filter_index + 7919 * i for i in range(count)])
        stored = {"images": np.stack([r.image for r in results]), "start": np.array([r.start_activation for r in results]),
                  "final": np.array([r.final_activation for r in results]),
                  "optimized": np.array([r.optimized_value for r in results]),
                  "dead": np.array([r.dead for r in results])}
        cache.put(key, stored)
        cached = False
    else:
        cached = True
    return [FilterResult(filter_index, stored["images"][i], float(stored["start"][i]), float(stored["final"][i]),
                         float(stored["optimized"][i]), bool(stored["dead"][i]), from_cache=cached) for i in range(count)]
