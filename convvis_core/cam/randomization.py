"""Does a map depend on the model? Model randomization (Adebayo et al., "Sanity Checks for Saliency
Maps", NeurIPS 2018).

A map that explains the model must change when the model's weights are replaced by random ones; a map
that stays the same shows something else (the image's edges, say). So the weighted layers that lie
between the explained layer and the target (for input-gradient methods: every weighted layer before
the target) are re-initialized from the output down, one step at a time, each layer by its own
initializers (``kernel_initializer``, ``bias_initializer``, a BatchNormalization's gamma, beta and
moving statistics, ...; seeded per layer), and the map is recomputed at every step and compared with
the original: Spearman rank correlation and SSIM (see :data:`MEASURES`). **Cascading** keeps the
layers randomized so far; **independent** randomizes one step at a time, the rest as trained. A step
is one weighted layer together with the normalization layer right after it (a convolution and its
BatchNormalization), as the paper's Inception blocks are.

A method whose map keeps a Spearman correlation of at least :data:`FLAG_THRESHOLD` once every layer
above the explained one is randomized is flagged: its map does not depend on the model above that
layer.

Where the weights change: in place, on a copy of the model made once per model and kept while the
model lives (:func:`randomizable`), never on the model sessions share. The app serves several
sessions from one cached model, and every traced pass of every page reads its variables by reference:
randomizing them in place, even under a lock, would change what another session's Activations or
Heatmaps page computes meanwhile, unless every one of those passes took the lock too. A copy leaves
them untouched and never waits on them. It is made once (``clone_model`` + ``set_weights``) because
its traced passes (the probes) are what cost (on MobileNet about 0.5 s to clone and 1.5 s to trace,
against 0.05 s a Grad-CAM map): kept, a check costs little more than the maps it needs (a worker draws
the new weights and measures the similarities while TensorFlow computes the maps). Checks on one
model take the copy's lock in turn. The probes of the copy are sub-models sharing its variables, and
traced functions read variables by reference, so a map recomputed after an assignment sees the new
weights without tracing again. Every variable a check changes is restored bit for bit when the check
ends, normally or by an error (``try``/``finally``), so the copy always equals the model between checks.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Literal

import keras
import numpy as np
from PIL import Image
from scipy.stats import rankdata
from skimage.metrics import structural_similarity

from convvis_core.cache import ResultCache
from convvis_core.cam.base import Heatmap, HeatmapMethod
from convvis_core.cam.baselines import Baseline
from convvis_core.cam.map_results import as_method, map_result_key, stored_or_computed
from convvis_core.cam.targets import Target, check_target, default_target
from convvis_core.counters import WorkCounter
from convvis_core.errors import ConvVisError
from convvis_core.graph import LOGITS, OUTPUT, PRE_ACTIVATION, FlatGraph, flat_graph
from convvis_core.images import Fit
from convvis_core.layers import default_layer, find_layer
from convvis_core.models.base import LoadedModel, cached_view
from convvis_core.per_model import PerModelCache
from convvis_core.progress import StepProgress

Mode = Literal["cascading", "independent"]
Depth = Literal["above", "all"]
MODES: dict[str, str] = {"cascading": "cascading (top-down, layers stay randomized)",
                         "independent": "independent (one step at a time)"}
DEPTHS: dict[str, str] = {"above": "the layers above the explained one", "all": "every weighted layer, down to the input"}
MEASURES: dict[str, str] = {"spearman": "Spearman rank correlation of |map| with the original",
                            "ssim": "SSIM with the original map"}
FLAG_THRESHOLD = 0.5  # Spearman at or above this once all above is randomized: more than half the ranking survives
NORMALIZATIONS = (keras.layers.BatchNormalization, keras.layers.LayerNormalization, keras.layers.GroupNormalization)
DATA_STATISTICS = (keras.layers.Normalization,)  # a preprocessing layer's statistics of the data: not learned weights


class RandomizationError(ConvVisError):
    """A model or layer the randomization check cannot work on; the message says why and what to do."""


@dataclass(frozen=True)
class Step:
    """The layers one step of the check re-initializes."""

    paths: tuple[str, ...]  # a weighted layer, and the normalization layer right after it if any
    above: bool  # the layers lie above the explained one (between it and the target)
    position: int  # the step's place from the top among all weighted layers feeding the target: its seeds

    @property
    def name(self) -> str:
        return " + ".join(self.paths)


def source_layer(graph: FlatGraph, source: str) -> str:
    """The path of the layer whose output a target reads (the head, for the logits or the output)."""
    if source in (LOGITS, OUTPUT):
        return graph.owner(graph.output())
    return source.removesuffix(PRE_ACTIVATION)


def feeding(graph: FlatGraph, path: str) -> set[str]:
    """``path`` and every layer its output depends on."""
    found, waiting = set(), [path]
    while waiting:
        current = waiting.pop()
        if current not in found:
            found.add(current)
            waiting += graph.inputs_of(current)
    return found


def fed_by(graph: FlatGraph, path: str) -> set[str]:
    """Every layer whose output depends on ``path``'s (``path`` itself not included)."""
    found = {path}
    for other in graph.layers:
        if other != path and any(source in found for source in graph.inputs_of(other)):
            found.add(other)
    return found - {path}


def randomization_steps(loaded: LoadedModel, layer: str | None, target: Target, depth: Depth = "above") -> list[Step]:
    """The check's steps, from the output down: the weighted layers feeding ``target`` above ``layer``
    (None: above the input), or with ``depth="all"`` every weighted layer feeding it. Raises
    :class:`RandomizationError` when no weighted layer lies above ``layer``."""
    graph = flat_graph(loaded.model)
    source = source_layer(graph, target.source)
    before_target = feeding(graph, source)
    above = fed_by(graph, layer) if layer is not None else before_target
    weighted = [path for path, kept in graph.layers.items() if path in before_target and kept.weights
                and not isinstance(kept, DATA_STATISTICS)]
    groups: list[list[str]] = []
    group_of: dict[str, list[str]] = {}
    for path in weighted:  # graph order: a normalization joins the weighted layer it follows
        inputs = graph.inputs_of(path)
        followed = group_of.get(inputs[0]) if len(inputs) == 1 else None
        if (isinstance(graph.layers[path], NORMALIZATIONS) and followed is not None and len(followed) == 1
                and (path in above) == (followed[0] in above)):
            followed.append(path)
        else:
            followed = [path]
            groups.append(followed)
        group_of[path] = followed
    steps = [Step(tuple(group), group[0] in above, position) for position, group in enumerate(reversed(groups))]
    if not any(step.above for step in steps):
        where = f"between {layer} and" if layer is not None else "before"
        raise RandomizationError(
            f"No layer with weights lies {where} the target ({target.describe()}, read at {source}): randomizing the "
            f"model above {layer or 'the input'} would change nothing, so there is nothing to check. Explain an earlier "
            "layer, or a target further on (a class rather than a filter of this layer).")
    return steps if depth == "all" else [step for step in steps if step.above]


def initializer_of(layer: keras.layers.Layer, variable: keras.Variable) -> keras.initializers.Initializer:
    """The initializer ``layer`` keeps for ``variable`` (Keras layers keep ``<weight>_initializer``:
    ``kernel_initializer``, ``gamma_initializer``, ``moving_mean_initializer``; a depthwise kernel's is
    ``depthwise_initializer``, a separable convolution's ``pointwise_kernel`` has ``pointwise_initializer``)."""
    name = variable.name
    candidates = [f"{name}_initializer"]
    if name.endswith("_kernel"):
        candidates.append(f"{name.removesuffix('_kernel')}_initializer")
    if name == "kernel":
        candidates.append("depthwise_initializer")
    for attribute in candidates:
        found = getattr(layer, attribute, None)
        if found is not None:
            return keras.initializers.get(found)
    raise RandomizationError(
        f"Layer '{layer.name}' ({type(layer).__name__}) keeps no initializer for its weight '{name}' (looked for "
        f"{', '.join(candidates)}), so it cannot be re-initialized as trained models' layers are. Explain a layer "
        "above it, or give the layer an initializer attribute.")


def fresh_value(layer: keras.layers.Layer, variable: keras.Variable, seed: int) -> Any:
    """A new value (a backend tensor) for ``variable`` drawn by its layer's own initializer, seeded."""
    initializer = initializer_of(layer, variable)
    config = initializer.get_config()
    if "seed" in config:
        initializer = type(initializer).from_config({**config, "seed": seed})
    return initializer(tuple(variable.shape), dtype=variable.dtype)


def step_seed(seed: int, position: int, index: int) -> int:
    """The seed of weight ``index`` of the step at ``position``: the same layer gets the same weights in
    both modes, at either depth, whatever the check's other steps."""
    return int(np.random.SeedSequence([seed, position, index]).generate_state(1)[0] % 2**31)


class Randomizer:
    """Re-initializes steps' layers in place on a model, remembering every value it replaces."""

    def __init__(self, model: keras.Model, seed: int):
        self.graph, self.seed = flat_graph(model), seed
        self.saved: dict[int, tuple[keras.Variable, np.ndarray]] = {}

    def draw(self, step: Step) -> list[list[Any]]:
        """The step's new weights, layer by layer, each drawn by its own initializer (seeded), not yet assigned."""
        DRAWS.add("steps")
        return [[fresh_value(self.graph.layers[path], variable, step_seed(self.seed, step.position, index))
                 for index, variable in enumerate(self.graph.layers[path].weights)] for path in step.paths]

    def assign(self, step: Step, drawn: list[list[Any]]) -> None:
        """Put :meth:`draw`'s weights in place, keeping each replaced value first."""
        for path, values in zip(step.paths, drawn, strict=True):
            for holder in [self.graph.layers[path], *self.graph.copies(path)]:  # a fused head's linear twin too
                for variable, value in zip(holder.weights, values, strict=True):
                    if id(variable) not in self.saved:
                        self.saved[id(variable)] = (variable, np.array(variable.numpy(), copy=True))  # not a view
                    variable.assign(value)

    def randomize(self, step: Step) -> None:
        self.assign(step, self.draw(step))

    def restore(self) -> None:
        """Every replaced value back, bit for bit."""
        for variable, value in self.saved.values():
            variable.assign(value)
        self.saved.clear()


@dataclass
class _Copy:
    model: keras.Model
    lock: threading.Lock


_COPIES = PerModelCache(1)
# The weights a step draws depend only on the model, its layers, the seed and the step's place, so every check of
# the copy (another method or image, the page's three maps) reuses them: conv_preds' million weights take 6 ms to
# draw against a 30 ms map. A step per key; MobileNet's 28 steps hold 17 MB a seed.
MAX_DRAWN_STEPS = 64
_DRAWN = PerModelCache(MAX_DRAWN_STEPS)
DRAWS = WorkCounter()  # steps whose weights :meth:`Randomizer.draw` drew, under "steps"


def _cloned(model: keras.Model) -> _Copy:
    try:
        clone = keras.models.clone_model(model)
    except Exception as error:  # a layer Keras cannot rebuild from its config
        raise RandomizationError(f"'{model.name}' cannot be copied to randomize its weights ({error}). Models "
                                 "rebuilt from their config (functional, Sequential, saved files) can.") from error
    clone.set_weights(model.get_weights())
    return _Copy(clone, threading.Lock())


@contextmanager
def randomizable(loaded: LoadedModel) -> Iterator[LoadedModel]:
    """The model's copy that checks randomize (made once per model, kept while it lives), held for the
    caller alone: the same weights, layer paths, preprocessing and output as ``loaded``."""
    source = loaded.source if loaded.source is not None else loaded.model
    kept = _COPIES.get(source, "copy", lambda: _cloned(source))
    with kept.lock:
        if loaded.source is None:
            yield dataclasses.replace(loaded, model=kept.model)
        else:
            yield dataclasses.replace(loaded, model=cached_view(kept.model, loaded.info.inputs, loaded.info.output),
                                      source=kept.model)


class Resemblance:
    """How alike a map is to the original, by each of :data:`MEASURES`; the original's ranks are computed once
    (ranking 224 × 224 values costs about a tenth of a Grad-CAM map's CPU time on MobileNet)."""

    def __init__(self, original: np.ndarray):
        self.original = original
        self.ranks = rankdata(original.ravel())
        side = min(original.shape)
        self.window = min(7, side - 1 + side % 2)  # SSIM's 7 pixels, or the largest odd side that fits

    def spearman(self, other: np.ndarray) -> float:
        """Spearman rank correlation (ties ranked by their mean): the Pearson correlation of the ranks. Maps
        are magnitudes in 0..1, so |map| is the map. 0 when ``other`` is flat (an empty map keeps none of
        the ranking)."""
        if np.ptp(other) == 0:
            return 0.0
        return float(np.corrcoef(self.ranks, rankdata(other.ravel()))[0, 1])

    def ssim(self, other: np.ndarray) -> float:
        """Structural similarity of two maps in 0..1."""
        return float(structural_similarity(self.original, other, data_range=1.0, win_size=self.window))


@dataclass(frozen=True)
class SanityCheck:
    """One method's map under model randomization: its similarity to the original map at each step."""

    method: str  # a key of METHODS
    title: str
    layer: str | None  # the explained layer; None for input-gradient methods
    target: str  # what was explained, described
    mode: Mode
    steps: tuple[str, ...]  # the layers re-initialized at each step, from the output down
    above: tuple[bool, ...]  # whether each step's layers lie above the explained layer
    spearman: np.ndarray  # (steps,)
    ssim: np.ndarray  # (steps,)
    empty: tuple[str, ...]  # why the map at a step is empty (it counts as all zero), "" where there is one
    threshold: float = FLAG_THRESHOLD
    from_cache: bool = False

    def similarity(self, measure: str) -> np.ndarray:
        """The step-by-step similarity by a measure of :data:`MEASURES`."""
        if measure not in MEASURES:
            raise ConvVisError(f"Unknown similarity measure {measure!r}; choose one of {', '.join(MEASURES)}.")
        return self.spearman if measure == "spearman" else self.ssim

    @property
    def flag_step(self) -> int | None:
        """The cascading step after which every layer above the explained one is randomized."""
        return max(i for i, above in enumerate(self.above) if above) if self.mode == "cascading" else None

    @property
    def flagged(self) -> bool | None:
        """Whether the map does not depend on the model above the explained layer (None: independent mode)."""
        step = self.flag_step
        return None if step is None else bool(self.spearman[step] >= self.threshold)

    def sentence(self) -> str:
        """The flag in words."""
        what = f"the model above {self.layer}" if self.layer else "the model's weights"
        if self.flagged is None:
            lowest = int(np.argmin(self.spearman))
            return (f"{self.title}: re-initialized one step at a time, the map changes most at {self.steps[lowest]} "
                    f"(Spearman {self.spearman[lowest]:.2f}); the cascading check says whether it depends on {what}.")
        count = self.flag_step + 1
        value = float(self.spearman[self.flag_step])
        once = (f"once every weighted layer{f' above {self.layer}' if self.layer else ''} is re-initialized "
                f"({count} step{'s' if count > 1 else ''})")
        if self.flagged:
            return (f"{self.title} does not depend on {what}: {once}, its map keeps a Spearman correlation of "
                    f"{value:.2f} with the original (≥ {self.threshold}). It would look much the same for an "
                    "untrained network: do not read it as the model's evidence.")
        return (f"{self.title} depends on {what}: {once}, its map's Spearman correlation with the original falls "
                f"to {value:.2f} (below {self.threshold}).")


def sanity_check(loaded: LoadedModel, image: Image.Image, method: str | HeatmapMethod, target: Target | None = None,
                 layer: str | None = None, mode: Mode = "cascading", depth: Depth = "above", fit: Fit = "stretch",
                 baseline: Baseline = "blur", seed: int = 0, cache: ResultCache | None = None,
                 progress: StepProgress | None = None) -> SanityCheck:
    """The randomization check of ``method``'s map (a name of ``METHODS`` or a method object) of ``target``
    (default: as the method's) at ``layer`` (default: the method's): cascading or independent, over the
    layers above the explained one or ``depth="all"`` of them. ``progress`` gets (maps done, maps in
    all). Cached on disk; the first call on a model copies it (see the module's docstring)."""
    if mode not in MODES:
        raise ConvVisError(f"Unknown randomization mode {mode!r}; choose one of {', '.join(MODES)}.")
    if depth not in DEPTHS:
        raise ConvVisError(f"Unknown randomization depth {depth!r}; choose one of {', '.join(DEPTHS)}.")
    engine = as_method(method)
    if not engine.uses_layer:
        layer = None
    elif layer not in flat_graph(loaded.model).layers:  # a path the graph knows is checked when the map is made
        layer = (find_layer(loaded.model, layer) if layer else default_layer(loaded.model)).path
    if target is None:
        target = default_target(loaded, image, layer or default_layer(loaded.model).path, fit)
    check_target(loaded, target)
    steps = randomization_steps(loaded, layer, target, depth)  # nothing to randomize: refused before any map
    key = map_result_key("sanity", loaded, image, engine, target, layer, fit, baseline, mode=mode, depth=depth, seed=seed)
    arrays, from_cache = stored_or_computed(
        cache, key, lambda: _checked(loaded, image, engine, target, layer, steps, mode, fit, baseline, seed, progress))
    return SanityCheck(engine.name, engine.title, layer, str(arrays["target"]), mode, tuple(arrays["steps"].tolist()),
                       tuple(arrays["above"].tolist()), arrays["spearman"], arrays["ssim"],
                       tuple(arrays["empty"].tolist()), from_cache=from_cache)


def measured(resemblance: Future, values: np.ndarray) -> tuple[float, float]:
    """Spearman and SSIM of ``values`` with the original map (once its :class:`Resemblance` is ready)."""
    return resemblance.result().spearman(values), resemblance.result().ssim(values)


def map_values(found: Heatmap | ConvVisError, shape: tuple[int, int]) -> tuple[np.ndarray, str]:
    """A map's values, or zeros and why there is no map."""
    if isinstance(found, Heatmap):
        return found.values, ""
    return np.zeros(shape, np.float32), str(found)


def _checked(loaded: LoadedModel, image: Image.Image, method: HeatmapMethod, target: Target, layer: str | None,
             steps: list[Step], mode: Mode, fit: Fit, baseline: Baseline, seed: int,
             progress: StepProgress | None) -> dict[str, np.ndarray]:
    """The check on the model's copy (its layer paths are the model's, so are ``steps``)."""
    # a worker draws the new weights, and measures each map's similarity, while the maps are computed
    with randomizable(loaded) as copy, ThreadPoolExecutor(1) as worker:
        randomizer = Randomizer(copy.model, seed)
        drawn = [worker.submit(_DRAWN.get, copy.model, (seed, step.position, step.paths),
                               functools.partial(randomizer.draw, step)) for step in steps]
        original = method.explain(copy, image, target, layer, fit, baseline)  # no map: nothing to check, say why
        target, size = original.target, original.values.shape
        resemblance = worker.submit(Resemblance, original.values)
        if progress:
            progress(1, len(steps) + 1)
        measures, empty = [], []
        try:
            for done, (step, weights) in enumerate(zip(steps, drawn), start=2):
                randomizer.assign(step, weights.result())
                values, why = map_values(method.explain_batch(copy, [image], [target], layer, fit, baseline)[0], size)
                measures.append(worker.submit(measured, resemblance, values))
                empty.append(why)
                if mode == "independent":
                    randomizer.restore()
                if progress:
                    progress(done, len(steps) + 1)
        finally:
            randomizer.restore()
        rows = [found.result() for found in measures]
    return {"steps": np.array([step.name for step in steps], str), "above": np.array([step.above for step in steps]),
            "spearman": np.array([row[0] for row in rows]), "ssim": np.array([row[1] for row in rows]),
            "empty": np.array(empty, str),
            "target": np.array(target.describe(loaded.info.output_info.class_names), str)}

