"""The image sets a concept test reads, each saying where it comes from: concept images (a .zip, a folder, a
dataset, or a probe pattern ConvVis draws), the target's images (a dataset, its images of one class, or random
crops of one photo), and random sets (random crops of the bundled photos, generated noise and textures, or the
user's own images split into sets).

A set holds its images as uint8 arrays (any size: the model's passes bring them to its input) and an identity
that digests their pixels, so a cache keyed by it serves equal images and only those.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from convvis_core.concepts.probes import PATTERNS, Colour, ProbeConcept, texture_images
from convvis_core.datasets.base import ArrayDataset, Dataset
from convvis_core.datasets.catalog import BUILTIN, open_dataset
from convvis_core.errors import ConceptError
from convvis_core.images import Images, as_images
from convvis_core.samples import PHOTOS, load_sample

MIN_CONCEPT_IMAGES = 10  # fewer cannot train a classifier and still hold some out to test it
MAX_SET_IMAGES = 500  # images read from one source for one set
DEFAULT_SET_IMAGES = 50
CROP_SHARE = (0.3, 0.8)  # a random crop's side, as a share of the photo's shorter side


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Images with a short ``name`` for tables, the ``origin`` sentence a page shows, and a content digest."""

    name: str
    origin: str
    images: tuple[np.ndarray, ...]  # uint8 (H, W) or (H, W, 3), any size
    identity: str

    def __len__(self) -> int:
        return len(self.images)


def image_set(name: str, origin: str, images: Sequence[np.ndarray] | np.ndarray) -> ImageSet:
    """A set of uint8 images; its identity digests every image's shape and pixels."""
    images = tuple(np.ascontiguousarray(image, np.uint8) for image in images)
    digest = hashlib.sha256()
    for image in images:
        digest.update(repr(image.shape).encode())
        digest.update(image.tobytes())
    return ImageSet(name, origin, images, f"set-v1:{digest.hexdigest()[:40]}")


def checked_concept(found: ImageSet) -> ImageSet:
    """``found``, refused when it holds too few images to learn a concept from and test it on held-out ones."""
    if len(found) < MIN_CONCEPT_IMAGES:
        raise ConceptError(f"The concept '{found.name}' has {len(found)} image{'s' * (len(found) != 1)}; a concept "
                           f"needs at least {MIN_CONCEPT_IMAGES} (a third are held out to test the concept vector). "
                           "Add images, or use a generated probe concept.")
    return found


def probe_set(concept: ProbeConcept, count: int, size: tuple[int, int], seed: int = 0) -> ImageSet:
    """``count`` seeded variations of a pattern ConvVis draws, at ``size`` (the model's input)."""
    return image_set(concept.describe(), f"drawn by ConvVis: {concept.describe()}, {count} seeded variations (seed {seed})",
                     concept.images(count, size, seed))


def named_concept(spec: str, count: int, size: tuple[int, int], seed: int = 0, colour: Colour | None = None,
                  angle: float = 0.0) -> ImageSet:
    """A concept as a command line or a notebook names it: a pattern ConvVis draws (``count`` images at ``size``,
    in ``colour`` at ``angle``), else a built-in dataset's name, a .zip or a folder of the concept's images."""
    if spec in PATTERNS:
        return probe_set(ProbeConcept(spec, colour, angle), count, size, seed)
    if not (spec in BUILTIN or Path(spec).expanduser().exists()):
        raise ConceptError(f"'{spec}' is neither a pattern ConvVis draws ({', '.join(PATTERNS)}) nor a .zip or folder "
                           "of the concept's images.")
    return checked_concept(dataset_set(open_dataset(spec), name=Path(spec).name))


def _count(asked: int | None, available: int, name: str) -> int:
    """How many images to take: ``asked`` at most (None: all), no more than there are, nor than a set's limit."""
    if available == 0:
        raise ConceptError(f"{name} holds no images: choose a dataset, class or folder that has some.")
    if asked is not None and asked < 1:
        raise ConceptError(f"Take at least one image of {name} (asked {asked}).")
    return min(available, MAX_SET_IMAGES, asked or available)


def dataset_set(dataset: Dataset, count: int | None = None, label: int | None = None,
                name: str | None = None) -> ImageSet:
    """The first ``count`` images (at most; default: all, up to the limit per set) of ``dataset`` (an uploaded .zip,
    a folder, a built-in set), only those labelled ``label`` where the dataset has labels (MNIST's digits)."""
    indices = np.arange(len(dataset))
    where = dataset.name
    if label is not None:
        labels = dataset.labels if isinstance(dataset, ArrayDataset) else None
        if labels is None:
            raise ConceptError(f"{dataset.name} has no labels, so it has no images of class {label}: give the "
                               "class's images as a .zip or folder instead.")
        indices = np.flatnonzero(labels == label)
        class_name = dataset.class_names[label] if dataset.class_names and 0 <= label < len(dataset.class_names) else None
        where = f"{dataset.name}, class {class_name or label}"
    count = _count(count, len(indices), where)
    return image_set(name or where, f"the first {count:,} images of {where}",
                     [dataset.image(int(index)) for index in indices[:count]])


def random_crops(picture: np.ndarray, count: int, rng: np.random.Generator,
                 size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """``count`` square crops of one picture, each side a random share of its shorter side, at a random place,
    resized to ``size`` (height, width) if given."""
    height, width = picture.shape[:2]
    crops = []
    for _ in range(count):
        side = max(1, int(min(height, width) * rng.uniform(*CROP_SHARE)))
        top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
        crop = picture[top:top + side, left:left + side]
        crops.append(crop if size is None else np.asarray(Image.fromarray(crop).resize((size[1], size[0]),
                                                                                        Image.BILINEAR)))
    return crops


def crops_set(picture: Image.Image | np.ndarray, count: int, name: str = "the photo", seed: int = 0,
              size: tuple[int, int] | None = None) -> ImageSet:
    """Random crops of one photo: the target's images when there is one picture, as CRAFT takes them."""
    if not 1 <= count <= MAX_SET_IMAGES:
        raise ConceptError(f"Ask for 1 to {MAX_SET_IMAGES} crops (asked {count}).")
    pixels = np.asarray(picture)
    return image_set(f"crops of {name}", f"{count} random crops of {name} (each side {CROP_SHARE[0]:.0%}–"
                     f"{CROP_SHARE[1]:.0%} of its shorter side, seed {seed})",
                     random_crops(pixels, count, np.random.default_rng(seed), size))


def pictures_set(images: Images, name: str = "your images") -> ImageSet:
    """Images a caller holds (a numpy batch, files, Pillow images) as a set."""
    pictures = as_images(images)
    return image_set(name, f"{len(pictures)} images you gave", [np.asarray(picture) for picture in pictures])


RANDOM_SOURCES = {"photos": "random crops of the bundled sample photos",
                  "textures": "generated noise and textures in random colours"}


def random_sets(source: str | Dataset, runs: int, count: int, size: tuple[int, int], seed: int = 0) -> list[ImageSet]:
    """``runs`` random sets of ``count`` images each, to compare a concept with: crops of the bundled photos
    ("photos"), generated noise and textures ("textures"), both at ``size``, or a dataset of the user's own
    random images, split into disjoint sets where it holds enough images (else each set drawn from all of them)."""
    if not 1 <= count <= MAX_SET_IMAGES:
        raise ConceptError(f"A random set holds 1 to {MAX_SET_IMAGES} images (asked {count}).")
    if isinstance(source, Dataset):
        return _own_random_sets(source, runs, count, seed)
    if source == "textures":
        return [image_set(f"textures {run}", f"{RANDOM_SOURCES[source]}, {count} per set (seed {seed})",
                          texture_images(count, size, seed=_run_seed(seed, run))) for run in range(runs)]
    if source == "photos":
        photos = [np.asarray(load_sample(photo.name).convert("RGB")) for photo in PHOTOS]
        sets = []
        for run in range(runs):
            rng = np.random.default_rng([seed, run, 2])
            chosen = rng.integers(len(photos), size=count)
            crops = [random_crops(photos[index], 1, rng, size)[0] for index in chosen]
            sets.append(image_set(f"photos {run}", f"{RANDOM_SOURCES[source]}, {count} per set (seed {seed})", crops))
        return sets
    raise ConceptError(f"Unknown random source '{source}': use one of {', '.join(RANDOM_SOURCES)}, or your own images.")


def _run_seed(seed: int, run: int) -> int:
    """One seed per (seed, run) pair, far from every other's."""
    return int(np.random.default_rng([seed, run]).integers(2**31))


def _own_random_sets(dataset: Dataset, runs: int, count: int, seed: int) -> list[ImageSet]:
    available = min(len(dataset), MAX_SET_IMAGES * 4)
    if available < count:
        raise ConceptError(f"{dataset.name} holds {len(dataset)} images; a random set needs {count}. Add images or "
                           "choose smaller random sets.")
    order = np.random.default_rng(seed).permutation(available)
    disjoint = available >= runs * count
    sets = []
    for run in range(runs):
        chosen = (order[run * count:(run + 1) * count] if disjoint else
                  np.random.default_rng([seed, run]).choice(available, count, replace=False))
        how = "disjoint sets" if disjoint else "each drawn from all of them (they overlap)"
        sets.append(image_set(f"{dataset.name} {run}", f"your images in {dataset.name}, {count} per set, {how}",
                              [dataset.image(int(index)) for index in chosen]))
    return sets
