"""Non-negative matrix factorization of a layer's activations, as CRAFT and neuron groups use it.

Rows are what is described (crops, or one image's map positions), columns the layer's channels:
A ≈ U W with U ≥ 0 (each row's coefficients) and W ≥ 0 (the parts: one direction in channel space
each). W's rows are scaled to unit length (U takes the scale), so coefficients of different parts
compare, and a part's row is the direction a feature visualization or a CAV can follow.

NMF needs A ≥ 0: a layer after a ReLU is. Where a layer has negative values they are clipped at 0
and :attr:`Factorization.negative_share` says how much of the activations that dropped.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import NMF, non_negative_factorization
from sklearn.exceptions import ConvergenceWarning

from convvis_core.featureviz.objectives import Direction

MAX_ITERATIONS = 500


@dataclass(frozen=True)
class Factorization:
    """A ≈ coefficients @ bank, with every row of ``bank`` of unit length."""

    coefficients: np.ndarray  # U, (rows, k) ≥ 0
    bank: np.ndarray  # W, (k, channels) ≥ 0, unit rows
    error: float  # ‖A − U W‖ / ‖A‖ (Frobenius) of the clipped activations: 0 is exact
    negative_share: float  # share of the activations' absolute mass that was negative and clipped at 0


class LayerParts:
    """What CRAFT's concepts and neuron groups share: parts of a layer (its path, ``layer``), each a unit
    direction in the layer's channel space (a row of ``bank``, (k, C))."""

    layer: str
    bank: np.ndarray

    def vector(self, part: int) -> np.ndarray:
        """The part's unit direction (C,): a CAV-like vector (over the flattened map, the same direction at
        every position: ``np.tile(vector, h * w)``)."""
        return self.bank[part].copy()

    def direction(self, part: int) -> Direction:
        """The feature-visualization objective along the part's direction at the layer."""
        return Direction(self.layer, tuple(float(value) for value in self.bank[part]))

    def strongest_channels(self, part: int, count: int = 5) -> list[tuple[int, float]]:
        """The channels the part's direction weighs most: (channel, weight), largest first."""
        return [(int(channel), float(self.bank[part, channel]))
                for channel in np.argsort(-self.bank[part], kind="stable")[:count]]


def negative_share(activations: np.ndarray) -> float:
    """The share of the activations' absolute mass below 0 (what NMF cannot see)."""
    total = float(np.abs(activations).sum())
    return float(np.maximum(-activations, 0.0).sum() / total) if total > 0 else 0.0


def relative_error(activations: np.ndarray, coefficients: np.ndarray, bank: np.ndarray) -> float:
    """‖A − U W‖ / ‖A‖ (Frobenius): the share of the activations the parts leave out (0 for all-zero A)."""
    norm = float(np.linalg.norm(activations))
    return float(np.linalg.norm(activations - coefficients @ bank) / norm) if norm > 0 else 0.0


def factorize(activations: np.ndarray, parts: int, seed: int = 0) -> Factorization:
    """``activations`` (rows, channels), clipped at 0, factorized into ``parts`` non-negative parts
    (scikit-learn's NMF, NNDSVDa start, seeded: the same input gives the same parts)."""
    activations = np.asarray(activations, np.float64)
    clipped = np.maximum(activations, 0.0)
    reducer = NMF(n_components=parts, init="nndsvda", random_state=seed, max_iter=MAX_ITERATIONS, tol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the error it reached is reported instead
        coefficients = reducer.fit_transform(clipped)
    coefficients, bank = unit_rows(coefficients, reducer.components_)
    return Factorization(coefficients.astype(np.float32), bank.astype(np.float32),
                         relative_error(clipped, coefficients, bank), negative_share(activations))


def unit_rows(coefficients: np.ndarray, bank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same product with every row of ``bank`` of unit length (an all-zero row stays zero)."""
    norms = np.linalg.norm(bank, axis=1)
    scale = np.where(norms > 0, norms, 1.0)
    return coefficients * scale, bank / scale[:, None]


def project(activations: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """Each row of ``activations`` (..., channels), clipped at 0, as non-negative coefficients on the
    fixed ``bank`` (k, channels): the least-squares fit U ≥ 0 of A ≈ U W (NMF's transform), (..., k)."""
    shape = activations.shape[:-1]
    rows = np.maximum(np.asarray(activations, np.float64).reshape(-1, activations.shape[-1]), 0.0)
    bank = np.asarray(bank, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        coefficients, _, _ = non_negative_factorization(rows, H=bank, n_components=len(bank), init="custom",
                                                        update_H=False, max_iter=MAX_ITERATIONS, tol=1e-6)
    return coefficients.astype(np.float32).reshape(*shape, len(bank))
