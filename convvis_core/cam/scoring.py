"""A heatmap with its faithfulness scores and cost, and the verdict on which map to trust.

The Heatmaps page and ``convvis cam`` both explain an image with several methods; this is the one
sequence they share: compute the map, score it by deletion and insertion and by ROAD, time it, and
keep the reason when a method has no map (an empty map is an answer, not a crash). The verdict names
the best map by each score and says plainly whether deletion/insertion and ROAD agree; a map that fails
the sanity check (``randomization``: it does not depend on the model) is never named, whatever its scores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Collection, Mapping

from PIL import Image

from convvis_core.cam.base import EmptyHeatmapError, Heatmap
from convvis_core.cam.baselines import Baseline
from convvis_core.cam.faithfulness import Faithfulness, faithfulness
from convvis_core.cam.methods import heatmap
from convvis_core.cam.road import Road, road
from convvis_core.cam.targets import Target
from convvis_core.images import Fit
from convvis_core.models.base import LoadedModel


@dataclass(frozen=True)
class ScoredHeatmap:
    """One method's map, its deletion/insertion curves, its ROAD scores, and the seconds all three took."""

    heatmap: Heatmap
    scores: Faithfulness
    seconds: float
    road: Road


def explain_and_score(loaded: LoadedModel, image: Image.Image, method: str, target: Target | None = None,
                      layer: str | None = None, fit: Fit = "stretch", baseline: Baseline = "blur",
                      steps: int | None = None, **settings: int | None) -> ScoredHeatmap | str:
    """The scored map of one method with its ``settings`` (Integrated Gradients' ``steps``, Occlusion's
    ``patch`` and ``stride``, RISE's ``masks``; see :func:`method_named`), or the reason it has none
    (see :class:`EmptyHeatmapError`)."""
    start = time.perf_counter()
    try:
        result = heatmap(loaded, image, method, target, layer, fit, baseline, steps, **settings)
    except EmptyHeatmapError as error:
        return str(error)
    scores = faithfulness(loaded, image, result, fit, baseline=baseline)
    road_scores = road(loaded, image, result, fit)  # imputes its removed pixels: no baseline
    return ScoredHeatmap(result, scores, time.perf_counter() - start, road_scores)


@dataclass(frozen=True)
class Verdict:
    """Which scored method removes the evidence fastest, which restores it fastest, and which ROAD prefers,
    among the maps that pass the sanity check; None for each when none does."""

    best_deletion: str | None  # lowest deletion AUC
    best_insertion: str | None  # highest insertion AUC
    best_road: str | None  # highest ROAD combined score
    road_combined: float  # that score: about 0 for a random map, higher is more faithful
    failed: tuple[str, ...] = ()  # maps that fail the sanity check (randomization.py): never recommended

    def sentence(self, titles: Mapping[str, str]) -> str:
        excluded = ""
        if self.failed:
            names = " and ".join(f"**{titles[method]}**" for method in self.failed)
            excluded = (f" Not recommended whatever their scores: {names}, whose map does not depend on the model "
                        "(it fails the sanity check: it stays the same when the model's weights are randomized).")
        if self.best_deletion is None:
            return f"Every map here fails the sanity check, so none is recommended.{excluded}"
        return self.scores_sentence(titles) + excluded

    def scores_sentence(self, titles: Mapping[str, str]) -> str:
        deletion, insertion, best_road = (titles[self.best_deletion], titles[self.best_insertion],
                                          titles[self.best_road])
        curves = (f"On this image and target, **{deletion}** removes the evidence fastest (lowest deletion AUC) "
                  f"and **{insertion}** restores it fastest (highest insertion AUC).")
        road_says = (f"ROAD, which fills removed pixels in from their neighbours instead of a baseline, favours "
                     f"**{best_road}** (combined score {self.road_combined:.3f})")
        if self.best_deletion == self.best_insertion == self.best_road:
            agreement = (f"{road_says} too: the two agree, so this choice does not rest on artefacts of the "
                         f"removed pixels.")
        elif self.best_deletion == self.best_insertion:
            agreement = (f"Deletion/insertion favour **{deletion}**, ROAD favours **{best_road}** (combined score "
                         f"{self.road_combined:.3f}): the two disagree here — deletion can reward maps whose removal "
                         f"creates out-of-distribution artefacts; ROAD's imputation removes that shortcut.")
        elif self.best_road in (self.best_deletion, self.best_insertion):
            side = "deletion" if self.best_road == self.best_deletion else "insertion"
            agreement = (f"Deletion and insertion disagree with each other; {road_says}, siding with {side}.")
        else:
            agreement = (f"Deletion and insertion disagree with each other, and {road_says}, a third map: the "
                         f"scores do not agree on which map to trust here.")
        if self.road_combined <= 0:
            agreement += (" Under ROAD no map beats what a random map scores (about 0): none of them is "
                          "clearly faithful on this image.")
        return f"{curves} {agreement}"


ROAD_TIE = 0.01  # ROAD scores closer than this are a tie: the curves' choice among them is ROAD's too


def verdict(scored: Mapping[str, ScoredHeatmap], failed: Collection[str] = ()) -> Verdict | None:
    """The verdict over the methods that have a map, leaving out those that fail the sanity check
    (``failed``); None when none has a map. Among maps ROAD scores within ``ROAD_TIE`` of the best, the
    one deletion or insertion picks counts as ROAD's pick."""
    if not scored:
        return None
    excluded = tuple(method for method in scored if method in failed)
    scored = {method: result for method, result in scored.items() if method not in failed}
    if not scored:
        return Verdict(None, None, None, float("nan"), excluded)
    best_deletion = min(scored, key=lambda method: scored[method].scores.deletion_auc)
    best_insertion = max(scored, key=lambda method: scored[method].scores.insertion_auc)
    top = max(result.road.combined for result in scored.values())
    tied = [method for method in scored if scored[method].road.combined >= top - ROAD_TIE]
    best_road = next((method for method in (best_deletion, best_insertion) if method in tied),
                     max(tied, key=lambda method: scored[method].road.combined))
    return Verdict(best_deletion, best_insertion, best_road, scored[best_road].road.combined, excluded)
