"""Input-gradient maps: which pixels, changed a little, change the target most.

Vanilla gradient (Simonyan et al. 2014) is the gradient's magnitude, the largest over colour
channels; SmoothGrad (Smilkov et al. 2017) averages the gradient over noisy copies of the image
(all in one batch), which removes most of the speckle. No layer is involved.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from convvis_core.cam.base import EmptyHeatmapError, HeatmapMethod, Scene


class InputGradientMethod(HeatmapMethod):
    uses_layer: ClassVar[bool] = False

    def gradients(self, scene: Scene) -> np.ndarray:
        """d(target value) / d(pixels) for the image, (H, W, C)."""
        return scene.probe.input_gradients(scene.pixels, scene.target)[0]

    def raw_map(self, scene: Scene) -> np.ndarray:
        saliency = np.abs(self.gradients(scene)).max(axis=-1)
        target = scene.target
        if not np.isfinite(saliency).all():
            raise EmptyHeatmapError(f"{self.title}: the gradient is not finite (NaN or infinity); the model "
                                    "overflows on this image.")
        if not saliency.any():
            raise EmptyHeatmapError(f"{self.title}: the gradient of {target.describe()} with respect to the "
                                    "image is zero everywhere: the target is saturated or does not depend on the image.")
        return saliency


class VanillaGradient(InputGradientMethod):
    name = "saliency"
    title = "Vanilla gradient"


class SmoothGrad(InputGradientMethod):
    name = "smoothgrad"
    title = "SmoothGrad"

    def __init__(self, samples: int = 24, noise: float = 0.15, seed: int = 0):
        self.samples, self.noise, self.seed = samples, noise, seed

    def gradients(self, scene: Scene) -> np.ndarray:
        pixels = scene.pixels
        spread = self.noise * float(pixels.max() - pixels.min())
        noise = np.random.default_rng(self.seed).normal(0.0, spread, (self.samples,) + pixels.shape[1:])
        return scene.probe.input_gradients((pixels + noise).astype(np.float32), scene.target).mean(axis=0)
