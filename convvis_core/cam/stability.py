"""Average stability (Bhatt et al. 2020, "average sensitivity"): how much a map changes when the image
changes a little.

The image (as the model sees it) gets ``samples`` copies with uniform noise in ±``radius`` of its own
pixel range (max − min, as SmoothGrad scales its noise: the same share of contrast on a dim picture as
on a bright one); the image and its copies are explained for the same target by the same method in one
batch, and the stability is the mean distance between the map of the image and the maps of its copies,
the distance being the root mean square difference of the two maps in 0..1 (an empty map counts as all
zero). 0: the map does not move at all; lower is better. A constant image has no range, so it gets no noise, and any
method (their randomness is seeded) gives it a stability of 0.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from convvis_core.cam.base import Heatmap, HeatmapMethod
from convvis_core.cam.baselines import Baseline
from convvis_core.cam.targets import Target
from convvis_core.errors import ConvVisError
from convvis_core.images import Fit, as_model_sees_it
from convvis_core.models.base import LoadedModel

RADIUS = 0.05  # of the image's pixel range: ±13 levels of 0..255 on a full-contrast picture
SAMPLES = 8  # noisy copies


def noisy_copies(image: Image.Image, count: int, radius: float, seed: int) -> list[Image.Image]:
    """``count`` copies of ``image`` (as the model sees it) with uniform noise in ±``radius`` of its pixel
    range, rounded and clipped to 0..255."""
    pixels = np.asarray(image, np.float64)
    spread = radius * float(pixels.max() - pixels.min())
    noise = np.random.default_rng(seed).uniform(-spread, spread, (count,) + pixels.shape)
    return [Image.fromarray(np.clip(np.rint(pixels + each), 0, 255).astype(np.uint8)) for each in noise]


def average_stability(loaded: LoadedModel, image: Image.Image, method: HeatmapMethod, target: Target,
                      layer: str | None = None, fit: Fit = "stretch", baseline: Baseline = "blur",
                      radius: float = RADIUS, samples: int = SAMPLES, seed: int = 0) -> float:
    """The mean RMS distance between ``method``'s map of ``image`` and its maps of ``samples`` noisy copies,
    all for the concrete ``target`` at ``layer`` (default: the method's), in one batch."""
    if samples < 1 or not 0 <= radius <= 1:
        raise ConvVisError(f"Stability needs at least one noisy copy and a radius between 0 and 1 of the image's "
                           f"range; got {samples} copies, radius {radius!r}. {SAMPLES} copies at {RADIUS} are usual.")
    seen = as_model_sees_it(image, loaded.info, fit)
    pictures = [seen] + noisy_copies(seen, samples, radius, seed)
    maps = [found.values if isinstance(found, Heatmap) else np.zeros(loaded.info.input_size, np.float32)
            for found in method.explain_batch(loaded, pictures, [target] * len(pictures), layer, "stretch", baseline)]
    return float(np.mean([np.sqrt(np.mean(np.square(maps[0] - other))) for other in maps[1:]]))
