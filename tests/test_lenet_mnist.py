"""The shipped LeNet must load offline, keep its layer names, and classify held-out MNIST digits well."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from convvis_core.datasets.mnist import load_mnist, mnist_split, split_indices
from convvis_core.models.lenet_mnist import WEIGHTS_FILE, load_lenet_mnist

LAYER_NAMES = (
    "conv1",
    "conv1_relu",
    "pool1",
    "conv2",
    "conv2_relu",
    "pool2",
    "flatten",
    "fc1",
    "logits",
    "predictions",
)


@pytest.fixture(scope="module")
def model() -> keras.Model:
    """Load the committed model once; loading is the slow part."""
    return load_lenet_mnist()


def test_split_is_disjoint_and_balanced() -> None:
    """Held-out accuracy only means something if no held-out image was trained on."""
    _, labels = load_mnist()
    train_idx, held_out_idx = split_indices(labels)
    assert len(train_idx) == 4000 and len(held_out_idx) == 1000
    assert np.intersect1d(train_idx, held_out_idx).size == 0
    assert np.union1d(train_idx, held_out_idx).size == len(labels)
    assert np.array_equal(np.bincount(labels[held_out_idx], minlength=10), np.full(10, 100))


def test_layer_names(model: keras.Model) -> None:
    """Pages address activations and pre-softmax logits by these names."""
    names = [layer.name for layer in model.layers]
    for name in LAYER_NAMES:
        assert name in names
    assert model.get_layer("logits").activation is keras.activations.linear


def test_held_out_accuracy(model: keras.Model) -> None:
    """The shipped weights must really recognise digits they were not trained on."""
    assert WEIGHTS_FILE.stat().st_size < 8_000_000
    _, (images, labels) = mnist_split()
    probabilities = model.predict((images.astype("float32") / 255.0)[..., None], batch_size=256, verbose=0)
    accuracy = float((probabilities.argmax(axis=1) == labels).mean())
    assert accuracy >= 0.97, f"held-out accuracy {accuracy:.4f}"
