"""Can these maps be trusted, from a notebook: ``sanity_check(GradCAM(model), images)`` (does each map
depend on the model? Adebayo et al. 2018) and ``trust_metrics(GradCAM(model), images)`` (MuFidelity,
average stability, complexity), the very checks the Heatmaps page and ``convvis cam --sanity`` run, each
a table that shows itself in Jupyter and saves as CSV.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from convvis_core.api.attribution import Attribution, Targets, as_targets
from convvis_core.api.display import Tabled
from convvis_core.cam.base import EmptyHeatmapError, Heatmap
from convvis_core.cam.randomization import Depth, Mode, SanityCheck
from convvis_core.cam.randomization import sanity_check as check_map
from convvis_core.cam.trust import METRICS, TrustScores, trust_scores
from convvis_core.images import Images, as_images


@dataclass(frozen=True, eq=False)
class SanityChecks(Tabled):
    """Each image's map under model randomization: ``spearman`` and ``ssim`` (N, steps), its similarity to the
    original map at each step (``steps``: the layers re-initialized, from the output down), and ``flagged``:
    True where the map does not depend on the model above its layer. ``checks[i]`` is the core's
    ``SanityCheck``, or why image i has none (its map is empty)."""

    method: str
    checks: tuple[SanityCheck | str, ...] = field(repr=False)

    @property
    def steps(self) -> tuple[str, ...]:
        return next((check.steps for check in self.checks if isinstance(check, SanityCheck)), ())

    def _per_image(self, measure: str) -> np.ndarray:
        return np.array([check.similarity(measure) if isinstance(check, SanityCheck) else np.full(len(self.steps), np.nan)
                         for check in self.checks]).reshape(len(self.checks), len(self.steps))

    @property
    def spearman(self) -> np.ndarray:
        return self._per_image("spearman")

    @property
    def ssim(self) -> np.ndarray:
        return self._per_image("ssim")

    @property
    def flagged(self) -> tuple[bool | None, ...]:
        """Per image: the flag of the cascading check (None: independent mode, or no map)."""
        return tuple(check.flagged if isinstance(check, SanityCheck) else None for check in self.checks)

    def sentences(self) -> list[str]:
        """Per image: the flag in words, or why there is no check."""
        return [check.sentence() if isinstance(check, SanityCheck) else f"{self.method}: no check: {check}"
                for check in self.checks]

    def rows(self) -> list[dict]:
        return [{"image": i, "step": step + 1, "re-initialized": name, "spearman": float(check.spearman[step]),
                 "ssim": float(check.ssim[step])}
                for i, check in enumerate(self.checks) if isinstance(check, SanityCheck)
                for step, name in enumerate(check.steps)]

    def title(self) -> str:
        return " ".join(f"#{i}: {sentence}" for i, sentence in enumerate(self.sentences()))


def sanity_check(method: Attribution, images: Images, targets: Targets = None, *, mode: Mode = "cascading",
                 depth: Depth = "above", seed: int = 0) -> SanityChecks:
    """The randomization check of ``method``'s map of each image (for its target, default its top class):
    the model's weighted layers above the method's layer (``depth="all"``: every one) re-initialized from
    the output down, layers staying so (``mode="cascading"``) or one at a time ("independent"), seeded.
    The model you hold is never changed: a copy is. Cached on disk as the app caches it."""
    pictures = as_images(images)
    wanted = as_targets(method.model, targets, len(pictures), method.layer) or [None] * len(pictures)
    checks: list[SanityCheck | str] = []
    for picture, target in zip(pictures, wanted):
        try:
            checks.append(check_map(method.model, picture, method.engine, target, method.layer, mode, depth,
                                    method.fit, method.baseline, seed))
        except EmptyHeatmapError as error:  # no map to check: said in its place, the other images go on
            checks.append(str(error))
    return SanityChecks(method.engine.title, tuple(checks))


@dataclass(frozen=True, eq=False)
class TrustMetrics(Tabled):
    """Each image's map scored: ``mu_fidelity`` (higher is better), ``stability`` and ``complexity`` (lower is
    better), each (N,), NaN where an image has no map; ``scores[i]`` the core's ``TrustScores``."""

    method: str
    scores: tuple[TrustScores | None, ...] = field(repr=False)

    def _column(self, name: str) -> np.ndarray:
        return np.array([np.nan if found is None else found.values()[name] for found in self.scores])

    @property
    def mu_fidelity(self) -> np.ndarray:
        return self._column("mu_fidelity")

    @property
    def stability(self) -> np.ndarray:
        return self._column("stability")

    @property
    def complexity(self) -> np.ndarray:
        return self._column("complexity")

    def rows(self) -> list[dict]:
        return [{"image": i, **{METRICS[name].heading: float(self._column(name)[i]) for name in METRICS}}
                for i in range(len(self.scores))]

    def title(self) -> str:
        return f"{self.method}: " + "; ".join(f"{metric.heading}: {metric.meaning}" for metric in METRICS.values())


def trust_metrics(method: Attribution, images: Images, targets: Targets = None, *, seed: int = 0) -> TrustMetrics:
    """MuFidelity, average stability and complexity of ``method``'s map of each image, for its target (default
    its top class); removed pixels become the method's ``baseline``. Cached on disk as the app caches them."""
    maps = method(images, targets)
    scores = tuple(trust_scores(method.model, picture, method.engine, found, method.fit, method.baseline, seed)
                   if isinstance(found, Heatmap) else None for picture, found in zip(maps.pictures, maps.found))
    return TrustMetrics(method.engine.title, scores)
