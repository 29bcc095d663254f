"""Gradient × Input (Shrikumar et al. 2016): each pixel's gradient times the pixel's own value,

    GI(x) = x · ∂f/∂x,

with x the pixels as the model is given them before preprocessing (0..255), not the preprocessed
input, so the map does not depend on where the model keeps its preprocessing. It is the baseline-free
form: for a model linear along the way from black (x = 0) to the image it equals Integrated Gradients
from a black picture, and it is IG's one-step approximation otherwise. One backward pass.

The map shown is the products summed over colour channels, positive part only: the evidence for the
target (as Integrated Gradients shows its attributions). No layer is involved.
"""

from __future__ import annotations

import numpy as np

from convvis_core.cam.base import Scene
from convvis_core.cam.saliency import InputGradientMethod


class GradientInput(InputGradientMethod):
    name = "gradient_input"
    title = "Gradient × Input"

    def reduced(self, scene: Scene, gradients: np.ndarray) -> np.ndarray:
        return np.maximum((gradients * scene.pixels[0]).sum(axis=-1), 0.0)
