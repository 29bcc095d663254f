"""Ablation-CAM (Desai & Ramaswamy 2020), gradient-free: each channel weighs as much as the target's
value drops when that channel of the layer is set to zero,

    w_k = (y − y_k) / y,

y the target's value (a class's logit, ...) on the image and y_k the value with channel k of the
layer's activations zeroed. Dividing by y only scales every weight alike, which the map's
normalization undoes, as long as y > 0; for y < 0 the paper's quotient would flip every weight, so
the drop is divided by |y| (for y = 0, by 1): a channel whose removal lowers the value always weighs
more. Same maps as the paper (and pytorch-grad-cam) whenever y > 0.

The ablations run in batches inside one traced pass from the layer to the target (the rest of the
network, :mod:`convvis_core.cam.replaced`, with the image still fed for skip connections past the
layer), not through the whole network as Score-CAM's masks do. A channel that is zero everywhere
changes nothing when zeroed: its weight is 0 and it is not run at all.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from convvis_core.cam.base import CamMethod, Capture, Probe, as_float32
from convvis_core.cam.replaced import producer, run_replaced
from convvis_core.errors import ConvVisError
from convvis_core.parallel import cores

NO_CHANNEL = -1  # a row of the batch with nothing ablated: the value y itself (and the padding)


def _ablated_values(probe: Probe, pixels: tf.Tensor, index: tf.Tensor, extra: tf.Tensor, activations: tf.Tensor,
                    channels: tf.Tensor) -> tf.Tensor:
    """The target's value with each of ``channels`` (K,) zeroed in the layer's ``activations``
    (1, h, w, C) (``NO_CHANNEL``: none), one value per channel."""
    tensor = probe.layer_model.outputs[0]  # the layer's symbolic output in the model's flat graph
    keep = 1.0 - tf.one_hot(channels, tf.shape(activations)[-1], dtype=activations.dtype)  # (K, C)
    keep = tf.reshape(keep, tf.concat([tf.shape(keep)[:1], tf.ones([activations.shape.rank - 2], tf.int32),
                                       tf.shape(keep)[1:]], axis=0))
    ablated = activations * keep
    parts = min(cores(), channels.shape[0] or cores())  # independent branches, run side by side
    count = tf.shape(channels)[0]  # (the size may be dynamic: several batch sizes on one probe)
    sizes = count // parts + tf.cast(tf.range(parts) < count % parts, tf.int32)
    outputs = run_replaced(probe.target_model, tensor, probe.preprocess(pixels), tf.split(ablated, sizes, num=parts))
    return tf.concat([probe.kind.value(as_float32(output), index, extra) for output in outputs], axis=0)


class AblationCAM(CamMethod):
    name = "ablationcam"
    title = "Ablation-CAM"
    needs_gradients = False

    def __init__(self, batch_size: int = 32):
        self.batch_size = batch_size

    def values(self, capture: Capture, channels: np.ndarray) -> np.ndarray:
        """The target's value with each of ``channels`` ablated (``NO_CHANNEL``: none), in batches of a
        fixed size (the last one padded), so that one trace serves every batch."""
        activations = tf.constant(capture.activations[None], tf.float32)
        batches = []
        for start in range(0, len(channels), self.batch_size):
            batch = np.full(self.batch_size, NO_CHANNEL, np.int32)
            part = channels[start:start + self.batch_size]
            batch[:len(part)] = part
            values = capture.probe.call(_ablated_values, capture.pixels, capture.target, activations,
                                        tf.constant(batch)).numpy()
            batches.append(values[:len(part)])
        return np.concatenate(batches)

    def weights(self, capture: Capture) -> np.ndarray:
        activations = capture.activations
        try:
            producer(capture.probe.target_model, capture.probe.layer_model.outputs[0])
        except ConvVisError:  # the target comes before the layer: no channel changes it (``why_empty`` says so)
            return np.zeros(activations.shape[-1], np.float32)
        live = np.flatnonzero(activations.reshape(-1, activations.shape[-1]).any(axis=0))
        values = self.values(capture, np.concatenate([[NO_CHANNEL], live]).astype(np.int32))
        value = float(values[0])
        weights = np.zeros(activations.shape[-1], np.float32)
        weights[live] = (value - values[1:]) / (abs(value) if value != 0 else 1.0)
        return weights

    def why_empty(self, capture: Capture, weights: np.ndarray) -> str:
        if np.isfinite(capture.activations).all() and capture.activations.any() and not weights.any():
            return ("zeroing any channel of this layer leaves the target's value unchanged: the target does not "
                    "depend on the layer (it comes after the target, or the path is saturated); try another layer "
                    "or target")
        return super().why_empty(capture, weights)
