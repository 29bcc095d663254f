"""Linear CKA (Kornblith et al., 2019) and its streamed minibatch estimator (Nguyen et al., 2021).

Full batch: ``linear_cka(X, Y)`` = ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) on column-centred activations, each row
an example. Streamed: each minibatch gives Gram matrices K = XXᵀ (b × b, whatever the layer's width);
the unbiased HSIC of every pair of layers is summed over minibatches, and CKA is
ΣHSIC₁(K, L) / √(ΣHSIC₁(K, K) ΣHSIC₁(L, L)). Only sums per pair of layers are kept, so memory does not
grow with the number of images, and one pass gives any layer × layer matrix.
"""

from __future__ import annotations

import numpy as np

MIN_BATCH = 4  # the unbiased HSIC divides by n (n − 3): smaller minibatches are skipped


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two activation matrices (n × p and n × q, the same n examples), full batch."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    y = np.asarray(y, np.float64).reshape(len(y), -1)
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    cross = np.linalg.norm(y.T @ x) ** 2
    return float(cross / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def unbiased_hsic(grams_a: np.ndarray, grams_b: np.ndarray) -> np.ndarray:
    """HSIC₁ (Song et al., 2012) of every pair: (A, n, n) and (B, n, n) Gram stacks → (A, B)."""
    grams_a = np.asarray(grams_a, np.float64)
    grams_b = np.asarray(grams_b, np.float64)
    n = grams_a.shape[-1]
    diagonal = np.eye(n, dtype=bool)
    k = np.where(diagonal, 0.0, grams_a)
    l = np.where(diagonal, 0.0, grams_b)
    trace = np.einsum("aij,bij->ab", k, l)
    sums = np.outer(k.sum(axis=(1, 2)), l.sum(axis=(1, 2)))
    rows = k.sum(axis=2) @ l.sum(axis=2).T
    return (trace + sums / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * rows) / (n * (n - 3))


def gram(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    return x @ x.T


class StreamedCKA:
    """Sums of the unbiased HSIC over minibatches, for every pair of A's and B's layers at once."""

    def __init__(self, layers_a: int, layers_b: int):
        self.cross = np.zeros((layers_a, layers_b))
        self.self_a = np.zeros(layers_a)
        self.self_b = np.zeros(layers_b)
        self.batches = 0

    def add(self, grams_a: np.ndarray, grams_b: np.ndarray) -> None:
        """One minibatch: Gram matrices of A's layers (A, n, n) and of B's (B, n, n), the same n images."""
        if grams_a.shape[-1] < MIN_BATCH:
            return
        self.cross += unbiased_hsic(grams_a, grams_b)
        self.self_a += np.einsum("aa->a", unbiased_hsic(grams_a, grams_a))
        self.self_b += np.einsum("bb->b", unbiased_hsic(grams_b, grams_b))
        self.batches += 1

    def matrix(self) -> np.ndarray:
        """CKA of every (A layer, B layer) pair; NaN where a layer is constant over the images."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.cross / np.sqrt(np.outer(self.self_a, self.self_b))


def streamed_cka(x: np.ndarray, y: np.ndarray, batch_size: int) -> float:
    """The minibatch estimator on two activation matrices (for tests and numbers)."""
    streamed = StreamedCKA(1, 1)
    for start in range(0, len(x), batch_size):
        streamed.add(gram(x[start:start + batch_size])[None], gram(y[start:start + batch_size])[None])
    return float(streamed.matrix()[0, 0])
