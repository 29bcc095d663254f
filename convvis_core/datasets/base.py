"""The one interface every image collection offers the Top-k scan: images by index, in batches.

A dataset has a name for people and an identity for caches (equal identity means equal images, so a
cached scan of it stays valid across restarts). Images are uint8, (H, W) grayscale or (H, W, 3) RGB,
at whatever size they come in; the scan brings them to the model's input.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
from PIL import Image

from convvis_core.counters import WorkCounter
from convvis_core.errors import ConvVisError
from convvis_core.images import ImageSource, open_image

Batch = tuple[np.ndarray, np.ndarray | list[np.ndarray]]  # (dataset indices, their images)
IMAGES_READ = WorkCounter()  # images read by :meth:`Dataset.batches` (every scan's way in), by the dataset's identity


class DatasetError(ConvVisError):
    """A dataset that is missing, empty, too large or refused as unsafe."""


class Dataset(ABC):
    """Images to scan, addressed by index 0 … len − 1.

    ``skipped`` reports what was left out when the collection was read: reason -> file names.
    """

    def __init__(self, name: str, identity: str, skipped: Mapping[str, list[str]] | None = None):
        self.name = name
        self.identity = identity
        self.skipped = dict(skipped or {})

    @property
    def skipped_count(self) -> int:
        return sum(len(names) for names in self.skipped.values())

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def image(self, index: int) -> np.ndarray:
        """Image ``index`` as uint8 (H, W) or (H, W, 3)."""

    def caption(self, index: int) -> str:
        """What to call image ``index`` under a thumbnail."""
        return f"#{index}"

    def image_range(self, start: int, stop: int) -> np.ndarray | list[np.ndarray]:
        """Images ``start`` … ``stop`` − 1, one by one; a dataset that holds them in one array slices it."""
        return [self.image(index) for index in range(start, stop)]

    def batches(self, size: int, count: int | None = None, first: int = 0) -> Iterator[Batch]:
        """Images ``first`` … ``count`` − 1 (default: to the end) in batches of ``size``, each with its indices."""
        count = len(self) if count is None else min(count, len(self))
        for start in range(first, count, size):
            stop = min(start + size, count)
            images = self.image_range(start, stop)
            IMAGES_READ.add(self.identity, stop - start)
            yield np.arange(start, stop), images


class ArrayDataset(Dataset):
    """Same-sized images held in one uint8 array (MNIST, Fashion-MNIST): batches are views, not copies."""

    def __init__(self, name: str, identity: str, images: np.ndarray, labels: np.ndarray | None = None,
                 class_names: Sequence[str] | None = None):
        super().__init__(name, identity)
        if images.dtype != np.uint8 or images.ndim not in (3, 4):
            raise ValueError(f"images must be uint8 (N, H, W) or (N, H, W, 3), not {images.dtype} {images.shape}")
        self.images = images
        self.labels = labels
        self.class_names = class_names

    def __len__(self) -> int:
        return len(self.images)

    def image(self, index: int) -> np.ndarray:
        return self.images[index]

    def caption(self, index: int) -> str:
        if self.labels is None:
            return super().caption(index)
        label = int(self.labels[index])
        return f"#{index} · {self.class_names[label] if self.class_names else label}"

    def image_range(self, start: int, stop: int) -> np.ndarray:
        return self.images[start:stop]


class EncodedDataset(Dataset):
    """Images of any size kept as files or samples and decoded on demand (gallery, .zip, folder)."""

    def __init__(self, name: str, identity: str, names: Sequence[str], read: Callable[[int], ImageSource],
                 captions: Sequence[str] | None = None, skipped: Mapping[str, list[str]] | None = None):
        super().__init__(name, identity, skipped)
        self.names = list(names)
        self._read = read
        self._captions = list(captions) if captions is not None else self.names

    def __len__(self) -> int:
        return len(self.names)

    def image(self, index: int) -> np.ndarray:
        return np.asarray(open_image(self._read(index), name=self.names[index]))

    def caption(self, index: int) -> str:
        return self._captions[index]


def pictures_dataset(pictures: Sequence[Image.Image], name: str = "your images") -> EncodedDataset:
    """Pictures held in memory (a notebook's) as a dataset, its identity their pixels' digest."""
    digest = hashlib.sha256()
    for picture in pictures:
        digest.update(f"{picture.mode}{picture.size}".encode())
        digest.update(picture.tobytes())
    return EncodedDataset(f"{name} ({len(pictures)})", f"pictures:{digest.hexdigest()[:32]}",
                          [f"#{index}" for index in range(len(pictures))], lambda index: pictures[index])
