"""Integrated Gradients (Sundararajan et al. 2017): each pixel's share of how much the target's value
rises from a baseline picture x' to the image x,

    IG(x) = (x − x') · ∫₀¹ ∂f/∂x (x' + α(x − x')) dα,

the integral by the trapezoid rule over ``steps`` equal intervals (steps + 1 gradients, in batches).
By completeness the attributions add up to f(x) − f(x'): every map carries that check
(:class:`~convvis_core.cam.completeness.Completeness`, the sum next to the change, one more pass of
two images), which warns when they are more than 5 % apart. Everything lives in pixel space (0..255) and is
preprocessed inside the model's pass, so the attributions do not depend on where the model keeps
its preprocessing. The baseline is the caller's (``explain(..., baseline=...)``): "black" is the
paper's; "blur" and "mean" ask what the details and colours add over a blurred or flat picture.

The map shown is the attributions summed over colour channels, positive part only: the evidence
for the target. No layer is involved.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial
from typing import ClassVar, Sequence

import numpy as np
from PIL import Image

from convvis_core.batches import pixel_batch
from convvis_core.cam.base import EmptyHeatmapError, Heatmap, HeatmapMethod, Scene, or_reason, pinned, probe_for
from convvis_core.cam.baselines import Baseline, baseline_pixels
from convvis_core.cam.completeness import Completeness
from convvis_core.cam.targets import Target, check_target, default_target
from convvis_core.errors import ConvVisError
from convvis_core.images import Fit
from convvis_core.layers import default_layer
from convvis_core.models.base import LoadedModel


def checked_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ConvVisError(f"Integrated Gradients needs at least 1 step along the path from the baseline to "
                           f"the image; got {steps!r}. 64 is a good start, more make the attributions' sum closer "
                           "to the change in the target's value.")
    return int(steps)


@dataclass(frozen=True)
class PathMap:
    """One image's raw map and how well its attributions add up (what :meth:`IntegratedGradients.raw_maps`
    gives for each image, for :meth:`IntegratedGradients.finished` to keep)."""

    evidence: np.ndarray  # (H, W): the attributions summed over colours, positive part
    completeness: Completeness


class IntegratedGradients(HeatmapMethod):
    name = "integrated_gradients"
    title = "Integrated Gradients"
    uses_layer: ClassVar[bool] = False
    settings = ("steps",)

    def __init__(self, steps: int = 64, batch_size: int = 32):
        self.steps, self.batch_size = checked_steps(steps), batch_size

    def attributions(self, scene: Scene) -> np.ndarray:
        """Each pixel's and colour's attribution, (H, W, C): they add up to about f(x) − f(x')."""
        steps = checked_steps(self.steps)
        pixels, baseline = scene.pixels.astype(np.float32), scene.baseline.astype(np.float32)
        alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32)
        trapezoid = np.full(steps + 1, 1.0 / steps)
        trapezoid[[0, -1]] /= 2
        total = np.zeros(pixels.shape[1:], np.float64)
        for start in range(0, steps + 1, self.batch_size):
            part = alphas[start:start + self.batch_size, None, None, None]
            points = baseline + part * (pixels - baseline)
            gradients = scene.probe.input_gradients(points, scene.target).astype(np.float64)
            total += np.tensordot(trapezoid[start:start + self.batch_size], gradients, axes=1)
        return ((pixels - baseline)[0] * total).astype(np.float32)

    def raw_maps(self, scenes: Sequence[Scene]) -> list[PathMap | EmptyHeatmapError]:
        """Image by image: each image's path already fills passes of ``batch_size`` points."""
        return [or_reason(partial(self.path_map, scene)) for scene in scenes]

    def finished(self, scene: Scene, raw: PathMap | EmptyHeatmapError) -> Heatmap | EmptyHeatmapError:
        """The shown map, carrying its completeness check."""
        if isinstance(raw, EmptyHeatmapError):
            return raw
        found = super().finished(scene, raw.evidence)
        if isinstance(found, EmptyHeatmapError):
            return found
        return dataclasses.replace(found, completeness=raw.completeness)

    def path_map(self, scene: Scene) -> PathMap:
        """The evidence map and the completeness check of one image; or why there is no map."""
        attributions = self.attributions(scene)
        values = scene.probe.values(np.concatenate([scene.pixels, scene.baseline]), scene.target)
        completeness = Completeness(float(attributions.sum(dtype=np.float64)), float(values[0]) - float(values[1]),
                                    checked_steps(self.steps))
        return PathMap(self.evidence(scene, attributions), completeness)

    def evidence(self, scene: Scene, attributions: np.ndarray) -> np.ndarray:
        """The attributions summed over colour channels, positive part; or why there is none."""
        evidence = np.maximum(attributions.sum(axis=-1), 0.0)
        what = f"{self.title}: no map for {scene.target.describe()}"
        if not np.isfinite(evidence).all():
            raise EmptyHeatmapError(f"{what}: the gradients are not finite (NaN or infinity); the model overflows "
                                    "on this image or along the path from the baseline.")
        if not (scene.pixels != scene.baseline).any():
            raise EmptyHeatmapError(f"{what}: the image is the same as its baseline, so nothing changes along the "
                                    "path; choose another baseline.")
        if not evidence.max() > 0:
            raise EmptyHeatmapError(f"{what}: no pixel adds to the target's value over the baseline (every "
                                    "attribution is zero or negative): the image holds less evidence for it than "
                                    "the baseline does; try another baseline or target.")
        return evidence


def integrated_gradients(loaded: LoadedModel, image: Image.Image, target: Target | None = None, steps: int = 32,
                         baseline: Baseline = "black", fit: Fit = "stretch") -> tuple[np.ndarray, Scene]:
    """The raw attributions (H, W, C) of ``target`` (default: the top class, pinned) and the scene
    they explain (its probe, pixels, baseline and target: ``scene.probe.values`` gives f)."""
    method = IntegratedGradients(steps)
    target = default_target(loaded, image, default_layer(loaded.model).path, fit) if target is None else target
    check_target(loaded, target)
    pixels = pixel_batch(image, loaded.info, fit, dtype=np.float32)
    probe = probe_for(loaded, None, target)
    target = pinned([target], probe, pixels)[0]
    scene = Scene(probe, pixels, baseline_pixels(image, loaded.info, fit, baseline), target, None)
    return method.attributions(scene), scene
