"""Sobol total-order indices of a function of d inputs in [0, 1], from quasi-Monte Carlo designs
(Jansen's estimator, as CRAFT and Xplique use it).

The total index of input i is the share of the output's variance that goes when everything but
input i is held fixed: its own effect and every interaction it takes part in. For an additive
function f(x) = Σ a_j x_j of independent uniform inputs it is a_i² / Σ a_j²; for f = x₁ x₂ it is 4/7
for each.

A design is two QMC matrices A and B (n × d, one scrambled Sobol sequence of 2d dimensions, seeded)
and, for each input i, A with its column i taken from B: n (d + 2) points in all. Jansen's estimator
of the total index is Σ (f(A) − f(A_B^i))² / (2 n Var f(A)).
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
from scipy.stats import qmc


def replicated_design(dimensions: int, designs: int, seed: int = 0) -> np.ndarray:
    """The points to evaluate, (designs × (dimensions + 2), dimensions) in [0, 1]: A, then B, then for
    each input i the rows of A with column i from B (input by input)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a count that is no power of two balances less well
        both = qmc.Sobol(2 * dimensions, scramble=True, seed=seed).random(designs)
    a, b = both[:, :dimensions], both[:, dimensions:]
    replicated = np.repeat(a[None], dimensions, axis=0)
    columns = np.arange(dimensions)
    replicated[columns, :, columns] = b.T
    return np.concatenate([a, b, replicated.reshape(-1, dimensions)]).astype(np.float32)


def jansen_total_indices(outputs: np.ndarray, designs: int, dimensions: int) -> np.ndarray:
    """Total indices (dimensions,) from the outputs at :func:`replicated_design`'s points, in its order;
    all 0 when the output does not vary (nothing to attribute)."""
    outputs = np.asarray(outputs, np.float64)
    a = outputs[:designs]
    replicated = outputs[2 * designs:].reshape(dimensions, designs)
    variance = a.var(ddof=1)
    if not variance > 1e-12 * max(1.0, float(np.abs(a).max()) ** 2):
        return np.zeros(dimensions)
    return ((a[None] - replicated) ** 2).sum(axis=1) / (2 * designs * variance)


def total_indices(function: Callable[[np.ndarray], np.ndarray], dimensions: int, designs: int = 32,
                  seed: int = 0) -> np.ndarray:
    """Total indices of ``function`` (points (n, dimensions) in [0, 1] → n outputs), (dimensions,)."""
    return jansen_total_indices(function(replicated_design(dimensions, designs, seed)), designs, dimensions)
