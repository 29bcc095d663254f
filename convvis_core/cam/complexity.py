"""Complexity (Bhatt et al. 2020): how spread out a map is, as the entropy of its normalized magnitude.

p_i = |m_i| / Σ_j |m_j| is the map read as a distribution over its n pixels; −Σ p_i log p_i is 0 when
all of it lies on one pixel and log n when it is uniform. A lower value is a map that is easier to
read: its evidence lies on few pixels.
"""

from __future__ import annotations

import numpy as np

from convvis_core.errors import ConvVisError


def complexity(values: np.ndarray) -> float:
    """The entropy (natural log) of ``|values| / Σ |values|``: 0 for one pixel, log n for a uniform map."""
    magnitude = np.abs(np.asarray(values, np.float64)).ravel()
    total = magnitude.sum()
    if not (np.isfinite(total) and total > 0):
        raise ConvVisError("Complexity is the entropy of a map's magnitude: the map is all zero or not finite, so it "
                           "has none.")
    shares = magnitude[magnitude > 0] / total
    return float(-(shares * np.log(shares)).sum())
