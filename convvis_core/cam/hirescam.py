"""HiResCAM (Draelos & Carin 2020): every activation weighted by its own gradient, summed over
channels. Where Grad-CAM averages the gradient over the map first (and so can mark positions the
model did not use), HiResCAM's map is exactly each position's first-order share of the target's
value, so it highlights only where the model looked."""

from __future__ import annotations

import numpy as np

from convvis_core.cam.base import CamMethod, Capture


class HiResCAM(CamMethod):
    name = "hirescam"
    title = "HiResCAM"

    def weights(self, capture: Capture) -> np.ndarray:
        return capture.gradients
