"""How far to trust a heatmap: deletion and insertion curves (Petsiuk et al., RISE, 2018).

Deletion removes the pixels the map ranks most important first (replacing them with a baseline:
the image blurred, its mean colour, or black; see ``baselines``) and tracks the target's score: a faithful map makes it fall
fast, so a LOW area under the curve is good. Insertion starts from the baseline and reveals the
most important pixels first: a faithful map makes the score rise fast, so a HIGH area is good.
Every step of both curves is one image of a batch through the model.

The curves take ``STEPS`` = 50 equal steps, so the first removes 2 % of the pixels: a sharp map (a
vanilla gradient) puts most of its evidence in its top few per cent, and 16 steps (6 % at once)
measured its deletion area at 0.031 where 64 steps measure 0.012. Equal steps keep the area the one
other libraries report (Xplique, Quantus: the trapezoid over equal fractions). Cost: 2 × 51 images
through the model per map (bench/black_box_cost.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image

from convvis_core.batches import pixel_batch
from convvis_core.cam.base import Heatmap, Targets, probe_for
from convvis_core.cam.baselines import Baseline, baseline_pixels
from convvis_core.cam.targets import Target, score_name
from convvis_core.images import Fit
from convvis_core.models.base import LoadedModel

BATCH_SIZE = 64
STEPS = 50  # the first step removes 1 / STEPS = 2 % of the pixels


@dataclass(frozen=True)
class Faithfulness:
    """Deletion and insertion curves of one heatmap; ``fractions`` is the share of pixels changed."""

    fractions: np.ndarray  # (steps + 1,), 0 .. 1
    deletion: np.ndarray  # the target's score as the most important pixels are removed
    insertion: np.ndarray  # the target's score as they are revealed on the baseline
    score_name: str  # what the score is ("probability", "logit", "mean activation")

    @property
    def deletion_auc(self) -> float:
        """Area under the deletion curve: lower is more faithful."""
        return float(np.trapezoid(self.deletion, self.fractions))

    @property
    def insertion_auc(self) -> float:
        """Area under the insertion curve: higher is more faithful."""
        return float(np.trapezoid(self.insertion, self.fractions))


def target_scores(loaded: LoadedModel, targets: Targets, pixels: np.ndarray) -> np.ndarray:
    """The target's score for each image of a pixel batch (one target for all, or one per image, of one
    kind), in batches of ``BATCH_SIZE``."""
    per_row = isinstance(targets, (list, tuple))
    probe = probe_for(loaded, None, targets[0] if per_row else targets)
    return np.concatenate([probe.scores(pixels[start:start + BATCH_SIZE],
                                        targets[start:start + BATCH_SIZE] if per_row else targets)
                           for start in range(0, len(pixels), BATCH_SIZE)])


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
                 steps: int = STEPS, baseline: Baseline = "blur") -> Faithfulness:
    """Deletion and insertion curves of ``heatmap`` for its own target, in ``steps`` steps each."""
    return faithfulness_batch(loaded, [image], [heatmap], fit, steps, baseline)[0]


def faithfulness_batch(loaded: LoadedModel, images: Sequence[Image.Image], heatmaps: Sequence[Heatmap],
                       fit: Fit = "stretch", steps: int = STEPS, baseline: Baseline = "blur") -> list[Faithfulness]:
    """:func:`faithfulness` of each image's heatmap, image by image: its 2 × (steps + 1) copies scored in
    batches of ``BATCH_SIZE``, so memory holds one image's curves however many images there are."""
    found = []
    for image, heatmap in zip(images, heatmaps, strict=True):
        pixels = pixel_batch(image, loaded.info, fit, dtype=np.float32)
        removed = baseline_pixels(image, loaded.info, fit, baseline)
        masks = importance_masks(heatmap.values, steps)
        rows = np.concatenate([np.where(masks, removed, pixels), np.where(masks, pixels, removed)])
        deletion, insertion = target_scores(loaded, heatmap.target, rows.astype(np.float32, copy=False)).reshape(2, -1)
        found.append(Faithfulness(np.linspace(0.0, 1.0, steps + 1), deletion, insertion,
                                  score_name(loaded, heatmap.target)))
    return found
