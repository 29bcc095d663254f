"""Testing a concept (TCAV) in one call, for a notebook: ``tcav(model, "stripes", zebra_images, target=340)``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from convvis_core.api.attribution import Models, as_model
from convvis_core.api.display import Pictured, figures_html, table_html
from convvis_core.cam.targets import Target, indexed_target
from convvis_core.concepts.image_sets import (DEFAULT_SET_IMAGES, ImageSet, dataset_set, named_concept, pictures_set,
                                              probe_set, random_sets)
from convvis_core.concepts.probes import ProbeConcept
from convvis_core.concepts.tcav import DEFAULT_RUNS, TCAVResult, tcav as test_concept
from convvis_core.datasets.base import Dataset
from convvis_core.datasets.catalog import open_dataset
from convvis_core.images import Images
from convvis_core.layers import default_layer, find_layer
from convvis_core.models.base import LoadedModel
from convvis_core.presentation.tcav_sheets import tcav_sheet

ImageSource = ImageSet | Dataset | str | Images  # a set, a dataset, a dataset name or .zip / folder path, or images


@dataclass(frozen=True, eq=False)
class TCAV(Pictured):
    """A concept tested against a target at one or more layers: ``result`` holds every number (each run's score,
    the random directions' scores, the p-values, the CAVs); shown as a sheet and a table, saved as PNG or CSV."""

    result: TCAVResult = field(repr=False)
    concept: ImageSet = field(repr=False)
    images: ImageSet = field(repr=False)

    def rows(self) -> list[dict]:
        return self.result.rows()

    def title(self) -> str:
        return (f"TCAV of '{self.result.concept}' for {self.result.target}: {self.result.runs} runs against random "
                f"sets ({self.result.random_origin})")

    def draw(self) -> Image.Image:
        return tcav_sheet(self.result, self.concept, self.images)

    def caption(self) -> str:
        return " | ".join(score.summary() for score in self.result.layers)

    def verdicts(self) -> list[str]:
        """Each layer's finding in a sentence."""
        return [f"{score.layer}: {score.verdict(self.result.target)}" for score in self.result.layers]

    def _repr_html_(self) -> str:
        return (figures_html([(self.picture, self.title())]) + table_html(self.rows())
                + "".join(f"<p>{verdict}</p>" for verdict in self.verdicts()))

    def save(self, path: str | Path) -> Path:
        """A .csv path gets the table of scores; any other, the sheet as a PNG."""
        if Path(path).suffix.lower() != ".csv":
            return super().save(path)
        Path(path).write_text(self.result.to_csv())
        return Path(path)


def as_concept(concept: ImageSource | ProbeConcept, model: LoadedModel, count: int, seed: int) -> ImageSet:
    """A concept as the caller names it: a probe pattern ("stripes") or :class:`ProbeConcept`, drawn at the model's
    size; a set; a dataset, or its name or path; images."""
    if isinstance(concept, ProbeConcept):
        return probe_set(concept, count, model.info.input_size, seed)
    if isinstance(concept, str):
        return named_concept(concept, count, model.info.input_size, seed)
    return as_image_set(concept, "your concept")


def as_image_set(images: ImageSource, name: str, label: int | None = None) -> ImageSet:
    """Images as the caller gives them: a set; a dataset, or its name or path (only the images labelled ``label``,
    where it has labels); images."""
    if isinstance(images, ImageSet):
        return images
    if isinstance(images, str):
        images = open_dataset(images)
    if isinstance(images, Dataset):
        return dataset_set(images, label=label)
    return pictures_set(images, name)


def tcav(model: Models, concept: ImageSource | ProbeConcept, images: ImageSource, target: int | Target,
         layers: str | Sequence[str] | None = None, random: str | Dataset = "photos", runs: int = DEFAULT_RUNS,
         count: int = DEFAULT_SET_IMAGES, label: int | None = None, seed: int = 0) -> TCAV:
    """Does ``concept`` move ``target`` (a class index, or any target object) over ``images`` (the target's
    images; of a labelled dataset such as "mnist", those labelled ``label``), at ``layers`` (default: the last
    with a map)? ``concept`` is a probe pattern ConvVis draws ("stripes",
    "dots", ...: ``count`` images), your images, a dataset or a .zip/folder path; ``runs`` random sets of ``count``
    images (crops of the bundled "photos", generated "textures", or a dataset of your own random images) give the
    scores the concept must beat. Cached on disk as the app caches it."""
    model = as_model(model)
    paths = ([default_layer(model.model).path] if layers is None else
             [find_layer(model.model, layer).path for layer in ([layers] if isinstance(layers, str) else layers)])
    target = indexed_target(model, target, paths[0]) if isinstance(target, (int, np.integer)) else target
    concept_set = as_concept(concept, model, count, seed)
    image_set = as_image_set(images, "the target's images", label)
    random_set = random_sets(open_dataset(random) if isinstance(random, str) and Path(random).exists() else random,
                             runs, count, model.info.input_size, seed)
    result = test_concept(model, concept_set, image_set, target, paths, random_set, seed)
    return TCAV(result, concept_set, image_set)
