"""All channels of a layer tiled into one picture (vectorized, no loop over channels), with which
channel each pixel shows, so a click on the grid finds its channel."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from convvis_core.activations import Normalization, channel_stats, normalize
from convvis_core.images import to_uint8
from convvis_core.presentation.overlays import colormap_lut

SEPARATOR_WIDTH = 1


def tile(maps: np.ndarray, columns: int, fill: float | int = np.nan) -> np.ndarray:
    """(H, W, C) → one 2-D grid, channel k in cell (k // columns, k % columns), rows of tiles
    separated by ``SEPARATOR_WIDTH`` pixels of ``fill`` (which also fills the empty last cells)."""
    height, width, count = maps.shape
    rows = math.ceil(count / columns)
    gap = SEPARATOR_WIDTH
    cells = np.full((rows * columns, height + gap, width + gap), fill, dtype=maps.dtype)
    cells[:count, :height, :width] = np.moveaxis(maps, -1, 0)
    grid = cells.reshape(rows, columns, height + gap, width + gap).transpose(0, 2, 1, 3)
    return grid.reshape(rows * (height + gap), columns * (width + gap))[:-gap, :-gap]


@dataclass(frozen=True)
class ChannelGrid:
    """All channels of a layer in one image; the three grids share one shape and layout."""

    image: np.ndarray  # display values (see ``normalize``), NaN on separators and empty cells
    values: np.ndarray  # the raw activations, NaN likewise
    channel: np.ndarray  # int32: which channel each pixel shows, -1 on separators and empty cells
    order: np.ndarray  # the channel in each cell, in reading order
    columns: int
    tile_size: tuple[int, int]  # (height, width) of one tile, after any downsampling
    stride: int  # 1, or the step the maps were subsampled by to fit ``max_side``
    normalization: Normalization

    @property
    def rows(self) -> int:
        return math.ceil(len(self.order) / self.columns)

    def cells(self, channels: int | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, columns) of the cells that show ``channels`` (one index or an array of them)."""
        position = np.empty_like(self.order)
        position[self.order] = np.arange(len(self.order))
        return np.divmod(position[channels], self.columns)

    def to_pil(self, colormap: str | None = None) -> Image.Image:
        """The grid as an 8-bit image, separators white: grayscale, or RGB through a matplotlib colormap."""
        gaps = np.isnan(self.image)
        pixels = to_uint8(normalize(self.image, "minmax") if self.normalization == "raw" else self.image)
        if colormap is None:
            return Image.fromarray(np.where(gaps, 255, pixels).astype(np.uint8))
        colored = colormap_lut(colormap)[pixels]
        colored[gaps] = 255
        return Image.fromarray(colored)


def channel_grid(maps: np.ndarray, normalization: Normalization = "standardize", sort: bool = False,
                 columns: int | None = None, max_side: int | None = None) -> ChannelGrid:
    """Tile every channel of an (H, W, C) map into one grid, vectorized (no loop over channels).

    ``sort`` puts the channels in order of mean activation, strongest first (dead ones last);
    ``max_side`` subsamples the maps by a whole stride so the grid stays within that many pixels.
    """
    count = maps.shape[2]
    columns = columns or math.ceil(math.sqrt(count))
    stats = channel_stats(maps)
    order = np.lexsort((-stats.mean, stats.dead)) if sort else np.arange(count)
    stride = grid_stride(maps.shape, max_side, columns)
    shown = (slice(None, None, stride), slice(None, None, stride), order)
    raw = maps[shown]
    channel_ids = np.broadcast_to(order.astype(np.int32), raw.shape)
    return ChannelGrid(
        image=tile(normalize(maps, normalization)[shown], columns),
        values=tile(raw, columns),
        channel=tile(channel_ids, columns, fill=-1),
        order=order,
        columns=columns,
        tile_size=raw.shape[:2],
        stride=stride,
        normalization=normalization,
    )


def grid_stride(shape: tuple[int, int, int], max_side: int | None, columns: int | None = None) -> int:
    """The smallest subsampling step that keeps the grid of (H, W, C) maps within ``max_side`` pixels a
    side (``channel_grid``'s ``stride``), known without tiling them."""
    if max_side is None:
        return 1
    height, width, count = shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    needed = [math.ceil(size / max(1, (max_side + SEPARATOR_WIDTH) // cells - SEPARATOR_WIDTH))
              for size, cells in ((height, rows), (width, columns))]
    return max(1, *needed)


