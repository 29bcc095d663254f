"""Concepts as pictures for people: CRAFT's concepts (each with the crops that hold it most, and where
each lies in an image) and one image's neuron groups (their maps, together and one by one), in each
part's own colour, most important first. What the notebook API shows and the PNG the app exports."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

from convvis_core.concepts.craft import IMPORTANCES, Craft
from convvis_core.concepts.groups import NeuronGroups
from convvis_core.presentation.grids import captioned_column, captioned_grid
from convvis_core.presentation.overlays import part_colours, parts_overlay

THUMBNAIL = 96  # px of a crop or a map in a sheet


def title_line(text: str) -> tuple[Image.Image, str]:
    """A section of a :func:`captioned_column` that is only its line of text."""
    return Image.new("RGB", (1, 1), "white"), text


def thumbnail(picture: np.ndarray | Image.Image, side: int = THUMBNAIL) -> Image.Image:
    """A square picture at ``side`` pixels: small ones enlarged with sharp pixels, large ones shrunk smoothly."""
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(np.asarray(picture).squeeze())
    image = image.convert("RGB")
    return image.resize((side, side), Image.NEAREST if image.width < side else Image.BILINEAR)


def swatched(picture: Image.Image, colour: str, border: int = 4) -> Image.Image:
    """The picture framed in a part's colour, so a row of crops is tied to its colour in the maps."""
    framed = Image.new("RGB", (picture.width + 2 * border, picture.height + 2 * border), colour)
    framed.paste(picture, (border, border))
    return framed


def concept_title(found: Craft, concept: int, rank: int) -> str:
    """One line about a concept: its rank, its importance and what it does to the target."""
    score = (f"Sobol {found.sobol[concept]:.3f}, " if found.sobol is not None else "")
    return (f"#{rank} concept {concept}: {score}gradient x coefficient {found.gradient_x_coefficient[concept]:+.3g} "
            f"({found.effect(concept)} the target)")


def ranked_maps(found: Craft | NeuronGroups, maps: np.ndarray) -> np.ndarray:
    """Maps (h, w, k) in importance order, so the i-th colour is the i-th most important part's."""
    return maps[..., found.order]


def craft_sheet(found: Craft, crops: int = 6, image: Image.Image | None = None, maps: np.ndarray | None = None,
                class_names: Sequence[str] | None = None) -> Image.Image:
    """Every concept, most important first, with its ``crops`` top crops framed in its colour; above them,
    where the concepts lie in ``image`` (its ``maps`` from :func:`convvis_core.concepts.craft.concept_maps`).
    ``class_names`` name the target's class."""
    colours = part_colours(found.count)
    sections = [title_line(f"{found.layer}: {found.count} concepts of {found.target.describe(class_names)}, ranked by "
                           f"{IMPORTANCES[found.importance]}; NMF error {found.error:.1%}")]
    if image is not None and maps is not None:
        sections.append((parts_overlay(image, ranked_maps(found, maps), colours).resize((2 * THUMBNAIL, 2 * THUMBNAIL)),
                         "where each concept lies in the image (its colour below)"))
    for rank, concept in enumerate(found.order, start=1):
        pictures = [(swatched(thumbnail(crop), colours[rank - 1]), "") for crop in found.concept_images(concept, crops)]
        sections.append((captioned_grid(pictures, columns=len(pictures), labels=False),
                         concept_title(found, concept, rank)))
    return captioned_column(sections)


def groups_pictures(groups: NeuronGroups, alpha: float = 0.7) -> list[tuple[Image.Image, str]]:
    """The groups over the image: all in one picture, then each alone in its colour, largest contribution first."""
    colours = part_colours(groups.count)
    image = thumbnail(groups.image, 2 * THUMBNAIL)
    pictures = [(parts_overlay(image, ranked_maps(groups, groups.maps), colours, alpha), "all groups")]
    for rank, group in enumerate(groups.order):
        pictures.append((parts_overlay(image, groups.maps[..., group:group + 1], [colours[rank]], alpha),
                         f"group {group}: {groups.contributions[group]:+.3g}"))
    return pictures


def groups_sheet(groups: NeuronGroups, class_names: Sequence[str] | None = None) -> Image.Image:
    """The groups' maps in a grid, each captioned with its contribution to the target (its class named by
    ``class_names``)."""
    sheet = captioned_grid(groups_pictures(groups), columns=min(4, groups.count + 1))
    title = (f"{groups.layer}: {groups.count} neuron groups, NMF error {groups.error:.1%}; contribution to "
             f"{groups.target.describe(class_names)}: gradient x activation of the group's share")
    return captioned_column([title_line(title), (sheet, "")])
