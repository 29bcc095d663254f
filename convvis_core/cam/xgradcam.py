"""XGradCAM (Fu et al. 2020, "Axiom-based Grad-CAM"): each channel weighted by its gradients
averaged with the channel's own activations as weights,

    w_k = Σ_ij (g_ij · A_ij) / (Σ_ij A_ij + ε),

the weights that best satisfy the sensitivity and conservation axioms (pytorch-grad-cam's ε = 1e-7).
"""

from __future__ import annotations

import numpy as np

from convvis_core.cam.base import CamMethod, Capture

EPSILON = 1e-7


class XGradCAM(CamMethod):
    name = "xgradcam"
    title = "XGradCAM"

    def weights(self, capture: Capture) -> np.ndarray:
        activations = capture.activations.astype(np.float64)
        weighted = (capture.gradients * activations).sum(axis=(0, 1))
        return (weighted / (activations.sum(axis=(0, 1)) + EPSILON)).astype(np.float32)
