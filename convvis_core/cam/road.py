"""How far to trust a heatmap, without the deletion shortcut: ROAD (RemOve And Debias; Rong et al., ICML 2022).

Deletion curves replace removed pixels by a baseline (blur, mean colour, black). The hard edges of
the removed region are themselves evidence: a model can lose confidence because the image now looks
strange, not because the evidence is gone, and the shape of the hole can even leak which pixels the
map ranked highest. ROAD fills each removed pixel from its surroundings instead (:func:`impute`:
every removed pixel becomes the weighted mean of its 8 neighbours, kept pixels fixed, plus a little
noise), so the altered image stays close to a natural one and says nothing about where the hole is.

For each percentile p it scores two images of one batch: the p% MOST relevant pixels removed (MoRF:
a faithful map makes the score drop) and the p% LEAST relevant removed (LeRF: a faithful map keeps
the score). :attr:`Road.combined` is the mean over percentiles of (LeRF - MoRF) / 2: higher is more
faithful; 0 is what a random map scores, and a negative value means the map ranks the evidence last.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import numpy as np
import scipy.sparse as sparse
import scipy.sparse.linalg as sparse_linalg
from PIL import Image

from convvis_core.batches import pixel_batch
from convvis_core.cam.base import Heatmap
from convvis_core.cam.faithfulness import importance_masks, target_scores
from convvis_core.cam.targets import score_name
from convvis_core.errors import ConvVisError
from convvis_core.images import Fit
from convvis_core.models.base import LoadedModel

PERCENTILES = (10, 20, 30, 40, 50, 60, 70, 80, 90)
NOISE = 0.01 * 255  # the imputation noise's standard deviation, in pixels (ROAD's 0.01 on a 0..1 scale)
MAX_STEPS = 1000  # percentiles are resolved to 0.1 %
EDGE, DIAGONAL = 1 / 6, 1 / 12  # the neighbour weights of ROAD's NoisyLinearImputer (they sum to 1)
NEIGHBOURS = ((-1, 0, EDGE), (1, 0, EDGE), (0, -1, EDGE), (0, 1, EDGE),
              (-1, -1, DIAGONAL), (-1, 1, DIAGONAL), (1, -1, DIAGONAL), (1, 1, DIAGONAL))


@functools.lru_cache(maxsize=16)
def _dissection_rank(height: int, width: int, leaf: int = 8) -> np.ndarray:
    """(H, W) each pixel's place in a nested-dissection order of the grid: split the longer side by one
    line of pixels (a separator for 8-neighbour stencils too), order each half the same way, the line
    last. Any subset of pixels taken in this order keeps the separators, so the Cholesky-like factor of a
    hole's system fills in little (George, 1973)."""
    parts: list[np.ndarray] = []

    def visit(top: int, left: int, bottom: int, right: int) -> None:
        rows, columns = bottom - top, right - left
        if rows <= 0 or columns <= 0:
            return
        if rows * columns <= leaf * leaf:
            grid_rows, grid_columns = np.mgrid[top:bottom, left:right]
            parts.append((grid_rows * width + grid_columns).ravel())
        elif rows >= columns:
            middle = top + rows // 2
            visit(top, left, middle, right)
            visit(middle + 1, left, bottom, right)
            parts.append(middle * width + np.arange(left, right))
        else:
            middle = left + columns // 2
            visit(top, left, bottom, middle)
            visit(top, middle + 1, bottom, right)
            parts.append(np.arange(top, bottom) * width + middle)

    visit(0, 0, height, width)
    rank = np.empty(height * width, np.int64)
    rank[np.concatenate(parts)] = np.arange(height * width)
    rank.setflags(write=False)
    return rank.reshape(height, width)


def impute(pixels: np.ndarray, removed: np.ndarray, noise: float = NOISE, seed: int = 0) -> np.ndarray:
    """``pixels`` (H, W, C) with the ``removed`` (H, W) pixels filled in from the kept ones.

    Each removed pixel becomes the weighted mean of its neighbours inside the image (edge neighbours
    weigh 1/6, diagonal ones 1/12, renormalised at the border), where neighbours that are removed
    too are unknowns of the same sparse linear system; so a hole is filled smoothly from its rim
    (a discrete harmonic interpolation: a linear ramp with a hole comes back as the ramp). Then
    Gaussian noise of standard deviation ``noise`` (pixels, seeded) is added to the removed pixels
    only; kept pixels are returned unchanged. One sparse factorisation serves all channels.
    When every pixel is removed nothing is left to impute from: they become mid-grey (127.5) plus noise.
    """
    pixels = np.asarray(pixels, np.float64)
    removed = np.asarray(removed, bool)
    if pixels.ndim != 3 or removed.shape != pixels.shape[:2]:
        raise ConvVisError(f"impute takes pixels (H, W, C) and a removed mask (H, W); got {pixels.shape} "
                           f"and {removed.shape}.")
    height, width, channels = pixels.shape
    out = pixels.copy()
    count = int(removed.sum())
    if count == 0:
        return out
    rows, columns = np.nonzero(removed)
    order = np.argsort(_dissection_rank(height, width)[rows, columns], kind="stable")
    rows, columns = rows[order], columns[order]  # unknowns numbered in nested-dissection order
    if count == removed.size:
        filled = np.full((count, channels), 127.5)
    else:
        unknown = np.full((height, width), -1, np.int64)  # each removed pixel's row of the system
        unknown[rows, columns] = np.arange(count)
        diagonal = np.zeros(count)
        right = np.zeros((count, channels))
        coupled_rows, coupled_columns, coupled_weights = [], [], []
        for dr, dc, weight in NEIGHBOURS:  # 8 offsets, each over all removed pixels at once
            r, c = rows + dr, columns + dc
            inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
            diagonal[inside] += weight
            at, r, c = np.nonzero(inside)[0], r[inside], c[inside]
            neighbour = unknown[r, c]
            is_unknown = neighbour >= 0
            coupled_rows.append(at[is_unknown])
            coupled_columns.append(neighbour[is_unknown])
            coupled_weights.append(np.full(int(is_unknown.sum()), -weight))
            np.add.at(right, at[~is_unknown], weight * pixels[r[~is_unknown], c[~is_unknown]])
        # sum_j w_ij (x_i - x_j) = 0 for every removed pixel i, the kept x_j moved to the right-hand side
        system = sparse.csc_matrix((np.concatenate([diagonal] + coupled_weights),
                                    (np.concatenate([np.arange(count)] + coupled_rows),
                                     np.concatenate([np.arange(count)] + coupled_columns))), shape=(count, count))
        # symmetric positive definite: factorised in the nested-dissection order as numbered, diagonal pivots
        # (CPU time of the 18 solves of a ROAD at 224 x 224: 3.8 s with SuperLU's defaults, 2.2 s with its
        # minimum-degree ordering of A + A^T, 1.5 s so)
        filled = sparse_linalg.splu(system, permc_spec="NATURAL", diag_pivot_thresh=0.0,
                                    options={"SymmetricMode": True}).solve(right)
    if noise:
        filled = filled + np.random.default_rng(seed).normal(0.0, noise, filled.shape)
    out[rows, columns] = filled
    return out


@dataclass(frozen=True)
class Road:
    """ROAD scores of one heatmap for its own target, at each share ``fractions`` of pixels removed.

    A faithful map keeps ``lerf`` near ``intact`` and drives ``morf`` down: removing what it calls
    unimportant changes little, removing what it calls important changes a lot.
    """

    fractions: np.ndarray  # (P,), the shares of pixels removed, in 0 .. 1 exclusive
    morf: np.ndarray  # (P,), the target's score with the most relevant share removed: low is good
    lerf: np.ndarray  # (P,), the target's score with the least relevant share removed: high is good
    intact: float  # the target's score on the image as it is
    score_name: str  # what the score is ("probability", "logit", "mean activation")

    @property
    def combined(self) -> float:
        """Mean over the percentiles of (LeRF - MoRF) / 2: higher is more faithful. About 0 for a
        random map; negative when the map ranks the evidence last. For a probability it lies in -0.5..0.5."""
        return float(np.mean((self.lerf - self.morf) / 2))


def _steps(percentiles: Sequence[float]) -> tuple[int, list[int]]:
    """The fewest equal steps that hit every percentile, and each percentile's step."""
    if len(percentiles) == 0:
        raise ConvVisError("ROAD needs at least one percentile of pixels to remove, e.g. 10, 20, …, 90.")
    bad = [p for p in percentiles if not (isinstance(p, (int, float, np.integer, np.floating)) and 0 < p < 100)]
    if bad:
        raise ConvVisError(f"ROAD percentiles are the share of pixels removed, strictly between 0 and 100 "
                           f"(e.g. 10, 20, …, 90); got {', '.join(map(repr, bad))}.")
    shares = [Fraction(float(p)).limit_denominator(MAX_STEPS * 10) / 100 for p in percentiles]
    steps = math.lcm(*(share.denominator for share in shares))
    if steps > MAX_STEPS:
        raise ConvVisError(f"ROAD percentiles are resolved to 0.1 %; round {', '.join(map(str, percentiles))} "
                           "to at most one decimal.")
    return steps, [int(share * steps) for share in shares]


def road(loaded: LoadedModel, image: Image.Image, heatmap: Heatmap, fit: Fit = "stretch",
         percentiles: Sequence[float] = PERCENTILES, noise: float = NOISE, seed: int = 0) -> Road:
    """ROAD's MoRF and LeRF scores of ``heatmap`` for its own target, at each percentile of pixels removed.

    The order of pixels is :func:`importance_masks`' (ties broken at random, seeded); removed pixels
    are filled by :func:`impute`; the intact image and all 2 × P imputed ones are scored in one batch.
    """
    return road_batch(loaded, [image], [heatmap], fit, percentiles, noise, seed)[0]


def road_batch(loaded: LoadedModel, images: Sequence[Image.Image], heatmaps: Sequence[Heatmap], fit: Fit = "stretch",
               percentiles: Sequence[float] = PERCENTILES, noise: float = NOISE, seed: int = 0) -> list[Road]:
    """:func:`road` of each image's heatmap (targets of one kind): imputed image by image, every image's
    intact and imputed pictures scored in shared batches."""
    steps, at = _steps(percentiles)
    rows, targets = [], []
    for image, heatmap in zip(images, heatmaps, strict=True):
        pixels = pixel_batch(image, loaded.info, fit, dtype=np.float32)[0]
        most = importance_masks(heatmap.values, steps, seed)[at, ..., 0]
        least = importance_masks(-heatmap.values, steps, seed)[at, ..., 0]
        imputed = [impute(pixels, removed, noise, seed + k) for k, removed in enumerate(np.concatenate([most, least]))]
        rows.append(np.clip(np.stack([pixels] + imputed), 0, 255).astype(np.float32))
        targets += [heatmap.target] * (1 + 2 * len(at))
    if not rows:
        return []
    scores = target_scores(loaded, targets, np.concatenate(rows)).astype(np.float64)  # float16 under mixed precision
    count = len(at)
    return [Road(np.asarray(at, np.float64) / steps, row[1:count + 1], row[count + 1:], float(row[0]),
                 score_name(loaded, heatmap.target))
            for row, heatmap in zip(scores.reshape(len(rows), 1 + 2 * count), heatmaps)]
