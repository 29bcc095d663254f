"""Pictures of one size tiled in rows under their captions, and small pictures enlarged for people:
what filter grids, heatmap batches and example sheets are drawn with."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

LABEL_HEIGHT = 14  # pixels of one caption line above each picture


def enlarged(image: Image.Image, side: int) -> Image.Image:
    """Enlarged by a whole factor (sharp pixels) until its longer side reaches about ``side``."""
    factor = max(1, side // max(image.size))
    return image.resize((image.width * factor, image.height * factor), Image.NEAREST) if factor > 1 else image


def fitted_caption(draw: ImageDraw.ImageDraw, text: str, width: int) -> str:
    """``text`` cut (with an ellipsis) to fit ``width`` pixels, so captions never run into their neighbours."""
    if draw.textlength(text) <= width:
        return text
    while text and draw.textlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def captioned_grid(tiles: Sequence[tuple[Image.Image | np.ndarray, str]], columns: int | None = None,
                   labels: bool = True, margin: int = 4, min_side: int = 0) -> Image.Image:
    """(picture, caption) pairs tiled on white in rows of ``columns`` (default: a square), each caption
    above its picture; pictures smaller than ``min_side`` are enlarged by a whole factor first."""
    pictures = [enlarged(picture if isinstance(picture, Image.Image) else Image.fromarray(picture), min_side)
                for picture, _ in tiles]
    columns = columns or math.ceil(math.sqrt(len(pictures)))
    rows = math.ceil(len(pictures) / columns)
    width, height = pictures[0].size
    label_height = LABEL_HEIGHT if labels else 0
    grid = Image.new("RGB", (columns * (width + margin) + margin, rows * (height + margin + label_height) + margin),
                     "white")
    draw = ImageDraw.Draw(grid)
    for index, (picture, (_, text)) in enumerate(zip(pictures, tiles)):
        row, column = divmod(index, columns)
        x = margin + column * (width + margin)
        y = margin + row * (height + margin + label_height)
        grid.paste(picture.convert("RGB"), (x, y + label_height))
        if labels:
            draw.text((x, y), fitted_caption(draw, text, width + margin), fill="black")
    return grid


def captioned_column(sections: Sequence[tuple[Image.Image, str]], margin: int = 6) -> Image.Image:
    """Pictures of any size one under another on white, each under its caption line (a one-page summary)."""
    width = max(picture.width for picture, _ in sections) + 2 * margin
    height = sum(picture.height + LABEL_HEIGHT + margin for picture, _ in sections) + margin
    column = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(column)
    y = margin
    for picture, text in sections:
        draw.text((margin, y), fitted_caption(draw, text, width - 2 * margin), fill="black")
        column.paste(picture.convert("RGB"), (margin, y + LABEL_HEIGHT))
        y += picture.height + LABEL_HEIGHT + margin
    return column
