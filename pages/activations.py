"""Activations: the feature maps of one image, layer by layer (edges → textures → parts), with dead
and saturated channels marked."""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from convvis_core.activations import (NORMALIZATIONS, Normalization, channel_stats, default_spread,
                                      feature_maps, progression)
from convvis_core.presentation.channel_grids import channel_grid, grid_stride
from convvis_core.presentation.overlays import colormap_lut, overlay
from convvis_core.images import to_png_bytes
from convvis_core.layers import SpatialLayer
from convvis_core.models import LoadedModel
from convvis_ui import links
from convvis_ui.cached import cached, image_bytes, image_key, shown_once, top5
from convvis_ui.charts import channel_figure, grid_figure
from convvis_ui.feedback import user_errors
from convvis_ui.image_input import ChosenImage
from convvis_ui.page import start_page
from convvis_ui.pickers import filter_picker, layers_picker
from convvis_ui.shared_views import seen_image, top5_table

CHART_MAX_SIDE = 800  # grid pixels a side in the browser (12 bytes each with hover data); the PNG keeps all
COLORMAPS = ("viridis", "gray", "magma")  # names both plotly and matplotlib know
THUMBNAIL = 160
THUMBNAILS_PER_ROW = 3


def grid_png(maps: np.ndarray, normalization: Normalization, sort: bool, colormap: str) -> bytes:
    """Full-resolution grid as PNG, made only when the download button is clicked."""
    return to_png_bytes(channel_grid(maps, normalization, sort).to_pil(colormap))


def thumbnail(image: np.ndarray, colormap: str) -> Image.Image:
    return Image.fromarray(colormap_lut(colormap)[image]).resize((THUMBNAIL, THUMBNAIL), Image.NEAREST)


# What the user asked to see: the layers (in graph order) and how their maps are drawn.
Controls = NamedTuple("Controls", [("paths", tuple), ("normalization", str), ("colormap", str), ("alpha", float),
                                   ("sort", bool)])


def image_view(loaded: LoadedModel) -> tuple[ChosenImage, Image.Image]:
    """The image as the model sees it, and its top-5 for a classifier."""
    chosen, seen = seen_image(loaded, key="activations")
    if loaded.info.is_classifier:
        with user_errors():
            top5_table(top5(loaded, chosen.image, chosen.fit))
    return chosen, seen


def read_controls(loaded: LoadedModel, by_path: dict) -> Controls:
    """The layers and how to draw them; stops the page when no layer is picked."""
    chosen_paths = layers_picker("activations", loaded.info.key, by_path,
                                 [layer.path for layer in default_spread(loaded.model)],
                                 help="By default six layers spread from the first to the last map.")
    controls = st.columns(4)
    normalization = controls[0].selectbox("Normalization", list(NORMALIZATIONS), help="\n\n".join(
        f"**{name}**: {text}" for name, text in NORMALIZATIONS.items()))
    colormap = controls[1].selectbox("Colours", COLORMAPS)
    alpha = controls[2].slider("Overlay opacity", 0.0, 1.0, 0.5, 0.05)
    sort = controls[3].toggle("Sort by mean activation", help="Strongest channels first, dead ones last.")
    paths = tuple(sorted(chosen_paths, key=list(by_path).index))  # graph order, whatever the click order
    if not paths:
        st.info("Pick at least one layer.")
        st.stop()
    return Controls(paths, normalization, colormap, alpha, sort)


def progression_view(maps_by_path: dict[str, np.ndarray], colormap: str) -> None:
    """One thumbnail per layer: the mean over channels, or the most active channel."""
    st.markdown("#### Progression through the network")
    summary = st.radio("Each thumbnail shows", ["mean", "strongest"], horizontal=True,
                       format_func={"mean": "the mean over channels", "strongest": "the most active channel"}.get)
    steps = progression(maps_by_path, summary)
    for first in range(0, len(steps), THUMBNAILS_PER_ROW):
        for column, step in zip(st.columns(THUMBNAILS_PER_ROW), steps[first:first + THUMBNAILS_PER_ROW]):
            column.image(image_bytes(thumbnail(step.image, colormap)), width="stretch",
                         caption=step.path + ("" if step.channel is None else f" · #{step.channel}"))


def layer_view(loaded: LoadedModel, layer: SpatialLayer, maps: np.ndarray, seen: Image.Image, maps_key: tuple,
               view: Controls) -> None:
    """One layer's maps: the grid, one channel large and over the input, and the channels' statistics.
    ``maps_key`` names the maps (model, image, fit, layer) for the charts drawn once."""
    path, normalization, colormap = layer.path, view.normalization, view.colormap
    stats = channel_stats(maps)
    stride = grid_stride(maps.shape, CHART_MAX_SIDE)
    st.subheader(path)
    dead, constant = np.flatnonzero(stats.dead), np.flatnonzero(stats.constant)
    listed = ", ".join(map(str, dead[:20])) + (", …" if len(dead) > 20 else "")
    facts = [f"{layer.kind}, {maps.shape[0]}×{maps.shape[1]}, {stats.channels} channels",
             f"{len(dead)} dead" + (f" (#{listed})" if len(dead) else ""), f"{len(constant)} constant"]
    if stride > 1:
        facts.append(f"shown at 1/{stride} resolution (the PNG has every pixel)")
    st.caption(" · ".join(facts))
    wide, narrow = st.columns([3, 2], gap="medium")
    with wide:
        shown_once(("grid", *maps_key, normalization, view.sort, colormap), lambda: st.plotly_chart(
            grid_figure(channel_grid(maps, normalization, view.sort, max_side=CHART_MAX_SIDE), stats, colormap),
            key=f"grid_{path}"))
        st.download_button("Download the grid (PNG)", functools.partial(grid_png, maps, normalization, view.sort, colormap),
                           f"activations_{path.replace('/', '_')}_{normalization}.png",
                           "image/png", key=f"png_{path}", on_click="ignore")
    with narrow:
        channel = filter_picker("activations", loaded.info.key, path, stats.channels, label="Channel",
                                default=int(np.argmax(stats.mean)), help="Starts at the most active channel.")
        links.unit_link(st, path, channel, f"#{channel}: its unit page")
        shown_once(("channel", *maps_key, channel, colormap),
                   lambda: st.plotly_chart(channel_figure(maps, channel, colormap), key=f"channel_chart_{path}"))
        st.image(image_bytes(overlay(seen, maps[..., channel], view.alpha, colormap)), width="stretch",
                 caption=f"#{channel} over the input · mean {stats.mean[channel]:.3g}, max {stats.max[channel]:.3g}, "
                         f"{stats.zero_fraction[channel]:.0%} zeros")
    with st.expander("Channel statistics"):
        shown_once(("statistics", *maps_key), lambda: st.dataframe(
            pd.DataFrame({"mean": stats.mean, "max": stats.max, "zero fraction": stats.zero_fraction,
                          "dead": stats.dead}).rename_axis("channel").reset_index(), hide_index=True, height=240))


def main() -> None:
    start = start_page("Activations", "The feature maps one image produces, layer by layer: early layers respond to "
                       "edges and colours, later ones to textures and object parts. Dead channels (all zero on this "
                       "image) are outlined.", "layer with a spatial (4-D) output, so it has no feature maps to show")
    loaded, by_path = start.loaded, start.layers
    left, right = st.columns([1, 2], gap="large")
    with left:
        chosen, seen = image_view(loaded)
    with right:
        view = read_controls(loaded, by_path)
        with user_errors(stop=True):
            maps_by_path = cached(feature_maps, loaded, chosen.image, spinner="Running the image through the model…",
                                  paths=view.paths, fit=chosen.fit)
        progression_view(maps_by_path, view.colormap)
    for path in view.paths:
        layer_view(loaded, by_path[path], maps_by_path[path], seen,
                   (loaded.identity, image_key(chosen.image), chosen.fit, path), view)


main()
