"""Grad-CAM (Selvaraju et al. 2017): each channel weighted by its mean gradient over the map."""

from __future__ import annotations

import numpy as np

from convvis_core.cam.base import CamMethod, Capture


class GradCAM(CamMethod):
    name = "gradcam"
    title = "Grad-CAM"

    def weights(self, capture: Capture) -> np.ndarray:
        return capture.gradients.mean(axis=(0, 1))
