"""MuFidelity (Bhatt et al., "Evaluating and Aggregating Feature-based Model Explanations", IJCAI 2020, def. 3):
does the map's sum over a set of pixels predict how much the score falls when those pixels are removed?

Over random subsets S of the image, each the same number of cells of a grid of superpixels (as Xplique
samples them: pixel by pixel is too fine for an image), it is the Pearson correlation between
Σ_{i∈S} attribution_i and f(x) − f(x with S set to the baseline), f the target's score: 1 when the map
predicts every drop exactly (a linear model's weights × input), 0 when it predicts nothing, −1 when it
ranks the evidence backwards. The unmasked image and every subset are scored in shared batches.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from convvis_core.batches import pixel_batch
from convvis_core.cam.baselines import Baseline, baseline_pixels
from convvis_core.cam.faithfulness import target_scores
from convvis_core.cam.targets import Target
from convvis_core.errors import ConvVisError
from convvis_core.images import Fit
from convvis_core.models.base import LoadedModel

GRID = 9  # cells per side (Xplique's default)
SUBSET = 0.2  # the share of cells removed in each subset
SAMPLES = 128  # random subsets


def grid_cells(size: tuple[int, int], grid: int) -> np.ndarray:
    """(H, W) each pixel's cell of a grid × grid partition of the image (row-major), cells as equal as can be."""
    rows = np.arange(size[0]) * grid // size[0]
    columns = np.arange(size[1]) * grid // size[1]
    return rows[:, None] * grid + columns[None, :]


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 0 when either does not vary (nothing to correlate)."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def mu_fidelity(loaded: LoadedModel, image: Image.Image, attribution: np.ndarray, target: Target,
                fit: Fit = "stretch", baseline: Baseline = "blur", grid: int = GRID, subset: float = SUBSET,
                samples: int = SAMPLES, seed: int = 0) -> float:
    """MuFidelity of ``attribution`` (H, W at the model's input size, any sign: a heatmap's values or raw
    attributions) for a concrete ``target``: ``samples`` subsets of ``subset`` of the ``grid`` × ``grid``
    cells, each set to ``baseline``."""
    height, width = loaded.info.input_size
    if np.shape(attribution) != (height, width):
        raise ConvVisError(f"MuFidelity takes one value per pixel of the model's input ({height}×{width}); got an "
                           f"attribution of shape {np.shape(attribution)}.")
    if not 2 <= grid <= min(height, width):
        raise ConvVisError(f"MuFidelity's grid needs 2 to {min(height, width)} cells per side (one pixel each at most); "
                           f"got {grid}.")
    cells = grid * grid
    count = round(subset * cells)
    if not 0 < count < cells:
        raise ConvVisError(f"MuFidelity removes a share of the {cells} cells strictly between none and all; "
                           f"{subset!r} removes {count}. 0.2 is usual.")
    if samples < 3:
        raise ConvVisError(f"MuFidelity correlates over random subsets: it needs at least 3; got {samples}.")
    rng = np.random.default_rng(seed)
    chosen = np.argsort(rng.random((samples, cells)), axis=1)[:, :count]
    in_subset = np.zeros((samples, cells), bool)
    np.put_along_axis(in_subset, chosen, True, axis=1)
    where = grid_cells((height, width), grid)
    pixels = pixel_batch(image, loaded.info, fit, dtype=np.float32)
    removed = baseline_pixels(image, loaded.info, fit, baseline)
    masked = np.where(in_subset[:, where][..., None], removed, pixels)
    scores = target_scores(loaded, target, np.concatenate([pixels, masked]).astype(np.float32)).astype(np.float64)
    per_cell = np.bincount(where.ravel(), np.asarray(attribution, np.float64).ravel(), minlength=cells)
    return correlation(in_subset @ per_cell, scores[0] - scores[1:])
