"""The pages' plotly charts, built from what the core returns: bars of predictions, a heat map over an
image, faithfulness curves, sanity-check curves, kernel slices, grids of feature maps, parts (concepts,
groups) over an image."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from convvis_core.activations import ChannelStats
from convvis_core.cam import Faithfulness
from convvis_core.cam.randomization import MEASURES, SanityCheck
from convvis_core.predictions import Prediction
from convvis_core.presentation.overlays import parts_overlay
from convvis_core.presentation.channel_grids import SEPARATOR_WIDTH, ChannelGrid

KERNEL_SIDE = 160  # px of a kernel heatmap
GRID_WIDTH = 560  # about the width of the Activations grid's column on a laptop screen, to size its height


def predictions_figure(predictions: list[Prediction]) -> go.Figure:
    """Horizontal bars, the most probable class on top."""
    shown = predictions[::-1]  # plotly draws bars bottom-up
    figure = go.Figure(go.Bar(x=[p.probability for p in shown], y=[f"{p.class_name} ({p.class_index})" for p in shown],
                              orientation="h", text=[f"{p.probability:.1%}" for p in shown], textposition="auto",
                              marker_color="#4c78a8"))
    figure.update_layout(title="Top-5 predictions", xaxis=dict(range=[0, 1], tickformat=".0%"),
                         height=260, margin=dict(l=10, r=10, t=40, b=10))
    return figure


def map_figure(seen: Image.Image, values: np.ndarray, alpha: float, colormap: str) -> go.Figure:
    """The map over the image, zoomable; hover tells each pixel's importance."""
    figure = go.Figure(go.Image(z=np.asarray(seen.convert("RGB")), hoverinfo="skip"))
    figure.add_trace(go.Heatmap(z=values, colorscale=colormap, zmin=0, zmax=1, opacity=alpha, showscale=False,
                                hovertemplate="x %{x}, y %{y}<br>importance %{z:.2f}<extra></extra>"))
    figure.update_xaxes(visible=False, constrain="domain")
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    figure.update_layout(height=300, margin=dict(l=0, r=0, t=0, b=0))
    return figure


def curves_figure(scores: Faithfulness) -> go.Figure:
    """Deletion (should fall fast) and insertion (should rise fast) of the target's score."""
    figure = go.Figure()
    for name, values, color in (("deletion", scores.deletion, "#e45756"), ("insertion", scores.insertion, "#4c78a8")):
        figure.add_trace(go.Scatter(x=scores.fractions, y=values, name=name, mode="lines", line=dict(color=color),
                                    hovertemplate="%{x:.0%} of pixels: %{y:.3f}<extra>" + name + "</extra>"))
    figure.update_layout(height=180, margin=dict(l=0, r=0, t=10, b=0), xaxis=dict(tickformat=".0%", title=None),
                         yaxis=dict(title=scores.score_name), legend=dict(orientation="h", y=1.15, x=0))
    return figure


def sanity_figure(checks: Sequence[SanityCheck], measure: str) -> go.Figure:
    """Each method's similarity to its original map as the model's layers are re-initialized, from the
    output down (the original itself at 1); the flag's threshold dashed for the Spearman correlation."""
    figure = go.Figure()
    steps: list[str] = []
    for check in sorted(checks, key=lambda check: -len(check.steps)):  # the longest list of steps orders the axis
        steps += [step for step in check.steps if step not in steps]
    for check in checks:
        figure.add_trace(go.Scatter(x=["original", *check.steps], y=[1.0, *check.similarity(measure)], name=check.title,
                                    mode="lines+markers", hovertemplate="%{x}: %{y:.2f}<extra>" + check.title + "</extra>"))
    if measure == "spearman":
        figure.add_hline(y=checks[0].threshold, line_dash="dash", line_color="grey",
                         annotation_text="flag: still this similar once all above is randomized")
    mode = checks[0].mode
    figure.update_layout(height=320, margin=dict(l=0, r=0, t=10, b=0), yaxis=dict(title=MEASURES[measure], range=[-1, 1.05]),
                         xaxis=dict(title="re-initialized, from the output down" + (
                             " (each alone)" if mode == "independent" else " (cascading: the ones before stay so)"),
                             categoryorder="array", categoryarray=["original", *steps]),
                         legend=dict(orientation="h", y=1.1, x=0))
    return figure


def kernel_figure(kernel: np.ndarray, limit: float) -> go.Figure:
    """A kernel slice as a heatmap, red excitatory, blue inhibitory, values written on small ones."""
    small = kernel.size <= 9
    figure = go.Figure(go.Heatmap(
        z=kernel, zmin=-limit, zmax=limit, zmid=0, colorscale="RdBu", reversescale=True, showscale=False,
        texttemplate="%{z:.2f}" if small else None, textfont=dict(size=13),
        hovertemplate="row %{y}, column %{x}<br>weight %{z:.4g}<extra></extra>"))
    figure.update_xaxes(visible=False, constrain="domain")
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    figure.update_layout(height=KERNEL_SIDE, margin=dict(l=0, r=0, t=0, b=0))
    return figure


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


def parts_figure(seen: Image.Image, strengths: np.ndarray, colours: Sequence[str], names: Sequence[str],
                 height: int = 300) -> go.Figure:
    """Parts' maps (h, w, k) over the image (CRAFT's concepts, neuron groups), each pixel in the colour of
    the part strongest there, zoomable; hover names the part strongest in each cell of the layer's map."""
    rows, columns = strengths.shape[:2]
    figure = go.Figure(go.Image(z=np.asarray(parts_overlay(seen, strengths, colours)), hoverinfo="skip"))
    strongest = strengths.argmax(axis=-1)
    figure.add_trace(go.Heatmap(  # invisible, one cell per map position: what hover reads
        z=strengths.max(axis=-1), customdata=np.asarray(names, dtype=object)[strongest], opacity=0, showscale=False,
        x0=(seen.width / columns - 1) / 2, dx=seen.width / columns, y0=(seen.height / rows - 1) / 2,
        dy=seen.height / rows, hovertemplate="%{customdata}<br>strength %{z:.3g}<extra></extra>"))
    figure.update_xaxes(visible=False, constrain="domain")
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    figure.update_layout(height=height, margin=dict(l=0, r=0, t=0, b=0))
    return figure
