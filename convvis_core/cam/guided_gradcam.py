"""Guided Grad-CAM (Selvaraju et al. 2017): Guided Backpropagation's fine detail, kept where Grad-CAM
says the class is: the guided gradient's magnitude (the largest over colours) times the Grad-CAM map
of the chosen layer, bilinearly upsampled to the image. Sharp like the guided gradient and
class-discriminative like Grad-CAM; the layer is Grad-CAM's. One forward and two backward passes.
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import numpy as np

from convvis_core.cam.base import EmptyHeatmapError, HeatmapMethod, Scene, or_reason, resized
from convvis_core.cam.gradcam import GradCAM
from convvis_core.cam.guided_backprop import GuidedBackprop

GRADCAM, GUIDED = GradCAM(), GuidedBackprop()


class GuidedGradCAM(HeatmapMethod):
    name = "guided_gradcam"
    title = "Guided Grad-CAM"

    def raw_maps(self, scenes: Sequence[Scene]) -> list[np.ndarray | EmptyHeatmapError]:
        cams = GRADCAM.raw_maps(scenes)
        guided = GUIDED.gradients(scenes)
        return [cam if isinstance(cam, EmptyHeatmapError) else or_reason(partial(self.combined, scene, cam, gradients))
                for scene, cam, gradients in zip(scenes, cams, guided)]

    def combined(self, scene: Scene, cam: np.ndarray, gradients: np.ndarray) -> np.ndarray:
        """The guided gradient's map times the Grad-CAM map upsampled to it; or why there is none."""
        return GUIDED.saliency(scene, gradients) * resized(cam, scene.pixels.shape[1:3])
