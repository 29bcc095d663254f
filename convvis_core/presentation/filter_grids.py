"""A grid of filter pictures, strongest first, for downloads and the CLI."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

from convvis_core.featureviz.render import FilterResult
from convvis_core.presentation.grids import captioned_grid

_DEAD_GREY = 128


def sort_by_activation(results: Sequence[FilterResult]) -> list[FilterResult]:
    """Live filters by reached activation, highest first (ties, as at a ReLU6 ceiling, by the
    optimized pre-activation value); dead filters last."""
    return sorted(results, key=lambda r: (r.dead, -r.final_activation, -r.optimized_value))


def tile_image(result: FilterResult) -> np.ndarray:
    """What to draw for a result: its picture, or flat grey for a dead filter (never noise)."""
    return np.full_like(result.image, _DEAD_GREY) if result.dead else result.image


def state(result: FilterResult) -> str:
    """" · dead", " · weak" or "": what a label says about a picture that shows little or nothing."""
    return " · dead" if result.dead else " · weak" if result.weak else ""


def caption(result: FilterResult) -> str:
    """A picture's label: its filter, the activation it reached, and whether it is dead or weak."""
    return f"#{result.filter_index}" + ("" if result.dead else f" · {result.final_activation:.3g}") + state(result)


def filter_grid(results: Sequence[FilterResult], columns: int | None = None, sort: bool = True,
                labels: bool = True, margin: int = 4, min_side: int = 0) -> Image.Image:
    """Tile the pictures under their captions (grey in place of noise for dead filters); pictures smaller
    than ``min_side`` are enlarged by a whole factor."""
    ordered = sort_by_activation(results) if sort else list(results)
    return captioned_grid([(tile_image(result), caption(result)) for result in ordered], columns, labels, margin,
                          min_side)


def progress_strip(frames: dict[int, np.ndarray], tile: int = 96, gap: int = 4) -> Image.Image:
    """Pictures still being optimized (filter → image), in a row of ``tile``-pixel squares on white:
    the live preview of a run."""
    tiles = [Image.fromarray(image).convert("RGB").resize((tile, tile)) for image in frames.values()]
    strip = Image.new("RGB", ((tile + gap) * len(tiles), tile), "white")
    for index, picture in enumerate(tiles):
        strip.paste(picture, (index * (tile + gap), 0))
    return strip
