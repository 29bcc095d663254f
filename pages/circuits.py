"""Circuits: which channels of the previous layer drive a filter, through which weights (Distill's
Circuits, for one unit): ranked kernel slices, excitatory or inhibitory, with each channel's own
feature visualization."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from convvis_core.circuits import Circuit, circuit, circuit_layers, linear_conv
from convvis_core.presentation.sheets import kernel_images
from convvis_core.featureviz import PRESETS
from convvis_core.presentation.filter_grids import state, tile_image
from convvis_core.images import as_model_sees_it
from convvis_core.graph import activation_name
from convvis_core.layers import SpatialLayer, get_layer
from convvis_core.models import LoadedModel, ModelInfo
from convvis_ui import links
from convvis_ui.cached import cached
from convvis_ui.charts import kernel_figure
from convvis_ui.feedback import user_errors
from convvis_ui.image_input import ChosenImage, image_picker
from convvis_ui.page import start_page
from convvis_ui.pickers import filter_picker, layer_picker
from convvis_ui.shared_views import pictures
from convvis_ui.unit_views import SIGN_COLOURS  # the Unit page colours signs alike

PREVIEW = PRESETS["quick preview"]


def convolved_layers(loaded: LoadedModel) -> list[SpatialLayer]:
    return circuit_layers(loaded.model)


def traced(loaded: LoadedModel, image: Image.Image | None, **settings) -> Circuit:
    return circuit(loaded, image=image, **settings)


def first_kernels(loaded: LoadedModel, layer: str) -> np.ndarray:
    """A first layer's kernels as pictures, one per filter."""
    return kernel_images(linear_conv(loaded.model, layer), loaded.info.preprocessing)


def page_links(container, layer: str, channel: int, key: str) -> None:
    """Links opening a channel on its unit page, and on the Filters and Activations pages."""
    links.unit_link(container, layer, channel, "Unit page")
    if container.button("Filters", key=f"filters_{key}", icon=":material/tune:", width="stretch",
                        help=f"Open {layer} #{channel} on the Filters page"):
        links.open_filters(layer, str(channel))
    if container.button("Activations", key=f"maps_{key}", icon=":material/grid_on:", width="stretch",
                        help=f"Show #{channel}'s feature map on an image (Activations page)"):
        links.open_activations(layer, channel)


# The filter to trace and how: feature visualization steps, inputs shown, the ranking.
Controls = NamedTuple("Controls", [("steps", int), ("layer", str), ("filter_index", int), ("top", int),
                                   ("ranking", str)])


def read_controls(loaded: LoadedModel, by_path: dict) -> Controls:
    info = loaded.info
    activated = [path for path in by_path if activation_name(get_layer(loaded.model, path))] or list(by_path)
    steps = st.sidebar.slider("Feature visualization steps", 8, 256, PREVIEW.steps, 8, key="circuit_steps",
                              help="The quick preview preset; more steps give cleaner pictures (cached on disk).")
    controls = st.columns([3, 1, 1, 2])
    layer = layer_picker("circuits", info.key, by_path, activated[len(activated) // 2], container=controls[0],
                         remember=True, help="Layers whose filters come from a convolution (BatchNorm/activation "
                                             "after a conv included).")
    filter_index = filter_picker("circuits", info.key, layer, by_path[layer].channels, container=controls[1])
    top = controls[2].slider("Inputs shown", 1, 12, 6, key="circuit_top")
    ranking = controls[3].radio("Rank inputs by", ["weight", "contribution"], horizontal=True, key="circuit_ranking",
                                format_func={"weight": "kernel norm", "contribution": "contribution on an image"}.get,
                                help="Contribution: the slice times the input channel's map on your image, averaged "
                                     "over the filter's output map.")
    return Controls(steps, layer, filter_index, top, ranking)


def contribution_image(info: ModelInfo) -> ChosenImage:
    """The image the inputs' contributions are measured on, and how the model sees it."""
    picker, preview = st.columns([2, 1])
    with picker:
        chosen = image_picker(info, key="circuits")
    seen = as_model_sees_it(chosen.image, info, chosen.fit)
    preview.image(seen, caption=f"{chosen.label}, as the model sees it", width=min(224, max(seen.width, 112)))
    return chosen


def head_view(loaded: LoadedModel, found: Circuit, view: Controls, head_picture) -> None:
    """The filter's own picture and links, and how it reads its inputs, with the ranked table."""
    layer, filter_index = view.layer, view.filter_index
    head, facts = st.columns([1, 3], gap="large")
    head.image(tile_image(head_picture), width="stretch", caption=f"{layer} #{filter_index}{state(head_picture)}")
    page_links(head, layer, filter_index, "head")
    if found.source is None:
        kernels = cached(first_kernels, loaded, layer=layer)
        head.image(Image.fromarray(kernels[filter_index]).resize((128, 128), Image.NEAREST),
                   caption="its kernel, as an image")
    with facts:
        if found.depthwise:
            how = (f"**{found.conv}** (1×1) after **{found.depthwise}** (depthwise), composed into one kernel "
                   "(the ReLU between them is left out: the usual linear approximation)")
        else:
            how = f"**{found.conv}** ({type(get_layer(loaded.model, found.conv)).__name__})"
        reads = f"the channels of **{found.source}**" if found.source else "the image's channels"
        st.markdown(f"Filter {filter_index} of **{layer}** comes from {how}, reading {reads}. Bias {found.bias:+.3g}.")
        ranked = "contribution on the image" if found.ranked_by == "contribution" else "kernel-slice L2 norm"
        table = pd.DataFrame(found.table(view.top)).drop(columns="name" if found.source else "channel")
        st.markdown(f"**Top {len(found.top(view.top))} of {len(found.inputs)} inputs by {ranked}**")
        st.dataframe(table, hide_index=True, column_config={name: st.column_config.NumberColumn(format="%.4f")
                                                            for name in ("norm", "sum", "contribution")})


def inputs_view(found: Circuit, shown: list, input_pictures) -> None:
    """The strongest inputs: each one's picture, sign, kernel slice and numbers."""
    st.subheader(f"Strongest inputs from {found.source or 'the image'}")
    limit = max(float(np.abs(channel.kernel).max()) for channel in shown) or 1.0
    for column, channel, picture in zip(st.columns(max(len(shown), 4)), shown, input_pictures or [None] * len(shown)):
        if picture is not None:
            column.image(tile_image(picture), width="stretch", caption=channel.name + state(picture))
        else:
            column.markdown(f"**{channel.name}**")
        column.badge(channel.sign, color=SIGN_COLOURS[channel.sign])
        column.plotly_chart(kernel_figure(channel.kernel, limit), key=f"kernel_{channel.index}",
                            config={"displayModeBar": False})
        numbers = f"norm {channel.norm:.2g} · sum {channel.total:+.2g}"
        if channel.contribution is not None:
            numbers += f" · contribution {channel.contribution:+.3g}"
        column.caption(numbers)
        if found.source is not None:
            page_links(column, found.source, channel.index, str(channel.index))


def kernels_view(loaded: LoadedModel, layer: str) -> None:
    """A first layer's kernels, which read the image, as pictures."""
    kernels = cached(first_kernels, loaded, layer=layer)
    st.subheader(f"Every kernel of {layer}")
    st.caption("First-layer filters read the image, so their kernels are pictures, each stretched to 0..255 on "
               "its own, as the first layer's filter coefficients are usually shown.")
    st.image([Image.fromarray(kernel).resize((48, 48), Image.NEAREST) for kernel in kernels],
             caption=[f"#{index}" for index in range(len(kernels))], width=48)


def main() -> None:
    start = start_page("Circuits", "A filter is a weighted sum of the previous layer's channels. Its kernel slice per "
                       "input channel says how: a large norm means the filter listens to that channel, a positive sum "
                       "that the channel excites it, a negative one that it inhibits it. BatchNorm is folded into the "
                       "weights; MobileNet's depthwise + pointwise pairs are composed into one 3×3 kernel.",
                       "convolution with filters to trace, so it has no circuits",
                       layers=lambda loaded: cached(convolved_layers, loaded))
    loaded, view = start.loaded, read_controls(start.loaded, start.layers)
    layer, filter_index = view.layer, view.filter_index
    chosen = contribution_image(loaded.info) if view.ranking == "contribution" else None
    with user_errors(stop=True):
        found: Circuit = cached(traced, loaded, chosen and chosen.image, spinner="Reading the weights…", entries=64,
                                layer=layer, filter_index=filter_index, fit=chosen.fit if chosen else "stretch")
    shown = found.top(view.top)
    if found.zero_weights:
        st.warning(f"Filter {filter_index}'s weights are all about zero (next to the other filters of {layer}): nothing "
                   f"drives it, its output is its bias ({found.bias:+.3g}). The kernels below are rounding noise.")
    with user_errors(stop=True):
        requests = [(layer, [filter_index])] + ([(found.source, [channel.index for channel in shown])] if found.source else [])
        found_pictures = pictures(loaded, requests, {"quick preview": PREVIEW.replace(steps=view.steps)})  # steps asked
    head_view(loaded, found, view, found_pictures[0][0])
    inputs_view(found, shown, found_pictures[1] if found.source else None)
    if found.source is None:
        kernels_view(loaded, layer)


main()
