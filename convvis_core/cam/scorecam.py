"""Score-CAM (Wang et al. 2020), gradient-free: each channel's map, upsampled and min-max
normalized to 0..1, masks the input, and the channel weighs as much as the target's score (its
probability) rises over the blank baseline (the input times 0).

Masks are built and scored in batches inside one traced pass. A flat channel gives a blank mask,
scores exactly the baseline and so weighs 0: it is not run at all (in MobileNet's last layer, many
ReLU6 channels are flat on any one image).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from convvis_core.cam.base import CamMethod, Capture, Probe
from convvis_core.parallel import in_slices


def _masked_scores(probe: Probe, inputs: tf.Tensor, maps: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """The target's score on the input masked by each of ``maps`` (K, h, w): one value per map."""
    masks = tf.image.resize(maps[..., None], tf.shape(inputs)[1:3], "bilinear")
    low = tf.reduce_min(masks, axis=[1, 2, 3], keepdims=True)
    high = tf.reduce_max(masks, axis=[1, 2, 3], keepdims=True)
    masks = tf.math.divide_no_nan(masks - low, high - low)
    return probe.kind.score(in_slices(probe.target_model, inputs * masks)[0], index)


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
        inputs, index = tf.constant(capture.inputs, tf.float32), tf.constant(capture.target.index, tf.int32)
        score = capture.probe.traced(_masked_scores)
        scores = np.concatenate([score(inputs, tf.constant(candidates[start:start + self.batch_size]), index).numpy()
                                 for start in range(0, len(candidates), self.batch_size)])
        weights = np.zeros(maps.shape[-1], np.float32)
        weights[varying] = scores[1:] - scores[0]
        return weights
