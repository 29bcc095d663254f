"""Input-gradient maps: which pixels, changed a little, change the target most.

Vanilla gradient (Simonyan et al. 2014) is the gradient's magnitude, the largest over colour
channels; SmoothGrad (Smilkov et al. 2017) averages the gradient over noisy copies of the image
(all in one batch), which removes most of the speckle. No layer is involved. A batch of images
takes one backward pass for the vanilla gradient, one per image (its noisy copies) for SmoothGrad.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar, Sequence

import numpy as np

from convvis_core.cam.base import EmptyHeatmapError, HeatmapMethod, Scene, or_reason


class InputGradientMethod(HeatmapMethod):
    """A map read from the gradient of the target's value with respect to the pixels (before
    preprocessing): subclasses say which gradient (:meth:`gradients`) and how to read it (:meth:`reduced`)."""

    uses_layer: ClassVar[bool] = False

    def gradients(self, scenes: Sequence[Scene]) -> np.ndarray:
        """d(target value) / d(pixels) for each scene's image, (N, H, W, C), from one batched pass."""
        return scenes[0].probe.input_gradients(np.concatenate([scene.pixels for scene in scenes]),
                                               [scene.target for scene in scenes])

    def raw_maps(self, scenes: Sequence[Scene]) -> list[np.ndarray | EmptyHeatmapError]:
        return [or_reason(partial(self.saliency, scene, gradients))
                for scene, gradients in zip(scenes, self.gradients(scenes))]

    def reduced(self, scene: Scene, gradients: np.ndarray) -> np.ndarray:
        """One image's gradients (H, W, C) as a 2-D map: their magnitude, the largest over colour channels."""
        return np.abs(gradients).max(axis=-1)

    def saliency(self, scene: Scene, gradients: np.ndarray) -> np.ndarray:
        """:meth:`reduced`, or why there is no map."""
        saliency = self.reduced(scene, gradients)
        target = scene.target
        if not np.isfinite(saliency).all():
            raise EmptyHeatmapError(f"{self.title}: the gradient is not finite (NaN or infinity); the model "
                                    "overflows on this image.")
        if not gradients.any():
            raise EmptyHeatmapError(f"{self.title}: the gradient of {target.describe()} with respect to the "
                                    "image is zero everywhere: the target is saturated or does not depend on the image.")
        if not saliency.any():
            raise EmptyHeatmapError(f"{self.title}: no pixel adds to {target.describe()} (the map is zero or "
                                    "negative everywhere): the image holds no evidence for it; try another target.")
        return saliency


class VanillaGradient(InputGradientMethod):
    name = "saliency"
    title = "Vanilla gradient"


class SmoothGrad(InputGradientMethod):
    name = "smoothgrad"
    title = "SmoothGrad"

    def __init__(self, samples: int = 24, noise: float = 0.15, seed: int = 0):
        self.samples, self.noise, self.seed = samples, noise, seed

    def gradients(self, scenes: Sequence[Scene]) -> np.ndarray:
        """Each image's gradient averaged over its noisy copies (a pass of ``samples`` copies per image)."""
        return np.stack([scene.probe.input_gradients(self.noisy(scene.pixels), scene.target).mean(axis=0)
                         for scene in scenes])

    def noisy(self, pixels: np.ndarray) -> np.ndarray:
        """``samples`` copies of one image (1, H, W, C), each with its own Gaussian noise (seeded)."""
        spread = self.noise * float(pixels.max() - pixels.min())
        noise = np.random.default_rng(self.seed).normal(0.0, spread, (self.samples,) + pixels.shape[1:])
        return (pixels + noise).astype(np.float32)
