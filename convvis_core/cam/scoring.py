"""A heatmap with its faithfulness score and cost, and the verdict on which map to trust.

The Heatmaps page and ``convvis cam`` both explain an image with several methods; this is the one
sequence they share: compute the map, score it by deletion and insertion, time it, and keep the
reason when a method has no map (an empty map is an answer, not a crash).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping

from PIL import Image

from convvis_core.cam.base import EmptyHeatmapError, Heatmap
from convvis_core.cam.baselines import Baseline
from convvis_core.cam.faithfulness import Faithfulness, faithfulness
from convvis_core.cam.targets import Target
from convvis_core.images import Fit
from convvis_core.models.base import LoadedModel


@dataclass(frozen=True)
class ScoredHeatmap:
    """One method's map, its deletion/insertion curves, and the seconds both took."""

    heatmap: Heatmap
    scores: Faithfulness
    seconds: float


def explain_and_score(loaded: LoadedModel, image: Image.Image, method: str, target: Target | None = None,
                      layer: str | None = None, fit: Fit = "stretch", baseline: Baseline = "blur") -> ScoredHeatmap | str:
    """The scored map of one method, or the reason it has none (see :class:`EmptyHeatmapError`)."""
    from convvis_core.cam import heatmap  # the method registry lives in the package

    start = time.perf_counter()
    try:
        result = heatmap(loaded, image, method, target, layer, fit, baseline)
    except EmptyHeatmapError as error:
        return str(error)
    scores = faithfulness(loaded, image, result, fit, baseline=baseline)
    return ScoredHeatmap(result, scores, time.perf_counter() - start)


@dataclass(frozen=True)
class Verdict:
    """Which scored method removes the evidence fastest and which restores it fastest."""

    best_deletion: str  # lowest deletion AUC
    best_insertion: str  # highest insertion AUC

    def sentence(self, titles: Mapping[str, str]) -> str:
        return (f"On this image and target, **{titles[self.best_deletion]}** removes the evidence fastest (lowest "
                f"deletion AUC) and **{titles[self.best_insertion]}** restores it fastest (highest insertion AUC).")


def verdict(scored: Mapping[str, ScoredHeatmap]) -> Verdict | None:
    """The verdict over the methods that have a map; None when none has."""
    if not scored:
        return None
    return Verdict(min(scored, key=lambda method: scored[method].scores.deletion_auc),
                   max(scored, key=lambda method: scored[method].scores.insertion_auc))
