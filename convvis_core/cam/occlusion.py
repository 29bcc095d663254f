"""Occlusion (Zeiler & Fergus 2014), black-box: a square patch of the baseline (what "removed" means:
the image blurred, its mean colour, or black; see ``baselines``) slides over the image with a stride,
and each pixel's value is how much the target's score drops while it is covered, averaged over every
patch that covers it:

    map(p) = mean over windows w ∋ p of [score(x) − score(x with w replaced by the baseline)].

Only the model's outputs are read (the score that deletion and insertion follow: a class's
probability, ...), never a gradient or a layer. The windows start every ``stride`` pixels and one
more is added flush with the far edge, so every pixel is covered. Cost: one forward pass per window,
((H − patch) / stride + 1)² of them (169 with the defaults: a patch of a seventh of the image's side,
a stride of half the patch), scored in batches inside one traced pass, masks built there too.

The map shown is the positive part: where covering the image lowers the score (the evidence for the target).
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar, Sequence

import numpy as np
import tensorflow as tf

from convvis_core.cam.base import BATCH_SIZE, EmptyHeatmapError, HeatmapMethod, Probe, Scene, or_reason, padded_batches
from convvis_core.errors import ConvVisError
from convvis_core.parallel import in_slices

PATCH_SHARE = 7  # the default patch is the image's shorter side divided by this (32 px of 224)


def checked_size(value: int | None, what: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
        raise ConvVisError(f"Occlusion's {what} must be a whole number of pixels, at least 1; got {value!r}.")
    return None if value is None else int(value)


def default_patch(size: tuple[int, int]) -> int:
    """The default patch side for an image of ``size`` (height, width): a seventh of the shorter side."""
    return max(1, round(min(size) / PATCH_SHARE))


def window_starts(length: int, patch: int, stride: int) -> np.ndarray:
    """Where windows of ``patch`` pixels start along a side of ``length``: every ``stride``, and flush with the end."""
    starts = list(range(0, length - patch + 1, stride))
    return np.array(starts + ([length - patch] if starts[-1] != length - patch else []), np.int32)


def _occluded_scores(probe: Probe, pixels: tf.Tensor, index: tf.Tensor, extra: tf.Tensor, baseline: tf.Tensor,
                     corners: tf.Tensor, patch: tf.Tensor) -> tf.Tensor:
    """The target's score on the image with a ``patch``-sided square at each of ``corners`` (K, 2: top,
    left) replaced by the baseline, one value per corner (a corner outside the image: nothing replaced)."""
    rows = tf.range(tf.shape(pixels)[1])[None, :]
    columns = tf.range(tf.shape(pixels)[2])[None, :]
    in_rows = (rows >= corners[:, :1]) & (rows < corners[:, :1] + patch)  # (K, H)
    in_columns = (columns >= corners[:, 1:]) & (columns < corners[:, 1:] + patch)  # (K, W)
    covered = tf.cast(in_rows[:, :, None] & in_columns[:, None, :], pixels.dtype)[..., None]
    occluded = pixels + (baseline - pixels) * covered
    return probe.score(in_slices(probe.target_model, probe.preprocess(occluded))[0], index, extra)


class Occlusion(HeatmapMethod):
    name = "occlusion"
    title = "Occlusion"
    uses_layer: ClassVar[bool] = False
    settings = ("patch", "stride")

    def __init__(self, patch: int | None = None, stride: int | None = None, batch_size: int = BATCH_SIZE):
        """``patch``: the side of the square in pixels (default: a seventh of the image's shorter side);
        ``stride``: pixels between windows (default: half the patch)."""
        self.patch, self.stride = checked_size(patch, "patch"), checked_size(stride, "stride")
        self.batch_size = batch_size

    def sizes(self, size: tuple[int, int]) -> tuple[int, int]:
        """The patch and stride used on an image of ``size`` (height, width); a patch larger than the image
        is refused."""
        patch = self.patch or default_patch(size)
        if patch > min(size):
            raise ConvVisError(f"Occlusion's patch of {patch} px is larger than the image as the model sees it "
                               f"({size[0]}×{size[1]} px): choose a patch of at most {min(size)} px.")
        return patch, self.stride or max(1, patch // 2)

    def corners(self, size: tuple[int, int]) -> np.ndarray:
        """Every window's top-left corner, (K, 2)."""
        patch, stride = self.sizes(size)
        tops, lefts = (window_starts(length, patch, stride) for length in size)
        return np.stack(np.meshgrid(tops, lefts, indexing="ij"), axis=-1).reshape(-1, 2)

    def drops(self, scene: Scene) -> tuple[np.ndarray, float]:
        """Each pixel's mean score drop over the windows covering it, (H, W), signed; and the intact score."""
        size = scene.pixels.shape[1:3]
        patch, _ = self.sizes(size)
        corners = self.corners(size)
        rows = np.concatenate([np.array([size], np.int32), corners])  # first: a window off the image, the intact score
        baseline = tf.constant(scene.baseline, tf.float32)
        scores = np.concatenate([
            scene.probe.call(_occluded_scores, scene.pixels, scene.target, baseline, tf.constant(batch),
                             tf.constant(patch)).numpy()[:real]
            for batch, real in padded_batches(rows, self.batch_size)]).astype(np.float64)
        total, covered = np.zeros(size, np.float64), np.zeros(size, np.float64)
        for (top, left), drop in zip(corners, scores[0] - scores[1:]):
            total[top:top + patch, left:left + patch] += drop
            covered[top:top + patch, left:left + patch] += 1
        return total / covered, float(scores[0])

    def raw_maps(self, scenes: Sequence[Scene]) -> list[np.ndarray | EmptyHeatmapError]:
        """Image by image: each image's windows already fill passes of ``batch_size``."""
        return [or_reason(partial(self.evidence, scene)) for scene in scenes]

    def evidence(self, scene: Scene) -> np.ndarray:
        """The positive part of the score drops; or why there is none."""
        drops, intact = self.drops(scene)
        what = f"{self.title}: no map for {scene.target.describe()}"
        if not np.isfinite(drops).all():
            raise EmptyHeatmapError(f"{what}: the scores are not finite (NaN or infinity); the model overflows on "
                                    "this image or on its occluded copies.")
        if not drops.max() > 0:
            raise EmptyHeatmapError(f"{what}: covering no patch lowers the score ({intact:.4g}: a probability "
                                    "near 1 may be saturated, or the baseline holds as much evidence as any patch); "
                                    "try the black baseline, a larger patch or another target.")
        return np.maximum(drops, 0.0)
