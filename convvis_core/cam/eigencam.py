"""EigenCAM (Muhammad & Yeasin 2020): the layer's activations projected onto their first principal
component. No gradient and no score: the map shows what dominates the layer, whatever the class, so
EigenCAM ignores the target (it is class-agnostic: every class gets the same map).

As pytorch-grad-cam's ``get_2d_projection``: the (h·w, C) activations are centred per channel, the
projection on the first right singular vector is the map, and ReLU keeps its positive part. A
singular vector's sign is arbitrary; it is chosen here so that the projection correlates positively
with the channel-summed activations, so the map is high where the layer is most active.
"""

from __future__ import annotations

import numpy as np
from convvis_core.cam.base import CamMethod, Capture, checked_map


def first_component_projection(activations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The centred (h, w, C) activations projected onto their first principal component, (h, w),
    signed to correlate positively with the summed activations; and that component, (C,)."""
    height, width, channels = activations.shape
    flat = np.nan_to_num(activations.reshape(height * width, channels).astype(np.float64))
    centred = flat - flat.mean(axis=0)
    # The first right singular vector, from the smaller Gram matrix's top eigenvector (a 49×49 or
    # 64×64 symmetric eigenproblem, not an SVD of the whole 49×1024 or 12544×64 matrix).
    if len(centred) <= channels:
        eigenvalues, vectors = np.linalg.eigh(centred @ centred.T)
        spread = np.sqrt(max(eigenvalues[-1], 0.0))
        component = centred.T @ vectors[:, -1] / spread if spread > 0 else np.zeros(channels)
    else:
        component = np.linalg.eigh(centred.T @ centred)[1][:, -1]
    projection = centred @ component
    if projection @ flat.sum(axis=1) < 0:  # the projection has mean 0: this is the sign of the correlation
        projection, component = -projection, -component
    return projection.reshape(height, width), component


class EigenCAM(CamMethod):
    """Class-agnostic: the target is recorded with the map but does not change it."""

    name = "eigencam"
    title = "EigenCAM"
    needs_gradients = False

    def weights(self, capture: Capture) -> np.ndarray:
        return first_component_projection(capture.activations)[1]

    def map_of(self, capture: Capture) -> np.ndarray:
        projection, component = first_component_projection(capture.activations)
        return checked_map(self, capture, component, projection)

    def why_empty(self, capture: Capture, weights: np.ndarray) -> str:
        activations = capture.activations
        if not np.isfinite(activations).all():
            return "the activations are not finite (NaN or infinity); the model overflows on this image"
        if not activations.any():
            return "the layer's activations are all zero on this image; try an earlier layer"
        height, width = activations.shape[:2]
        return (f"the activations are the same at every position of the {height}×{width} map, so they have no "
                "principal direction in space; choose a layer with a larger map")
