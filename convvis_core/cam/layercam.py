"""Layer-CAM (Jiang et al. 2021): every activation weighted by its own positive gradient, so
early, high-resolution layers give sharp maps too."""

from __future__ import annotations

import numpy as np

from convvis_core.cam.base import CamMethod, Capture


class LayerCAM(CamMethod):
    name = "layercam"
    title = "Layer-CAM"

    def weights(self, capture: Capture) -> np.ndarray:
        return np.maximum(capture.gradients, 0.0)
