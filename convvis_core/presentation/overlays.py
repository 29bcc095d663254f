"""Maps drawn over the picture they came from: a heat map through a colormap, a segmentation's
class map in a fixed palette (class 0, the background, left as it is)."""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
from PIL import Image, ImageFilter

from convvis_core.errors import ConvVisError

@functools.lru_cache(maxsize=16)
def colormap_lut(name: str) -> np.ndarray:
    """A matplotlib colormap as a (256, 3) uint8 lookup table (read-only: it is shared)."""
    from matplotlib import colormaps

    table = (colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255 + 0.5).astype(np.uint8)
    table.flags.writeable = False
    return table


def overlay(image: Image.Image, channel_map: np.ndarray, alpha: float = 0.5,
            colormap: str = "viridis") -> Image.Image:
    """A channel's map, min-max scaled, colored and alpha-blended over the image it came from.

    Fast enough for every frame of a live video (~3 ms at 640×480): the map is scaled to 256 levels
    once, colored by PIL as a palette image, and blended by PIL."""
    small = np.asarray(channel_map, dtype=np.float32)
    finite = np.isfinite(small)
    small = np.where(finite, small, small[finite].min() if finite.any() else 0.0)
    upsampled = np.asarray(Image.fromarray(small).resize(image.size, Image.BILINEAR))
    low, high = float(upsampled.min()), float(upsampled.max())
    if high > low:
        levels = np.clip((upsampled - low) * (255.0 / (high - low)) + 0.5, 0, 255).astype(np.uint8)
    else:
        levels = np.zeros(upsampled.shape, np.uint8)
    heat = Image.fromarray(levels)
    heat.putpalette(colormap_lut(colormap).tobytes())  # an "L" image with a palette becomes "P"
    return Image.blend(image.convert("RGB"), heat.convert("RGB"), alpha)


# Colours for classes 1, 2, ... (class 0, the background, is transparent): Tableau 10, then repeated.
PALETTE: tuple[str, ...] = ("#e15759", "#4e79a7", "#59a14f", "#f28e2b", "#b07aa1", "#edc948", "#76b7b2",
                            "#ff9da7", "#9c755f", "#bab0ac")



def _rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def colour_of(class_index: int) -> str:
    """The fixed colour of a (non-background) class of a class map."""
    return PALETTE[(class_index - 1) % len(PALETTE)]


def mask_overlay(seen_image: Image.Image, class_map: np.ndarray, alpha: float = 0.5,
                 outlined: np.ndarray | None = None) -> Image.Image:
    """The image with each predicted class coloured (class 0 left as it is), the map resized to the
    image by nearest neighbour; the edge of the ``outlined`` region (a mask of the map) drawn white."""
    classes = np.asarray(class_map)
    if classes.ndim != 2:
        raise ConvVisError(f"A class map is 2-D (height, width); got shape {classes.shape}.")
    base = seen_image.convert("RGB")
    if classes.shape != (base.height, base.width):
        classes = np.asarray(Image.fromarray(classes.astype(np.int32), "I").resize(base.size, Image.NEAREST))
    pixels = np.asarray(base, np.float32)
    colours = np.zeros_like(pixels)
    for index in np.unique(classes):
        if index > 0:
            colours[classes == index] = _rgb(colour_of(int(index)))
    painted = (classes > 0)[..., None]
    blended = np.where(painted, (1 - alpha) * pixels + alpha * colours, pixels)
    if outlined is not None:
        region = Image.fromarray(np.asarray(outlined, np.uint8) * 255).resize(base.size, Image.NEAREST)
        blended[np.asarray(region.filter(ImageFilter.FIND_EDGES)) > 0] = 255
    return Image.fromarray(np.clip(blended + 0.5, 0, 255).astype(np.uint8), "RGB")


BACKGROUND = "#00000000"  # class 0: not coloured (fully transparent)


def legend(class_names) -> list[tuple[str, str]]:
    """(class name, hex colour) for every value of a class map, in order: class 0 (the background,
    transparent), then the coloured classes. A one-channel output's map is 0 (background) or 1 (its class)."""
    names = list(class_names)
    if len(names) == 1:
        names = ["background", names[0]]
    return [(name, BACKGROUND if index == 0 else colour_of(index)) for index, name in enumerate(names)]


def parts_overlay(image: Image.Image, strengths: np.ndarray, colours: Sequence[str], alpha: float = 0.7) -> Image.Image:
    """Several parts' maps (h, w, k) over the image in one picture (CRAFT's concepts, neuron groups): each
    pixel takes the colour of the part strongest there, as opaque as that part's strength against the
    strongest value anywhere (``alpha`` at most); the maps are resized bilinearly to the image."""
    base = image.convert("RGB")
    values = np.maximum(np.nan_to_num(np.asarray(strengths, np.float32)), 0.0)
    upsampled = np.stack([np.asarray(Image.fromarray(values[..., part]).resize(base.size, Image.BILINEAR))
                          for part in range(values.shape[-1])], axis=-1)
    strongest, top = upsampled.argmax(axis=-1), upsampled.max(axis=-1)
    opacity = alpha * top / top.max() if top.max() > 0 else np.zeros_like(top)
    palette = np.array([_rgb(colour) for colour in colours], np.float32)
    pixels = np.asarray(base, np.float32)
    blended = (1 - opacity[..., None]) * pixels + opacity[..., None] * palette[strongest]
    return Image.fromarray(np.clip(blended + 0.5, 0, 255).astype(np.uint8), "RGB")


def part_colours(count: int) -> list[str]:
    """One colour per part (concept, group), in the order given: the class maps' palette."""
    return [colour_of(part + 1) for part in range(count)]
