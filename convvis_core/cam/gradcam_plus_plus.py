"""Grad-CAM++ (Chattopadhay et al. 2018): positive gradients weighted per position by alpha, so
several instances of a class all count, not only the strongest one.

alpha = g² / (2·g² + (Σ_ab A) · g³), as in the paper's closed form and pytorch-grad-cam.
"""

from __future__ import annotations

import numpy as np

from convvis_core.cam.base import CamMethod, Capture

EPSILON = 1e-7


class GradCAMPlusPlus(CamMethod):
    name = "gradcam++"
    title = "Grad-CAM++"

    def weights(self, capture: Capture) -> np.ndarray:
        grads = capture.gradients.astype(np.float64)
        activation_sums = capture.activations.sum(axis=(0, 1), dtype=np.float64)
        alpha = grads**2 / (2 * grads**2 + activation_sums * grads**3 + EPSILON)
        alpha = np.where(grads != 0, alpha, 0.0)
        return (alpha * np.maximum(grads, 0.0)).sum(axis=(0, 1)).astype(np.float32)
