"""Where two models' maps of the same image differ."""

from __future__ import annotations

import numpy as np
from PIL import Image

from convvis_core.presentation.overlays import overlay


def difference_overlay(image: Image.Image, map_a: np.ndarray, map_b: np.ndarray) -> Image.Image:
    """|B − A| of two maps at the same size (each 0..1, as Grad-CAM returns them) over the image:
    bright where the two models look at different places."""
    return overlay(image, np.abs(np.asarray(map_b, np.float32) - np.asarray(map_a, np.float32)), colormap="magma")
