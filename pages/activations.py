"""Activations: the feature maps of one image, layer by layer (edges → textures → parts), with dead
and saturated channels marked."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from convvis_core.activations import (NORMALIZATIONS, ChannelStats, Normalization, channel_stats, default_spread,
                                      feature_maps, progression)
from convvis_core.presentation.channel_grids import SEPARATOR_WIDTH, ChannelGrid, channel_grid, grid_stride
from convvis_core.presentation.overlays import colormap_lut, overlay
from convvis_core.images import as_model_sees_it, to_png_bytes
from convvis_core.models import LoadedModel
from convvis_ui import links
from convvis_ui.cached import image_bytes, image_key, shown_once, top5
from convvis_ui.feedback import user_errors
from convvis_ui.image_input import image_picker
from convvis_ui.page import start_page
from convvis_ui.pickers import filter_picker, layers_picker

CHART_MAX_SIDE = 800  # grid pixels a side in the browser (12 bytes each with hover data); the PNG keeps all
COLORMAPS = ("viridis", "gray", "magma")  # names both plotly and matplotlib know
THUMBNAIL = 160
THUMBNAILS_PER_ROW = 3
GRID_WIDTH = 560  # about the width of the grid's column on a laptop screen, to size the chart's height


@st.cache_data(show_spinner="Running the image through the model…", max_entries=16)
def cached_maps(model: str, image: str, fit: str, paths: tuple[str, ...],
                _loaded: LoadedModel, _image: Image.Image) -> dict[str, np.ndarray]:
    """One forward pass per (model, image, fit, layers); the arguments before the objects are the key."""
    return feature_maps(_loaded, _image, paths, fit)


def cell_outlines(grid: ChannelGrid, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x, y of one polyline drawing a rectangle around each channel's cell (NaN breaks the line)."""
    height, width = grid.tile_size
    rows, columns = grid.cells(channels)
    left, top = columns * (width + SEPARATOR_WIDTH) - 0.5, rows * (height + SEPARATOR_WIDTH) - 0.5
    gap = np.full_like(left, np.nan, dtype=np.float64)
    xs = np.stack([left, left + width, left + width, left, left, gap], axis=-1)
    ys = np.stack([top, top, top + height, top + height, top, gap], axis=-1)
    return xs.ravel(), ys.ravel()


def grid_figure(grid: ChannelGrid, stats: ChannelStats, colormap: str) -> go.Figure:
    """All channels as one heatmap: hover tells the channel and its activation; dead channels
    outlined red, constant (saturated) ones orange."""
    raw = grid.normalization == "raw"
    customdata = np.stack([grid.channel.astype(np.float32), grid.values], axis=-1)
    shown = "" if raw else "<br>shown as %{z:.0f} / 255"
    figure = go.Figure(go.Heatmap(
        z=grid.image, customdata=customdata, colorscale=colormap, hoverongaps=False,
        zmin=None if raw else 0, zmax=None if raw else 255, showscale=raw,
        hovertemplate="channel %{customdata[0]:.0f}<br>activation %{customdata[1]:.4g}" + shown + "<extra></extra>",
    ))
    for flagged, color, name in ((stats.dead, "#e45756", "dead"), (stats.constant, "#f58518", "constant")):
        if flagged.any():
            xs, ys = cell_outlines(grid, np.flatnonzero(flagged))
            figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=color, width=1.5), name=name,
                                        hoverinfo="skip"))
    grid_height, grid_width = grid.image.shape
    figure.update_xaxes(visible=False, constrain="domain")
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    figure.update_layout(height=int(np.clip(GRID_WIDTH * grid_height / grid_width, 200, 900)) + 30,
                         margin=dict(l=0, r=0, t=10, b=0), plot_bgcolor="white", showlegend=True,
                         legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    return figure


def channel_figure(maps: np.ndarray, channel: int, colormap: str) -> go.Figure:
    """One channel, large, in its raw values."""
    figure = go.Figure(go.Heatmap(z=maps[..., channel], colorscale=colormap,
                                  hovertemplate="x %{x}, y %{y}<br>activation %{z:.4g}<extra></extra>"))
    figure.update_xaxes(visible=False, constrain="domain")
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    figure.update_layout(height=320, margin=dict(l=0, r=0, t=10, b=0))
    return figure


def grid_png(maps: np.ndarray, normalization: Normalization, sort: bool, colormap: str) -> bytes:
    """Full-resolution grid as PNG, made only when the download button is clicked."""
    return to_png_bytes(channel_grid(maps, normalization, sort).to_pil(colormap))


def thumbnail(image: np.ndarray, colormap: str) -> Image.Image:
    return Image.fromarray(colormap_lut(colormap)[image]).resize((THUMBNAIL, THUMBNAIL), Image.NEAREST)


def main() -> None:
    start = start_page("Activations", "The feature maps one image produces, layer by layer: early layers respond to "
                       "edges and colours, later ones to textures and object parts. Dead channels (all zero on this "
                       "image) are outlined.", "layer with a spatial (4-D) output, so it has no feature maps to show")
    loaded, info, by_path = start.loaded, start.info, start.layers
    key = loaded.identity

    left, right = st.columns([1, 2], gap="large")
    with left:
        chosen = image_picker(info, key="activations")
        seen = as_model_sees_it(chosen.image, info, chosen.fit)
        st.image(image_bytes(seen), caption=f"{chosen.label}, as the model sees it ({seen.width}×{seen.height})",
                 width=min(320, max(seen.width, 160)))
        digest = image_key(chosen.image)
        if info.is_classifier:
            with user_errors():
                predictions = top5(loaded, chosen.image, chosen.fit)
                st.dataframe(pd.DataFrame({"class": [p.class_name for p in predictions],
                                           "probability": [p.probability for p in predictions]}),
                             hide_index=True, column_config={"probability": st.column_config.ProgressColumn(
                                 format="percent", min_value=0.0, max_value=1.0)})
    with right:
        chosen_paths = layers_picker("activations", info.key, by_path, [layer.path for layer in default_spread(loaded.model)],
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
        with user_errors(stop=True):
            maps_by_path = cached_maps(key, digest, chosen.fit, paths, loaded, chosen.image)
        st.markdown("#### Progression through the network")
        summary = st.radio("Each thumbnail shows", ["mean", "strongest"], horizontal=True,
                           format_func={"mean": "the mean over channels", "strongest": "the most active channel"}.get)
        steps = progression(maps_by_path, summary)
        for start in range(0, len(steps), THUMBNAILS_PER_ROW):
            for column, step in zip(st.columns(THUMBNAILS_PER_ROW), steps[start:start + THUMBNAILS_PER_ROW]):
                column.image(image_bytes(thumbnail(step.image, colormap)), width="stretch",
                             caption=step.path + ("" if step.channel is None else f" · #{step.channel}"))

    for path in paths:
        maps = maps_by_path[path]
        stats = channel_stats(maps)
        stride = grid_stride(maps.shape, CHART_MAX_SIDE)
        layer_key = (key, digest, chosen.fit, path)  # names the maps
        st.subheader(path)
        dead, constant = np.flatnonzero(stats.dead), np.flatnonzero(stats.constant)
        listed = ", ".join(map(str, dead[:20])) + (", …" if len(dead) > 20 else "")
        facts = [f"{by_path[path].kind}, {maps.shape[0]}×{maps.shape[1]}, {stats.channels} channels",
                 f"{len(dead)} dead" + (f" (#{listed})" if len(dead) else ""), f"{len(constant)} constant"]
        if stride > 1:
            facts.append(f"shown at 1/{stride} resolution (the PNG has every pixel)")
        st.caption(" · ".join(facts))
        wide, narrow = st.columns([3, 2], gap="medium")
        with wide:
            shown_once(("grid", *layer_key, normalization, sort, colormap), lambda: st.plotly_chart(
                grid_figure(channel_grid(maps, normalization, sort, max_side=CHART_MAX_SIDE), stats, colormap),
                key=f"grid_{path}"))
            st.download_button("Download the grid (PNG)", functools.partial(grid_png, maps, normalization, sort, colormap),
                               f"activations_{path.replace('/', '_')}_{normalization}.png",
                               "image/png", key=f"png_{path}", on_click="ignore")
        with narrow:
            channel = filter_picker("activations", info.key, path, stats.channels, label="Channel",
                                    default=int(np.argmax(stats.mean)), help="Starts at the most active channel.")
            links.unit_link(st, path, channel, f"#{channel}: its unit page")
            shown_once(("channel", *layer_key, channel, colormap),
                       lambda: st.plotly_chart(channel_figure(maps, channel, colormap), key=f"channel_chart_{path}"))
            st.image(image_bytes(overlay(seen, maps[..., channel], alpha, colormap)), width="stretch",
                     caption=f"#{channel} over the input · mean {stats.mean[channel]:.3g}, max {stats.max[channel]:.3g}, "
                             f"{stats.zero_fraction[channel]:.0%} zeros")
        with st.expander("Channel statistics"):
            shown_once(("statistics", *layer_key), lambda: st.dataframe(
                pd.DataFrame({"mean": stats.mean, "max": stats.max, "zero fraction": stats.zero_fraction,
                              "dead": stats.dead}).rename_axis("channel").reset_index(), hide_index=True, height=240))


main()
