"""How far to trust a map beside its deletion, insertion and ROAD scores: MuFidelity, average stability
and complexity (the metrics Xplique and Quantus offer), each with the line that says what it measures
and which way is better, as the Heatmaps page, ``convvis cam --sanity`` and the API show them.

The three are computed together for one map and kept in the disk cache (stability alone costs
``stability.SAMPLES`` maps of the method).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from convvis_core.cache import ResultCache
from convvis_core.cam import fidelity, stability
from convvis_core.cam.base import Heatmap, HeatmapMethod
from convvis_core.cam.baselines import Baseline
from convvis_core.cam.complexity import complexity
from convvis_core.cam.fidelity import mu_fidelity
from convvis_core.cam.map_results import as_method, map_result_key, stored_or_computed
from convvis_core.cam.stability import average_stability
from convvis_core.images import Fit
from convvis_core.models.base import LoadedModel


@dataclass(frozen=True)
class Metric:
    """A metric as people read it: its name, which way is better, and what it measures."""

    title: str
    better: str  # "higher" or "lower"
    meaning: str  # one line

    @property
    def heading(self) -> str:
        return f"{self.title} {'↑' if self.better == 'higher' else '↓'}"


METRICS: dict[str, Metric] = {
    "mu_fidelity": Metric("MuFidelity", "higher", (
        f"does the map's sum over {fidelity.SUBSET:.0%} of the image's {fidelity.GRID}×{fidelity.GRID} cells predict how "
        f"much the score falls when they are removed? Correlation over {fidelity.SAMPLES} random sets: 1 perfectly, "
        "0 not at all; higher is better")),
    "stability": Metric("Stability", "lower", (
        f"how far the map moves when the image gets noise of ±{stability.RADIUS:.0%} of its range: mean RMS difference "
        f"of the 0..1 maps over {stability.SAMPLES} noisy copies, 0 not at all; lower is better")),
    "complexity": Metric("Complexity", "lower", (
        "how spread out the map is: the entropy of its magnitude over the pixels, 0 all on one pixel, log(pixels) "
        "uniform; lower is easier to read")),
}


@dataclass(frozen=True)
class TrustScores:
    """One map's MuFidelity, average stability and complexity (see :data:`METRICS`)."""

    mu_fidelity: float
    stability: float
    complexity: float
    pixels: int  # the map's pixels: its complexity is at most log(pixels)
    from_cache: bool = False

    @property
    def most_complex(self) -> float:
        """The complexity of a uniform map of as many pixels: log(pixels)."""
        return float(np.log(self.pixels))

    def values(self) -> dict[str, float]:
        """The scores by the keys of :data:`METRICS`."""
        return {"mu_fidelity": self.mu_fidelity, "stability": self.stability, "complexity": self.complexity}


def trust_scores(loaded: LoadedModel, image: Image.Image, method: str | HeatmapMethod, heatmap: Heatmap,
                 fit: Fit = "stretch", baseline: Baseline = "blur", seed: int = 0,
                 cache: ResultCache | None = None) -> TrustScores:
    """The three metrics of ``heatmap``, ``method``'s map of ``image`` (its removed pixels become ``baseline``
    for MuFidelity, as in the deletion curves). Cached on disk."""
    engine = as_method(method)

    def compute() -> dict[str, np.ndarray]:
        return {"mu_fidelity": np.array(mu_fidelity(loaded, image, heatmap.values, heatmap.target, fit, baseline,
                                                    seed=seed)),
                "stability": np.array(average_stability(loaded, image, engine, heatmap.target, heatmap.layer, fit,
                                                        baseline, seed=seed)),
                "complexity": np.array(complexity(heatmap.values))}

    key = map_result_key("trust", loaded, image, engine, heatmap.target, heatmap.layer, fit, baseline, seed=seed)
    arrays, from_cache = stored_or_computed(cache, key, compute)
    return TrustScores(float(arrays["mu_fidelity"]), float(arrays["stability"]), float(arrays["complexity"]),
                       int(heatmap.values.size), from_cache)
