"""What "removed" means for a pixel, in pixel space (0..255, before preprocessing).

Score-CAM's masks, the deletion/insertion curves and Integrated Gradients' path all replace pixels
by a baseline (ROAD does not: it fills removed pixels in from their neighbours). Built from the picture itself and preprocessed only afterwards, it is the same picture
whether the model scales its pixels inside (a leading ``Rescaling``) or expects them scaled: the
maps and scores do not depend on where the preprocessing lives.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image, ImageFilter

from convvis_core.batches import pixel_batch
from convvis_core.images import Fit, as_model_sees_it
from convvis_core.models.base import ModelInfo

Baseline = Literal["blur", "mean", "black"]
BASELINES: dict[Baseline, str] = {"blur": "the image, blurred", "mean": "its mean colour", "black": "black"}
BLUR_SIGMA = 0.05  # of the image's side: shapes and textures gone, colours kept


def baseline_pixels(image: Image.Image, info: ModelInfo, fit: Fit = "stretch", baseline: Baseline = "blur") -> np.ndarray:
    """The image with every pixel 'removed', as model-size pixels (1, H, W, C), float 0..255."""
    if baseline == "blur":
        seen = as_model_sees_it(image, info, fit)
        blurred = seen.filter(ImageFilter.GaussianBlur(BLUR_SIGMA * max(seen.size)))
        return pixel_batch(blurred, info, fit, dtype=np.float32)
    pixels = pixel_batch(image, info, fit, dtype=np.float32)
    if baseline == "mean":
        return np.broadcast_to(pixels.mean(axis=(1, 2), keepdims=True), pixels.shape).astype(np.float32)
    if baseline == "black":
        return np.zeros_like(pixels)
    raise ValueError(f"Unknown baseline {baseline!r}; choose one of {', '.join(BASELINES)}")
