"""Concepts found in a model, one call each for a notebook: CRAFT's concepts of a target (``craft``) and
one image's neuron groups (``neuron_groups``). Each result shows itself (a sheet and a table) and saves
as a PNG (``save``) and its table as a CSV (``save_csv``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from convvis_core.api.attribution import Models, as_model, indexed_target
from convvis_core.api.display import PicturedTable
from convvis_core.cam.targets import Target
from convvis_core.concepts.craft import Craft, concept_maps, craft_concepts
from convvis_core.concepts.groups import NeuronGroups, neuron_groups as group_neurons
from convvis_core.featureviz.objectives import Direction
from convvis_core.images import Fit, Images, ImageSource, as_images, as_model_sees_it, one_image
from convvis_core.presentation.concept_sheets import craft_sheet, groups_sheet


@dataclass(frozen=True, eq=False)
class Concepts(PicturedTable):
    """CRAFT's concepts of a target at a layer (``found`` holds every array), most important first, each
    with the crops that hold it most; where each lies in ``image`` when one was given."""

    model: str
    found: Craft = field(repr=False)
    class_names: tuple[str, ...] | None = field(default=None, repr=False)
    image: Image.Image | None = field(default=None, repr=False)  # as the model sees it
    maps: np.ndarray | None = field(default=None, repr=False)  # (h, w, k) where each concept lies in it

    def rows(self) -> list[dict]:
        return self.found.rows()

    def concept(self, rank: int) -> int:
        """The concept at ``rank`` (1: the most important)."""
        return int(self.found.order[rank - 1])

    def concept_images(self, rank: int, count: int = 10) -> np.ndarray:
        """The crops holding the concept at ``rank`` most, uint8 (count, H, W, C): concept images for TCAV."""
        return self.found.concept_images(self.concept(rank), count)

    def vector(self, rank: int) -> np.ndarray:
        """The concept at ``rank`` as a unit direction in the layer's channel space (C,)."""
        return self.found.vector(self.concept(rank))

    def direction(self, rank: int) -> Direction:
        """The concept at ``rank`` as a feature-visualization objective: ``visualize(model, concepts.direction(1))``."""
        return self.found.direction(self.concept(rank))

    def draw(self) -> Image.Image:
        return craft_sheet(self.found, image=self.image, maps=self.maps, class_names=self.class_names)

    def caption(self) -> str:
        found = self.found
        return (f"{self.model} at {found.layer}: {found.count} concepts of {found.target.describe(self.class_names)} "
                f"from {len(found.boxes)} crops of {len(found.images)} image(s); {found.cost()}; {found.seconds:.2f} s"
                + (" (cached)" if found.from_cache else ""))


def craft(model: Models, images: Images, target: int | Target | None = None, layer: str | None = None, k: int = 10,
          crops: int = 200, importance: str = "gradient", image: ImageSource | np.ndarray | None = None,
          fit: Fit = "stretch", **settings) -> Concepts:
    """CRAFT: ``k`` concepts of ``target`` (default: the class predicted most often) at ``layer`` from
    ``crops`` random crops of ``images`` (one image: its own crops), ranked by ``importance``
    ("gradient": gradient × coefficient; "sobol": Sobol total indices); where each lies in ``image``
    if given. ``settings``: ``crop_fraction``, ``designs``, ``seed``. Cached on disk."""
    loaded = as_model(model)
    target = indexed_target(loaded, target, layer) if isinstance(target, (int, np.integer)) else target
    found = craft_concepts(loaded, as_images(images), target, layer, k, crops, importance=importance, fit=fit,
                           **settings)
    names = loaded.info.output_info.class_names
    if image is None:
        return Concepts(loaded.info.display_name, found, names)
    picture = one_image(image)
    return Concepts(loaded.info.display_name, found, names, as_model_sees_it(picture, loaded.info, fit),
                    concept_maps(loaded, picture, found, fit))


@dataclass(frozen=True, eq=False)
class NeuronGroupsView(PicturedTable):
    """One image's neuron groups at a layer (``found`` holds every array): their maps together and one by
    one, each group's contribution to the target and its strongest channels."""

    model: str
    found: NeuronGroups = field(repr=False)
    class_names: tuple[str, ...] | None = field(default=None, repr=False)

    def rows(self) -> list[dict]:
        return self.found.rows()

    def direction(self, group: int) -> Direction:
        """Group ``group``'s channel direction as a feature-visualization objective."""
        return self.found.direction(group)

    def draw(self) -> Image.Image:
        return groups_sheet(self.found, self.class_names)

    def caption(self) -> str:
        found = self.found
        return (f"{self.model} at {found.layer}: {found.count} neuron groups on the image, NMF error "
                f"{found.error:.1%}; their contributions to {found.target.describe(self.class_names)} (gradient × "
                f"activation) add up to {found.contributions.sum():+.3g}, the layer's {found.total:+.3g} with what "
                "they leave out")


def neuron_groups(model: Models, image: ImageSource | np.ndarray, target: int | Target | None = None,
                  layer: str | None = None, k: int = 6, fit: Fit = "stretch", seed: int = 0) -> NeuronGroupsView:
    """Neuron groups: ``layer``'s channels on ``image`` factorized into ``k`` groups that fire together,
    each with its map, its contribution to ``target`` (default: the top class) and its strongest channels."""
    loaded = as_model(model)
    target = indexed_target(loaded, target, layer) if isinstance(target, (int, np.integer)) else target
    found = group_neurons(loaded, one_image(image), target, layer, k, seed, fit)
    return NeuronGroupsView(loaded.info.display_name, found, loaded.info.output_info.class_names)
