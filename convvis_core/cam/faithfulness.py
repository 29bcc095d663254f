"""How far to trust a heatmap: deletion and insertion curves (Petsiuk et al., RISE, 2018).

Deletion removes the pixels the map ranks most important first (replacing them with a baseline:
the image blurred, or its mean colour) and tracks the target's score: a faithful map makes it fall
fast, so a LOW area under the curve is good. Insertion starts from the baseline and reveals the
most important pixels first: a faithful map makes the score rise fast, so a HIGH area is good.
Every step of both curves is one image of a single batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageFilter

from convvis_core.cam.base import Heatmap, probe_for
from convvis_core.images import Fit, as_model_sees_it, model_input
from convvis_core.models.base import LoadedModel

Baseline = Literal["blur", "mean"]
BASELINES: dict[Baseline, str] = {"blur": "the image, blurred", "mean": "its mean colour"}
BLUR_SIGMA = 0.05  # of the image's side: shapes and textures gone, colours kept
BATCH_SIZE = 64


@dataclass(frozen=True)
class Faithfulness:
    """Deletion and insertion curves of one heatmap; ``fractions`` is the share of pixels changed."""

    fractions: np.ndarray  # (steps + 1,), 0 .. 1
    deletion: np.ndarray  # the target's score as the most important pixels are removed
    insertion: np.ndarray  # the target's score as they are revealed on the baseline
    score_name: str  # what the score is ("probability", "mean activation")

    @property
    def deletion_auc(self) -> float:
        """Area under the deletion curve: lower is more faithful."""
        return float(np.trapezoid(self.deletion, self.fractions))

    @property
    def insertion_auc(self) -> float:
        """Area under the insertion curve: higher is more faithful."""
        return float(np.trapezoid(self.insertion, self.fractions))


def baseline_input(image: Image.Image, loaded: LoadedModel, fit: Fit, baseline: Baseline) -> np.ndarray:
    """The model input of the image with every pixel 'removed', (1, H, W, C)."""
    seen = as_model_sees_it(image, loaded.info, fit)
    if baseline == "blur":
        return model_input(seen.filter(ImageFilter.GaussianBlur(BLUR_SIGMA * max(seen.size))), loaded.info, fit)
    if baseline == "mean":
        inputs = model_input(seen, loaded.info, fit)
        return np.broadcast_to(inputs.mean(axis=(1, 2), keepdims=True), inputs.shape)
    raise ValueError(f"Unknown baseline {baseline!r}; choose one of {', '.join(BASELINES)}")


def importance_masks(values: np.ndarray, steps: int, seed: int = 0) -> np.ndarray:
    """(steps + 1, H, W, 1) booleans: mask k holds the k/steps most important pixels. Ties (a map's
    flat zero areas) are broken at random, not in reading order."""
    flat = values.ravel()
    order = np.lexsort((np.random.default_rng(seed).random(flat.size), -flat))
    rank = np.empty(flat.size, np.int64)
    rank[order] = np.arange(flat.size)
    counts = np.round(np.linspace(0.0, 1.0, steps + 1) * flat.size)
    return (rank[None, :] < counts[:, None]).reshape((steps + 1,) + values.shape + (1,))


def faithfulness(loaded: LoadedModel, image: Image.Image, heatmap: Heatmap, fit: Fit = "stretch",
                 steps: int = 16, baseline: Baseline = "blur") -> Faithfulness:
    """Deletion and insertion curves of ``heatmap`` for its own target, in ``steps`` steps each."""
    inputs = model_input(image, loaded.info, fit)
    removed = baseline_input(image, loaded, fit, baseline)
    masks = importance_masks(heatmap.values, steps)
    batch = np.concatenate([np.where(masks, removed, inputs), np.where(masks, inputs, removed)]).astype(np.float32)
    probe = probe_for(loaded.model, None, heatmap.target)
    scores = np.concatenate([probe.scores(batch[start:start + BATCH_SIZE], heatmap.target.index)
                             for start in range(0, len(batch), BATCH_SIZE)])
    return Faithfulness(np.linspace(0.0, 1.0, steps + 1), scores[:steps + 1], scores[steps + 1:],
                        heatmap.target.score_name)
