"""Pictures of Top k's and Circuits' results, kept apart from the modules that compute them: example
overlays, receptive-field crops and example sheets; kernel pictures, kernel tiles and circuit sheets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from convvis_core.presentation.grids import enlarged
from convvis_core.presentation.overlays import overlay
from convvis_core.circuits import Circuit, LinearConv, rgb_to_model_channels
from convvis_core.datasets.base import Dataset
from convvis_core.errors import LayerError
from convvis_core.images import to_uint8
from convvis_core.models.base import LoadedModel
from convvis_core.receptive_field import receptive_field
from convvis_core.topk import Example, example_maps

DISPLAY_SIDE = 224  # smaller inputs (28×28 digits) are enlarged by a whole factor for display
CROP_SIDE = 112  # crops are enlarged to about this many pixels a side


@dataclass(frozen=True)
class ExampleView:
    """What the page and the command line show for one example."""

    example: Example
    caption: str  # the dataset's name for the image
    overlay: Image.Image  # the channel's map over the image as the model sees it, the maximum's field outlined
    crop: Image.Image  # the receptive field of the maximum, cut out and enlarged
    box: tuple[int, int, int, int]  # that field in input pixels (left, top, right, bottom)
    field_fraction: float  # the share of the input inside that field (deep layers: nearly all of it)


def example_views(loaded: LoadedModel, dataset: Dataset, path: str, channel: int, examples: Sequence[Example],
                  alpha: float = 0.5, colormap: str = "viridis") -> list[ExampleView]:
    """Each example's image with the channel's map overlaid and its maximum's receptive field outlined,
    and that field cropped."""
    if not examples:
        return []
    seen, maps = example_maps(loaded, dataset, path, channel, examples)
    field = receptive_field(loaded, path)
    views = []
    for example, image, channel_map in zip(examples, seen, maps):
        box = field.box(example.row, example.col)
        shown = enlarged(image, DISPLAY_SIDE)
        scale = shown.width // image.width
        outlined = overlay(shown, channel_map, alpha, colormap)
        left, top, right, bottom = (edge * scale for edge in box)
        ImageDraw.Draw(outlined).rectangle((left, top, right - 1, bottom - 1), outline=(255, 64, 64),
                                           width=max(1, scale // 2, shown.width // 112))
        crop = enlarged(image.crop(box), CROP_SIDE)
        fraction = (right - left) * (bottom - top) / (shown.width * shown.height)
        views.append(ExampleView(example, dataset.caption(example.index), outlined, crop, box, fraction))
    return views


def example_sheet(views: Sequence[ExampleView], gap: int = 6) -> Image.Image:
    """The overlays side by side, each example's crop below its overlay: one PNG for the command line."""
    cell = max(view.overlay.width for view in views)
    overlay_height = max(view.overlay.height for view in views)
    crop_height = max(view.crop.height for view in views)
    sheet = Image.new("RGB", (len(views) * (cell + gap) - gap, overlay_height + gap + crop_height), "white")
    for position, view in enumerate(views):
        left = position * (cell + gap)
        sheet.paste(view.overlay, (left, 0))
        sheet.paste(view.crop.convert("RGB"), (left + (cell - view.crop.width) // 2, overlay_height + gap))
    return sheet


def kernel_images(conv: LinearConv, preprocessing: str) -> np.ndarray:
    """First-layer kernels as pictures, (filters, kh, kw, 3) uint8 (or (filters, kh, kw) for grey
    inputs): each filter min-max stretched to 0..255 on its own, channels in RGB order."""
    if conv.source is not None:
        raise LayerError(f"{conv.layer} reads {conv.source}, not the image: its kernels are not pictures.")
    kernels = np.moveaxis(conv.kernel, -1, 0)
    if kernels.shape[-1] == 3:
        kernels = kernels[..., rgb_to_model_channels(preprocessing)]
    low = kernels.min(axis=(1, 2, 3), keepdims=True)
    spread = np.maximum(kernels.max(axis=(1, 2, 3), keepdims=True) - low, 1e-12)
    pictures = to_uint8((kernels - low) / spread * 255.0)
    return pictures[..., 0] if pictures.shape[-1] == 1 else pictures


def diverging_colours(values: np.ndarray, limit: float) -> np.ndarray:
    """Values in [-limit, limit] as RGB uint8: blue (inhibitory) through white to red (excitatory)."""
    t = np.clip(np.asarray(values, np.float64) / (limit or 1.0), -1.0, 1.0)[..., None]
    white, red, blue = np.array([255.0, 255, 255]), np.array([178.0, 24, 43]), np.array([33.0, 102, 172])
    colours = np.where(t >= 0, white + t * (red - white), white - t * (blue - white))
    return np.clip(colours + 0.5, 0, 255).astype(np.uint8)


def kernel_tile(kernel: np.ndarray, limit: float, side: int = 96) -> Image.Image:
    """A kernel slice as a heatmap tile, with its values written in when it is 3×3 or smaller."""
    rows, columns = kernel.shape
    tile = Image.fromarray(diverging_colours(kernel, limit)).resize((side, side), Image.NEAREST)
    if rows * columns <= 9:
        draw = ImageDraw.Draw(tile)
        for (row, column), value in np.ndenumerate(kernel):
            x, y = (column + 0.5) * side / columns, (row + 0.5) * side / rows
            draw.text((x, y), f"{value:.2f}", fill="black", anchor="mm")
    return tile


def circuit_sheet(found: Circuit, count: int, filter_image: np.ndarray | None,
                  input_images: Sequence[np.ndarray] | None, side: int = 96) -> Image.Image:
    """One picture of a circuit: the filter on top (its feature visualization, when given; else its place
    left blank), then its ``count`` strongest inputs, each with its feature visualization (when given),
    kernel heatmap and sign."""
    top = found.top(count)
    limit = max((float(np.abs(channel.kernel).max()) for channel in top), default=1.0)
    margin, text = 6, 14
    columns = max(len(top), 1)
    width = margin + columns * (side + margin)
    input_rows = (2 if input_images is not None else 1) * side + 3 * text
    sheet = Image.new("RGB", (max(width, 2 * side + 2 * margin), 2 * margin + side + text + input_rows + margin), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((margin, margin), f"{found.layer} #{found.filter_index}   bias {found.bias:+.3g}", fill="black")
    if filter_image is not None:
        sheet.paste(Image.fromarray(filter_image).convert("RGB").resize((side, side)), (margin, margin + text))
    y = 2 * margin + text + side
    for index, channel in enumerate(top):
        x = margin + index * (side + margin)
        row = y + text
        if input_images is not None:
            sheet.paste(Image.fromarray(input_images[index]).convert("RGB").resize((side, side)), (x, row))
            row += side
        sheet.paste(kernel_tile(channel.kernel, limit, side), (x, row))
        label = f"#{channel.index}" if found.source else channel.name
        draw.text((x, y), f"{label} {channel.sign}", fill="black")
        draw.text((x, row + side + 2), f"norm {channel.norm:.3g}", fill="black")
        if channel.contribution is not None:
            draw.text((x, row + side + 2 + text), f"contrib. {channel.contribution:+.3g}", fill="black")
    return sheet
