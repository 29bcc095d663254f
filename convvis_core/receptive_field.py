"""Which input pixels each position of a layer's maps can see: the part of an image to crop around a
filter's maximum (Top k's dataset examples). Stored with the Top-k indexes, per model and layer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from convvis_core.batches import layer_maps, preprocessed
from convvis_core.cache import ResultCache, cache_key, default_cache, model_fingerprint
from convvis_core.layers import find_layer
from convvis_core.models.base import LoadedModel

CACHE_NAMESPACE = "receptive-field-v1"


@dataclass(frozen=True)
class ReceptiveField:
    """The input pixels each map position can see: per map row the first and last input row
    (inclusive), per map column the first and last input column."""

    rows: np.ndarray  # (map height, 2)
    cols: np.ndarray  # (map width, 2)

    def box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) in input pixels, right and bottom exclusive: PIL's crop box."""
        return (int(self.cols[col, 0]), int(self.rows[row, 0]), int(self.cols[col, 1]) + 1,
                int(self.rows[row, 1]) + 1)


def _extent(reached: np.ndarray) -> np.ndarray:
    """(positions, pixels) booleans → (positions, 2) first and last True pixel (all of them if none)."""
    any_reached = reached.any(axis=1)
    first = np.where(any_reached, reached.argmax(axis=1), 0)
    last = np.where(any_reached, reached.shape[1] - 1 - reached[:, ::-1].argmax(axis=1), reached.shape[1] - 1)
    return np.stack([first, last], axis=1)


def receptive_field(loaded: LoadedModel, path: str, chunk: int = 16,
                    cache: ResultCache | None = None) -> ReceptiveField:
    """Measured, not derived from the architecture: the input pixels on which the gradient of one map
    position (summed over channels) is non-zero, for a noise image. That works through any padding,
    stride, dilation, pooling or branch; position i of a batch of copies probes map row and column i.
    Cached per model and layer."""
    find_layer(loaded.model, path)
    info = loaded.info
    cache = cache or default_cache(CACHE_NAMESPACE)
    key = cache_key("receptive-field", model_fingerprint(loaded.model), path, info.input_size, info.channels,
                    info.preprocessing)
    stored = cache.get(key)
    if stored is not None:
        return ReceptiveField(stored["rows"], stored["cols"])

    def channel_sums(inputs: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(layer_maps(loaded.model, path, inputs), axis=-1)

    height, width = info.input_size
    noise = np.random.default_rng(0).integers(0, 256, (1, height, width, info.channels), dtype=np.uint8)
    noise = preprocessed(noise, info.preprocessing)
    map_height, map_width = channel_sums(noise).shape[1:]
    positions = max(map_height, map_width)
    rows_probed = np.minimum(np.arange(positions), map_height - 1)
    cols_probed = np.minimum(np.arange(positions), map_width - 1)
    reach_rows = np.zeros((positions, height), bool)
    reach_cols = np.zeros((positions, width), bool)
    for start in range(0, positions, chunk):
        probe = np.arange(start, min(start + chunk, positions))
        inputs = tf.repeat(noise, len(probe), axis=0)
        mask = np.zeros((len(probe), map_height, map_width), np.float32)
        mask[np.arange(len(probe)), rows_probed[probe], cols_probed[probe]] = 1.0
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            total = tf.reduce_sum(channel_sums(inputs) * mask)
        reached = np.abs(tape.gradient(total, inputs).numpy()).sum(axis=-1) > 0  # (probes, height, width)
        reach_rows[probe] = reached.any(axis=2)
        reach_cols[probe] = reached.any(axis=1)
    field = ReceptiveField(_extent(reach_rows[:map_height]), _extent(reach_cols[:map_width]))
    cache.put(key, {"rows": field.rows, "cols": field.cols})
    return field
