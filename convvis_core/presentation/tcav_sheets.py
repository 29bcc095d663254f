"""A concept test as one picture (the page's PNG export and the command line's ``--png``): the concept's images,
then per layer its finding, every run's score against the random directions' on a 0..1 line, the concept
direction's feature visualization and the target images furthest along the concept."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from convvis_core.concepts.image_sets import ImageSet
from convvis_core.concepts.tcav import LayerScore, TCAVResult
from convvis_core.presentation.grids import captioned_column

TILE = 80  # pixels a side of each thumbnail
SHOWN = 8  # concept images shown
CONCEPT_COLOUR, RANDOM_COLOUR = (31, 119, 180), (150, 150, 150)


def thumbnails(images: Sequence[np.ndarray], pictures: Sequence[np.ndarray] = (), gap: int = 4) -> Image.Image:
    """Pictures (any size, grey or colour) as one row of ``TILE``-pixel squares: ``pictures`` first, then ``images``."""
    tiles = [*pictures, *images]
    row = Image.new("RGB", (len(tiles) * (TILE + gap) - gap, TILE), "white")
    for position, tile in enumerate(tiles):
        picture = Image.fromarray(np.asarray(tile, np.uint8)).convert("RGB")
        resample = Image.NEAREST if max(picture.size) < TILE else Image.BILINEAR
        row.paste(picture.resize((TILE, TILE), resample), (position * (TILE + gap), 0))
    return row


def score_strip(score: LayerScore, width: int = 360, height: int = 44) -> Image.Image:
    """Each run's TCAV score (blue, above the line) and each random direction's (grey, below) on a 0..1 line, with
    one half marked: where a concept that does not matter lands."""
    strip = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(strip)
    left, right, middle = 12, width - 12, height // 2
    x = lambda value: left + value * (right - left)  # noqa: E731
    draw.line((left, middle, right, middle), fill="black")
    draw.line((x(0.5), middle - 10, x(0.5), middle + 10), fill="black")
    for value in score.random_scores:
        draw.ellipse((x(value) - 4, middle + 4, x(value) + 4, middle + 12), fill=RANDOM_COLOUR)
    for value in score.scores:
        draw.ellipse((x(value) - 4, middle - 12, x(value) + 4, middle - 4), fill=CONCEPT_COLOUR)
    draw.text((0, height - 11), "0", fill="black")
    draw.text((width - 8, height - 11), "1", fill="black")
    return strip


def tcav_sheet(result: TCAVResult, concept: ImageSet, target_images: ImageSet,
               pictures: Mapping[str, np.ndarray] | None = None) -> Image.Image:
    """The whole test on one page; ``pictures`` holds each layer's concept-direction picture where there is one."""
    sections = [(thumbnails(concept.images[:SHOWN]), f"Concept: {result.concept} ({result.concept_origin})")]
    for score in result.layers:
        own = [pictures[score.layer]] if pictures and score.layer in pictures else []
        furthest = [target_images.images[int(index)] for index in score.furthest]
        sections.append((score_strip(score), score.summary()))
        sections.append((thumbnails(furthest, own), ("concept direction, then " if own else "") +
                         f"the images of {result.target} furthest along the concept"))
    sections.append((Image.new("RGB", (1, 1), "white"), f"Target: {result.target} over {result.target_images}; "
                     f"random: {result.random_origin}"))
    return captioned_column(sections)
