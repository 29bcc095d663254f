"""Score-CAM (Wang et al. 2020), gradient-free: each channel's map, upsampled and min-max
normalized to 0..1, keeps that much of the picture (the rest fades to the pixel-space baseline that
deletion and insertion use), and the channel weighs as much as the target's score rises over the
baseline itself. Masking pixels, not the preprocessed input, keeps the map the same wherever the
model keeps its preprocessing (0 after preprocessing is grey, black or a colour cast by mode).

Masks are built and scored in batches inside one traced pass. A flat channel gives a blank mask,
scores exactly the baseline and so weighs 0: it is not run at all (in MobileNet's last layer, many
ReLU6 channels are flat on any one image).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from convvis_core.cam.base import CamMethod, Capture, Probe
from convvis_core.parallel import in_slices


def _masked_scores(probe: Probe, pixels: tf.Tensor, index: tf.Tensor, extra: tf.Tensor, baseline: tf.Tensor,
                   maps: tf.Tensor) -> tf.Tensor:
    """The target's score on the image kept where each of ``maps`` (K, h, w) is high, one value per map."""
    masks = tf.image.resize(maps[..., None], tf.shape(pixels)[1:3], "bilinear")
    low = tf.reduce_min(masks, axis=[1, 2, 3], keepdims=True)
    high = tf.reduce_max(masks, axis=[1, 2, 3], keepdims=True)
    masks = tf.math.divide_no_nan(masks - low, high - low)
    blended = probe.preprocess(baseline + (pixels - baseline) * masks)
    return probe.score(in_slices(probe.target_model, blended)[0], index, extra)


class ScoreCAM(CamMethod):
    name = "scorecam"
    title = "Score-CAM"
    needs_gradients = False

    def __init__(self, batch_size: int = 32):
        self.batch_size = batch_size

    def weights(self, capture: Capture) -> np.ndarray:
        maps = capture.activations
        varying = np.flatnonzero(maps.max(axis=(0, 1)) > maps.min(axis=(0, 1)))
        blank = np.zeros(maps.shape[:2] + (1,), np.float32)  # the baseline, scored with the first batch
        candidates = np.moveaxis(np.concatenate([blank, maps[..., varying]], axis=-1), -1, 0)
        baseline = tf.constant(capture.baseline, tf.float32)
        scores = np.concatenate([
            capture.probe.call(_masked_scores, capture.pixels, capture.target, baseline,
                               tf.constant(candidates[start:start + self.batch_size])).numpy()
            for start in range(0, len(candidates), self.batch_size)])
        weights = np.zeros(maps.shape[-1], np.float32)
        weights[varying] = scores[1:] - scores[0]
        return weights
