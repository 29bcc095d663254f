"""A concept activation vector (Kim et al., ICML 2018): the normal of a linear classifier that tells a concept's
activations at a layer from random images' activations, pointing to the concept.

The classifier is scikit-learn's L2-regularized logistic regression, seeded, with a third of the images held out:
its accuracy on those is what says whether the layer separates the concept at all (in tens of thousands of
dimensions, training accuracy is always perfect and means nothing).

A layer's flattened activations have up to hundreds of thousands of dimensions for a hundred images. The L2
solution lies in the span of the training images (representer theorem), so the classifier is fitted on each
image's coordinates in an orthonormal basis of that span, from the images' Gram matrix: the same classifier as on
the raw activations, fitted on a hundred columns instead of a hundred thousand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from threadpoolctl import ThreadpoolController

from convvis_core.errors import ConceptError

HELD_OUT = 1 / 3  # share of each set's images kept out of training, to measure the accuracy on
# Logistic regression's C on activations scaled to unit mean squared norm (so one value serves every layer): on the
# planted model of tests/test_tcav.py, 10 separates the concept on held-out images best (0.96 at last_conv, against
# 0.90 at 1 and 0.86 at 0.01) without the noise-fitting of weaker L2.
STRENGTH = 10.0
RANK_TOLERANCE = 1e-9  # Gram eigenvalues below this share of the largest span no direction
_THREADS = ThreadpoolController()  # BLAS threads cost more than they give on a hundred-by-hundred problem


@dataclass(frozen=True)
class CAV:
    """A unit vector in a layer's flattened activation space, from the random images to the concept's."""

    vector: np.ndarray  # (D,) float32, unit length
    accuracy: float  # on the held-out images
    chance: float  # the held-out accuracy of always answering the larger set
    held_out: int  # images held out

    @property
    def chance_margin(self) -> float:
        """Two standard errors of a coin-flip classifier's accuracy over the held-out images: an accuracy within
        this of chance is chance."""
        return 2 * math.sqrt(self.chance * (1 - self.chance) / self.held_out)


Grams = tuple[np.ndarray, np.ndarray, np.ndarray]  # concept·conceptᵀ, concept·randomᵀ, random·randomᵀ


def grams(concept: np.ndarray, random: np.ndarray) -> Grams:
    """The Gram matrices a CAV of ``concept`` against ``random`` (flattened activations, one image a row) is fitted
    from; a caller fitting many CAVs over the same sets computes each block once and passes them in."""
    return concept @ concept.T, concept @ random.T, random @ random.T


def train_cav(concept: np.ndarray, random: np.ndarray, seed: int = 0, strength: float = STRENGTH,
              held_out: float = HELD_OUT, blocks: Grams | None = None) -> CAV:
    """The CAV of ``concept`` activations (n, D) against ``random`` ones (m, D): a seeded, stratified split,
    L2 logistic regression (``strength`` is its C on activations scaled to unit mean squared norm) fitted in the
    span of the training images, its held-out accuracy, and its normal in activation space. ``blocks``: the sets'
    :func:`grams`, where the caller has them."""
    if min(len(concept), len(random)) * held_out < 1:
        raise ConceptError(f"A CAV needs at least {math.ceil(1 / held_out)} images in each set to hold some out; "
                           f"got {len(concept)} concept and {len(random)} random images.")
    together = blocks or grams(concept, random)
    gram = np.block([[together[0], together[1]], [together[1].T, together[2]]]).astype(np.float64)
    labels = np.concatenate([np.ones(len(concept)), np.zeros(len(random))])
    train, test = train_test_split(np.arange(len(labels)), test_size=held_out, stratify=labels, random_state=seed)
    scale = float(np.mean(np.diag(gram)[train]))
    if not scale > 0:
        raise ConceptError("The layer's activations are all zero on these images: no direction can tell them apart. "
                           "Choose another layer.")
    gram /= scale
    with _THREADS.limit(limits=1, user_api="blas"):
        eigenvalues, eigenvectors = np.linalg.eigh(gram[np.ix_(train, train)])
        kept = eigenvalues > eigenvalues.max() * RANK_TOLERANCE
        to_basis = eigenvectors[:, kept] / np.sqrt(eigenvalues[kept])  # training-image weights of each basis vector
        coordinates = gram[:, train] @ to_basis  # each image in the orthonormal basis of the training images' span
        classifier = LogisticRegression(C=strength, max_iter=1000).fit(coordinates[train], labels[train])
        weights = np.zeros(len(labels), np.float32)  # the normal as a weighted sum of the training images
        weights[train] = to_basis @ classifier.coef_[0]
    vector = concept.T @ weights[:len(concept)] + random.T @ weights[len(concept):]
    norm = float(np.linalg.norm(vector))
    if not norm > 0:
        raise ConceptError("The concept's images and the random ones give the same activations at this layer: no "
                           "direction tells them apart. Choose another layer or other images.")
    larger = max(labels[test].mean(), 1 - labels[test].mean())
    return CAV((vector / norm).astype(np.float32), float(classifier.score(coordinates[test], labels[test])),
               float(larger), len(test))
