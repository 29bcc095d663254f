"""RISE (Petsiuk et al. 2018), black-box: the image is shown through N random masks, and each pixel's
value is the score the model gives the masked images, weighted by how much of that pixel each mask kept,

    map = Σᵢ score(x ⊙ mᵢ) · mᵢ / (N · p),

where p is the chance a mask keeps a cell. Each mask is a grid of s × s cells, each kept with
probability p, upsampled bilinearly so a cell covers ⌈H / s⌉ × ⌈W / s⌉ pixels over one cell more
than the image, and cropped at a random shift within one cell (the paper's smooth, shifted masks).
"x ⊙ m" keeps the image where m is 1 and shows the baseline (what "removed" means: the image
blurred, its mean colour, or black; see ``baselines``) where m is 0: the paper's black is
``baseline="black"``. Only the model's outputs are read, never a gradient or a layer. The masks are
seeded (the same image gives the same map) and built, applied and scored in batches inside one
traced pass. Cost: one forward pass per mask (500 by default: about 10 s for MobileNet on 2 CPU
cores, a fraction of a second for LeNet); fewer masks give a noisier map.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar, Sequence

import numpy as np
import tensorflow as tf

from convvis_core.cam.base import BATCH_SIZE, EmptyHeatmapError, HeatmapMethod, Probe, Scene, or_reason, padded_batches
from convvis_core.errors import ConvVisError
from convvis_core.parallel import in_slices


def upsampled_masks(grids: tf.Tensor, shifts: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """Smooth masks (K, H, W) in 0..1 from coarse 0/1 ``grids`` (K, s, s): each bilinearly upsampled to
    s + 1 cells of ⌈H / s⌉ × ⌈W / s⌉ pixels a side, then cropped to ``size`` (H, W) from its ``shifts``
    (K, 2: rows, columns)."""
    size = tf.convert_to_tensor(size, tf.int32)
    cells = tf.shape(grids)[1:3]
    cell = (size + cells - 1) // cells
    upsampled = tf.image.resize(tf.cast(grids, tf.float32)[..., None], (cells + 1) * cell, "bilinear")[..., 0]
    rows = shifts[:, :1] + tf.range(size[0])[None, :]
    columns = shifts[:, 1:] + tf.range(size[1])[None, :]
    return tf.gather(tf.gather(upsampled, rows, axis=1, batch_dims=1), columns, axis=2, batch_dims=1)


def _weighted_masks(probe: Probe, pixels: tf.Tensor, index: tf.Tensor, extra: tf.Tensor, baseline: tf.Tensor,
                    grids: tf.Tensor, shifts: tf.Tensor, counted: tf.Tensor) -> tf.Tensor:
    """Σ over a batch of masks of score(image kept where the mask is) × mask, (H, W); ``counted`` (K,) is 0
    for padding rows."""
    masks = upsampled_masks(grids, shifts, tf.shape(pixels)[1:3])
    kept = baseline + (pixels - baseline) * masks[..., None]
    scores = probe.score(in_slices(probe.target_model, probe.preprocess(kept))[0], index, extra)
    return tf.tensordot(scores * counted, masks, axes=1)


class RISE(HeatmapMethod):
    name = "rise"
    title = "RISE"
    uses_layer: ClassVar[bool] = False
    settings = ("masks",)

    def __init__(self, masks: int = 500, grid: int = 7, keep: float = 0.5, seed: int = 0,
                 batch_size: int = BATCH_SIZE):
        """``masks``: how many random masks (one forward pass each); ``grid``: cells per side of a mask
        before upsampling; ``keep``: the chance a cell is kept (p)."""
        if isinstance(masks, bool) or not isinstance(masks, (int, np.integer)) or masks < 1:
            raise ConvVisError(f"RISE needs at least 1 random mask; got {masks!r}. 500 give a usable map, "
                               "4,000 (the paper's) a smooth one; each costs one forward pass.")
        if not 0 < keep < 1:
            raise ConvVisError(f"RISE's chance of keeping a cell must lie strictly between 0 and 1; got {keep!r}.")
        self.masks, self.grid, self.keep, self.seed, self.batch_size = int(masks), grid, keep, seed, batch_size

    def coarse(self, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The seeded 0/1 grids (N, s, s) and shifts (N, 2) of the masks for an image of ``size``."""
        if self.grid > min(size):
            raise ConvVisError(f"RISE's grid of {self.grid} cells per side is finer than the image as the model "
                               f"sees it ({size[0]}×{size[1]} px); choose at most {min(size)} cells.")
        rng = np.random.default_rng(self.seed)
        grids = (rng.random((self.masks, self.grid, self.grid)) < self.keep).astype(np.float32)
        cells = np.array([-(-side // self.grid) for side in size])
        return grids, (rng.random((self.masks, 2)) * cells).astype(np.int32)

    def mask_pictures(self, size: tuple[int, int]) -> np.ndarray:
        """Every mask as applied to an image of ``size`` (height, width): (N, H, W) in 0..1."""
        grids, shifts = self.coarse(size)
        return upsampled_masks(tf.constant(grids), tf.constant(shifts), size).numpy()

    def saliency(self, scene: Scene) -> np.ndarray:
        """Σᵢ score(x ⊙ mᵢ) · mᵢ / (N · p), (H, W)."""
        size = scene.pixels.shape[1:3]
        grids, shifts = self.coarse(size)
        baseline = tf.constant(scene.baseline, tf.float32)
        total = np.zeros(size, np.float64)
        for (batch, real), (shift, _) in zip(padded_batches(grids, self.batch_size),
                                             padded_batches(shifts, self.batch_size)):
            counted = (np.arange(len(batch)) < real).astype(np.float32)
            total += scene.probe.call(_weighted_masks, scene.pixels, scene.target, baseline, tf.constant(batch),
                                      tf.constant(shift), tf.constant(counted)).numpy()
        return total / (self.masks * self.keep)

    def raw_maps(self, scenes: Sequence[Scene]) -> list[np.ndarray | EmptyHeatmapError]:
        """Image by image: each image's masks already fill passes of ``batch_size``."""
        return [or_reason(partial(self.checked, scene)) for scene in scenes]

    def checked(self, scene: Scene) -> np.ndarray:
        """:meth:`saliency`, or why there is no map (a flat one is refused later, with the others)."""
        values = self.saliency(scene)
        if not np.isfinite(values).all():
            raise EmptyHeatmapError(f"{self.title}: no map for {scene.target.describe()}: the scores are not finite "
                                    "(NaN or infinity); the model overflows on the masked copies of this image.")
        return values
