"""Testing with concept activation vectors (TCAV, Kim et al., ICML 2018): does a human concept move a target?

At each chosen layer, a CAV is learned for the concept against each of N random sets (default 10), and the TCAV
score of each is the share of the target's images whose directional derivative along it is positive: the
gradient of the target's value (a class logit, an output unit, a region's logits, a filter's mean: any target the
heatmaps explain, from :class:`~convvis_core.cam.base.Probe`) at the layer, dotted with the CAV. Random CAVs, each
of one random set against the next (a ring), give the scores that mean nothing; a two-sided t-test of the
concept's scores against theirs says whether the concept's are different, Bonferroni-corrected across the layers
tested. A concept is reported as raising or lowering the target only when that test passes *and* its CAVs tell
the concept from random images on held-out images better than chance (else the direction is noise).

Cost: every image goes through the model once for all layers (the target's images forward and backward, the
others forward); the activations of each set at each layer and the target images' gradients are cached, so a
second concept against the same random sets passes only its own images.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from scipy.stats import ttest_ind

from convvis_core.batches import pixel_batch
from convvis_core.cache import ResultCache, cache_key, default_cache, model_fingerprint
from convvis_core.cam.base import BATCH_SIZE, Probe, probe_for
from convvis_core.cam.targets import ClassTarget, Target, check_target
from convvis_core.concepts.cav import CAV, HELD_OUT, STRENGTH, Grams, train_cav
from convvis_core.concepts.image_sets import ImageSet, checked_concept
from convvis_core.counters import WorkCounter
from convvis_core.errors import ConceptError, TargetError
from convvis_core.featureviz.objectives import Direction
from convvis_core.featureviz.render import FilterResult, visualize
from convvis_core.layers import find_layer
from convvis_core.models.base import LoadedModel
from convvis_core.presentation.tables import csv_text
from convvis_core.progress import StepProgress

CACHE_NAMESPACE = "concepts"
DEFAULT_RUNS = 10
MIN_RUNS = 3  # fewer random sets give the t-test nothing to stand on
MAX_RUNS = 50
SIGNIFICANCE = 0.05
FURTHEST = 8  # target images kept, furthest along the concept first
PASSES = WorkCounter()  # images passed through a model for a concept test, by "forward" / "forward+backward"
_VERSION = "tcav-v1"


def sample_spread(values: np.ndarray) -> float:
    """The sample standard deviation over the runs (0 for a single run)."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


@dataclass(frozen=True)
class LayerScore:
    """One layer's answer: the concept's TCAV score in each run, the random CAVs' scores, the test between them,
    how well the CAVs separate the concept, and the images furthest along it."""

    layer: str
    scores: np.ndarray  # (runs,) share of target images the concept's CAV raises, one per random set
    random_scores: np.ndarray  # (runs,) the same for random CAVs (one random set against the next)
    accuracies: np.ndarray  # (runs,) held-out accuracy of each concept CAV
    random_accuracies: np.ndarray  # (runs,) held-out accuracy of each random CAV
    chance_level: float  # a mean held-out accuracy below this is chance
    p_value: float  # two-sided t-test, concept scores against random scores
    threshold: float  # the p-value under which a result is significant (Bonferroni across the layers)
    cavs: np.ndarray = field(repr=False)  # (runs, D) the concept's CAVs, unit vectors in flattened (h, w, C) space
    direction: np.ndarray = field(repr=False)  # (C,) the mean concept CAV summed over map positions, unit length
    furthest: np.ndarray = field(repr=False)  # indices into the target images, furthest along the concept first
    flat_gradients: bool = False  # the target's gradient is zero at this layer: the layer cannot move it

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    @property
    def spread(self) -> float:
        """The standard deviation of the score over the runs."""
        return sample_spread(self.scores)

    @property
    def random_mean(self) -> float:
        return float(np.mean(self.random_scores))

    @property
    def random_spread(self) -> float:
        return sample_spread(self.random_scores)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def at_chance(self) -> bool:
        """The concept's CAVs tell it from random images no better than chance on held-out images."""
        return self.accuracy < self.chance_level

    @property
    def significant(self) -> bool:
        """The concept's scores differ from random CAVs' (p under the threshold), its CAVs are better than
        chance, and the target depends on the layer: only then does the score say anything."""
        return self.p_value < self.threshold and not self.at_chance and not self.flat_gradients

    @property
    def effect(self) -> str | None:
        """"raises" or "lowers" the target (score above or below one half), for a significant result only."""
        if not self.significant:
            return None
        return "raises" if self.mean > 0.5 else "lowers"

    @property
    def finding(self) -> str:
        """In a word or three: what the layer says about the concept."""
        if self.flat_gradients:
            return "target before layer"
        if self.at_chance:
            return "not represented"
        return self.effect or "not significant"

    def summary(self) -> str:
        """One line: the finding and its numbers."""
        return (f"{self.layer}: {self.finding} · score {self.mean:.2f} ± {self.spread:.2f} (random {self.random_mean:.2f}) "
                f"· p = {self.p_value:.2g} · CAV accuracy {self.accuracy:.0%}")

    def verdict(self, target: str) -> str:
        """What the result says about ``target`` (described), in one or two sentences a user can act on."""
        scores = f"score {self.mean:.2f} ± {self.spread:.2f}, random directions {self.random_mean:.2f} ± " \
                 f"{self.random_spread:.2f}, p = {self.p_value:.2g}"
        if self.flat_gradients:
            return (f"{target} does not depend on {self.layer} (its gradient there is zero: the target comes before "
                    "this layer), so no direction at this layer can move it.")
        if self.at_chance:
            return (f"Not meaningful: at {self.layer} the concept vectors tell the concept from random images no better "
                    f"than chance on held-out images (accuracy {self.accuracy:.0%}; chance is under "
                    f"{self.chance_level:.0%}), so this layer does not represent the concept ({scores}).")
        if self.effect is None:
            return (f"Not significant ({scores}; needs p < {self.threshold:.2g}): random directions score like the "
                    f"concept, so this is no evidence that the concept matters for {target}.")
        share, way = (self.mean, "rises") if self.effect == "raises" else (1 - self.mean, "falls")
        return (f"Significant: the concept {self.effect} {target}. Moved towards the concept at {self.layer}, its value "
                f"{way} for {share:.0%} of its images ({scores}).")


_LAYER_ARRAYS = ("scores", "random_scores", "accuracies", "random_accuracies", "cavs", "direction", "furthest")


@dataclass(frozen=True)
class TCAVResult:
    """A concept tested against a target at one or more layers, with what every set was."""

    concept: str
    concept_origin: str
    target: str  # the target, described with the model's class names
    target_images: str  # where the target's images come from
    random_origin: str
    runs: int
    counts: tuple[int, int, int]  # images: concept, target, each random set
    layers: tuple[LayerScore, ...]
    from_cache: bool = False

    def layer(self, path: str) -> LayerScore:
        return next(score for score in self.layers if score.layer == path)

    def rows(self) -> list[dict]:
        """One row per layer: the numbers a CSV export holds."""
        return [{"concept": self.concept, "target": self.target, "layer": score.layer,
                 "TCAV score": round(score.mean, 4), "spread": round(score.spread, 4),
                 "random score": round(score.random_mean, 4), "random spread": round(score.random_spread, 4),
                 "p-value": float(f"{score.p_value:.4g}"), "significant": score.significant,
                 "effect": score.effect or "none", "CAV held-out accuracy": round(score.accuracy, 4),
                 "at chance": score.at_chance, "runs": self.runs} for score in self.layers]

    def to_csv(self) -> str:
        """:meth:`rows` as CSV text (the page's download, the command line's ``--csv``, the API's ``save``)."""
        return csv_text(self.rows())

    def to_arrays(self) -> dict[str, np.ndarray]:
        meta = {name: getattr(self, name) for name in
                ("concept", "concept_origin", "target", "target_images", "random_origin", "runs", "counts")}
        meta["layers"] = [{"layer": s.layer, "chance_level": s.chance_level, "p_value": s.p_value,
                           "threshold": s.threshold, "flat_gradients": s.flat_gradients} for s in self.layers]
        arrays = {"meta": np.array(json.dumps(meta))}
        for index, score in enumerate(self.layers):
            for name in _LAYER_ARRAYS:
                arrays[f"{name}_{index}"] = getattr(score, name)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "TCAVResult":
        meta = json.loads(str(arrays["meta"]))
        layers = tuple(LayerScore(**facts, **{name: arrays[f"{name}_{index}"] for name in _LAYER_ARRAYS})
                       for index, facts in enumerate(meta.pop("layers")))
        return cls(**{**meta, "counts": tuple(meta["counts"])}, layers=layers, from_cache=True)


def concept_objective(score: LayerScore) -> Direction:
    """The feature-visualization objective of the concept's direction at its layer (Lucid's direction: each map
    position's activations dotted with the CAV's channel direction, averaged over the map)."""
    return Direction(score.layer, tuple(float(value) for value in score.direction))


def concept_picture(loaded: LoadedModel, score: LayerScore, preset: str | None = None,
                    progress: StepProgress | None = None) -> FilterResult:
    """A feature visualization of the concept's direction at its layer (``preset``: default, the model's), cached
    as every picture is."""
    return visualize(loaded, concept_objective(score), preset, progress=progress)[0]


@dataclass(frozen=True)
class Request:
    """A concept test asked for, checked: the layers as paths, the cache key of its result."""

    paths: tuple[str, ...]
    key: str


def request(loaded: LoadedModel, concept: ImageSet, target_images: ImageSet, target: Target, layers: Sequence[str],
            random: Sequence[ImageSet], seed: int = 0, significance: float = SIGNIFICANCE) -> Request:
    """Check a test's inputs (raising what is wrong, in words a user can act on) and name its result (by the
    model's weights and identity, which holds its class names, so a result shows the names it was made with)."""
    checked_concept(concept)
    if not MIN_RUNS <= len(random) <= MAX_RUNS:
        raise ConceptError(f"TCAV compares the concept with {MIN_RUNS} to {MAX_RUNS} random sets (one run each); got "
                           f"{len(random)}.")
    if not len(target_images):
        raise ConceptError(f"{target_images.name} holds no images to score the target on.")
    if isinstance(target, ClassTarget) and target.index is None:
        raise TargetError("Name the class to test the concept against (a TCAV score is about one class).")
    check_target(loaded, target)
    paths = tuple(dict.fromkeys(find_layer(loaded.model, layer).path for layer in layers))
    if not paths:
        raise ConceptError("Choose at least one layer to test the concept at.")
    settings = {"seed": seed, "significance": significance, "strength": STRENGTH, "held_out": HELD_OUT}
    return Request(paths, cache_key(_VERSION, _model_key(loaded), loaded.identity, paths, repr(target), concept.identity,
                                    target_images.identity, [found.identity for found in random], settings))


def cached_tcav(loaded: LoadedModel, concept: ImageSet, target_images: ImageSet, target: Target, layers: Sequence[str],
                random: Sequence[ImageSet], seed: int = 0, significance: float = SIGNIFICANCE,
                cache: ResultCache | None = None) -> TCAVResult | None:
    """The result of this very test computed before (by a page, the command line or a notebook), or None."""
    asked = request(loaded, concept, target_images, target, layers, random, seed, significance)
    stored = (cache if cache is not None else default_cache(CACHE_NAMESPACE)).get(asked.key)
    return None if stored is None else TCAVResult.from_arrays(stored)


def tcav(loaded: LoadedModel, concept: ImageSet, target_images: ImageSet, target: Target, layers: Sequence[str],
         random: Sequence[ImageSet], seed: int = 0, significance: float = SIGNIFICANCE,
         progress: StepProgress | None = None, cache: ResultCache | None = None) -> TCAVResult:
    """Test ``concept`` against ``target`` over ``target_images`` at each of ``layers``, one run per random set
    (at least 3; TCAV's default is 10). Cached by the model, every set's content, the target and the settings;
    sessions asking at once compute it once."""
    asked = request(loaded, concept, target_images, target, layers, random, seed, significance)
    cache = cache if cache is not None else default_cache(CACHE_NAMESPACE)
    with cache.computing(asked.key):
        stored = cache.get(asked.key)
        if stored is not None:
            return TCAVResult.from_arrays(stored)
        result = _computed(loaded, concept, target_images, target, asked.paths, random, seed, significance, progress,
                           cache)
        cache.put(asked.key, result.to_arrays())
    return result


def _model_key(loaded: LoadedModel) -> list:
    return [model_fingerprint(loaded.model), loaded.info.preprocessing, loaded.info.input_size, loaded.info.channels]


def _computed(loaded: LoadedModel, concept: ImageSet, target_images: ImageSet, target: Target, paths: tuple[str, ...],
              random: Sequence[ImageSet], seed: int, significance: float, progress: StepProgress | None,
              cache: ResultCache) -> TCAVResult:
    """The target's images forward and backward; the concept's and random sets' CAVs from the cache (they do not
    depend on the target), else from their images' activations (cached too) fitted here."""
    runs = len(random)
    work = Work(len(concept) + len(target_images) + sum(map(len, random)) + len(paths) * runs, progress)
    probe = probe_for(loaded, paths, target)
    activations, gradients = _target_passes(loaded, probe, target_images, target, cache, work)
    random_ids = [found.identity for found in random]
    fitted = {"concept": lambda path: cache_key(_VERSION, "cavs", _model_key(loaded), path, concept.identity, random_ids,
                                                seed, STRENGTH, HELD_OUT),
              "random": lambda path: cache_key(_VERSION, "random cavs", _model_key(loaded), path, random_ids, seed,
                                               STRENGTH, HELD_OUT)}
    stored = {(kind, path): cache.get(key_of(path)) for kind, key_of in fitted.items() for path in paths}
    missing = {kind for (kind, _), found in stored.items() if found is None}
    concept_maps, random_maps = {}, []
    if "concept" in missing:
        concept_maps = _set_activations(loaded, probe, concept, cache, work)
    else:
        work.add(len(concept))
    if missing:  # either kind of CAV is fitted against the random sets
        random_maps = [_set_activations(loaded, probe, found, cache, work) for found in random]
    else:
        work.add(sum(map(len, random)))
    scores = []
    for path in paths:
        cavs = {}
        sets = [concept_maps.get(path), *(maps[path] for maps in random_maps)]  # 0: the concept, 1 + i: random set i
        blocks = GramBlocks(sets)
        for kind, key_of in fitted.items():
            if stored[kind, path] is None:
                pairs = [(0 if kind == "concept" else 1 + (run + 1) % runs, 1 + run) for run in range(runs)]
                stored[kind, path] = _cav_arrays([train_cav(sets[positive], sets[negative], seed + run,
                                                            blocks=blocks.of(positive, negative))
                                                  for run, (positive, negative) in enumerate(pairs)])
                cache.put(key_of(path), stored[kind, path])
            cavs[kind] = _cavs(stored[kind, path])
        work.add(runs)
        scores.append(_layer_score(path, find_layer(loaded.model, path).channels, cavs["concept"], cavs["random"],
                                   activations[path], gradients[path], significance / len(paths)))
    return TCAVResult(concept.name, concept.origin, target.describe(loaded.info.output_info.class_names),
                      target_images.origin, f"{runs} sets: {random[0].origin}", runs,
                      (len(concept), len(target_images), len(random[0])), tuple(scores))


class GramBlocks:
    """The Gram matrices between a layer's sets (0: the concept, 1 + i: random set i), each computed once: a set's
    own block serves all its CAVs, and a random set's block with the next both of theirs."""

    def __init__(self, sets: list[np.ndarray | None]):
        self.sets = sets
        self.kept: dict[tuple[int, int], np.ndarray] = {}

    def block(self, first: int, second: int) -> np.ndarray:
        key = (min(first, second), max(first, second))
        if key not in self.kept:
            self.kept[key] = self.sets[key[0]] @ self.sets[key[1]].T
        return self.kept[key] if first <= second else self.kept[key].T

    def of(self, positive: int, negative: int) -> Grams:
        return self.block(positive, positive), self.block(positive, negative), self.block(negative, negative)


def _cav_arrays(cavs: Sequence[CAV]) -> dict[str, np.ndarray]:
    return {"vectors": np.stack([cav.vector for cav in cavs]), "accuracies": np.array([cav.accuracy for cav in cavs]),
            "chance": np.array([cav.chance for cav in cavs]), "held_out": np.array([cav.held_out for cav in cavs])}


def _cavs(arrays: dict[str, np.ndarray]) -> list[CAV]:
    return [CAV(vector, float(accuracy), float(chance), int(held_out)) for vector, accuracy, chance, held_out in
            zip(arrays["vectors"], arrays["accuracies"], arrays["chance"], arrays["held_out"])]


class Work:
    """Counted work (images passed, CAVs fitted) reported to a progress callback."""

    def __init__(self, total: int, progress: StepProgress | None):
        self.total, self.done, self.progress = total, 0, progress

    def add(self, amount: int) -> None:
        self.done += amount
        if self.progress:
            self.progress(self.done, self.total)


def _layer_score(path: str, channels: int, concept_cavs: list[CAV], random_cavs: list[CAV], activations: np.ndarray,
                 gradients: np.ndarray, threshold: float) -> LayerScore:
    """One layer's scores from its CAVs and the target images' activations and gradients."""
    scores = np.array([score(gradients, cav) for cav in concept_cavs])
    random_scores = np.array([score(gradients, cav) for cav in random_cavs])
    mean_cav = np.mean([cav.vector for cav in concept_cavs], axis=0)
    direction = mean_cav.reshape(-1, channels).sum(axis=0)
    furthest = np.argsort(-(activations @ mean_cav), kind="stable")[:FURTHEST]
    first = concept_cavs[0]
    return LayerScore(path, scores, random_scores, np.array([cav.accuracy for cav in concept_cavs]),
                      np.array([cav.accuracy for cav in random_cavs]), first.chance + first.chance_margin,
                      t_test(scores, random_scores), threshold, np.stack([cav.vector for cav in concept_cavs]),
                      (direction / max(float(np.linalg.norm(direction)), 1e-12)).astype(np.float32),
                      furthest.astype(np.int64), not gradients.any())


def score(gradients: np.ndarray, cav: CAV) -> float:
    """The TCAV score: the share of images (rows of flattened gradients) whose directional derivative along the
    CAV is positive."""
    return float(np.mean(gradients @ cav.vector > 0))


def t_test(scores: np.ndarray, random_scores: np.ndarray) -> float:
    """Two-sided p-value of Student's t-test between the concept's and the random CAVs' scores (1 when both are
    constant and equal: nothing tells them apart). A constant group (every run 1.0, as on a model whose gradient
    is one vector) is an ordinary case here: scipy's warning that its variance is lost to rounding is not passed
    on, the pooled variance comes from the other group."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Precision loss occurred in moment calculation", RuntimeWarning)
        p_value = float(ttest_ind(scores, random_scores).pvalue)
    return 1.0 if np.isnan(p_value) else p_value


def _stored_maps(paths: Sequence[str], key_of: Callable[[str], str],
                 cache: ResultCache) -> dict[str, dict[str, np.ndarray]] | None:
    """What the cache holds for every layer, or None if any is missing."""
    found = {path: cache.get(key_of(path)) for path in paths}
    return None if any(value is None for value in found.values()) else found


def _set_activations(loaded: LoadedModel, probe: Probe, images: ImageSet, cache: ResultCache,
                     work: Work) -> dict[str, np.ndarray]:
    """Each layer's flattened activations (N, D) for a set, from the cache or one forward pass for all layers."""
    key_of = lambda path: cache_key(_VERSION, "activations", _model_key(loaded), path, images.identity)  # noqa: E731
    stored = _stored_maps(probe.layers, key_of, cache)
    if stored is None:
        maps, _ = _passes(loaded, probe, images, None, work)
        for path, values in maps.items():
            cache.put(key_of(path), {"activations": values})
        return maps
    work.add(len(images))
    return {path: found["activations"] for path, found in stored.items()}


def _target_passes(loaded: LoadedModel, probe: Probe, images: ImageSet, target: Target, cache: ResultCache,
                   work: Work) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Each layer's flattened activations and target gradients (N, D) for the target's images, from the cache or
    one forward and backward pass for all layers."""
    key_of = lambda path: cache_key(_VERSION, "gradients", _model_key(loaded), path, images.identity,  # noqa: E731
                                    repr(target))
    stored = _stored_maps(probe.layers, key_of, cache)
    if stored is None:
        maps, gradients = _passes(loaded, probe, images, target, work)
        for path in maps:
            cache.put(key_of(path), {"activations": maps[path], "gradients": gradients[path]})
        return maps, gradients
    work.add(len(images))
    return ({path: found["activations"] for path, found in stored.items()},
            {path: found["gradients"] for path, found in stored.items()})


def _passes(loaded: LoadedModel, probe: Probe, images: ImageSet, target: Target | None,
            work: Work) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """One pass over the set in batches: every layer's activations (and, for a target, its gradients), each
    image's flattened to one row."""
    maps: list[list[np.ndarray]] = [[] for _ in probe.layers]
    grads: list[list[np.ndarray]] = [[] for _ in probe.layers]
    for start in range(0, len(images), BATCH_SIZE):
        batch = images.images[start:start + BATCH_SIZE]
        pixels = pixel_batch(list(batch), loaded.info).astype(np.float32)
        found, found_grads = probe.capture_layers(pixels, target, gradients=target is not None)
        for index, values in enumerate(found):
            maps[index].append(values.reshape(len(batch), -1))
            if found_grads is not None:
                grads[index].append(found_grads[index].reshape(len(batch), -1))
        PASSES.add("forward+backward" if target is not None else "forward", len(batch))
        work.add(len(batch))
    joined = {path: np.concatenate(parts) for path, parts in zip(probe.layers, maps)}
    return joined, ({path: np.concatenate(parts) for path, parts in zip(probe.layers, grads)}
                    if target is not None else None)
