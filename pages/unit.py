"""Unit: everything about one filter on one screen, at one URL (OpenAI Microscope's unit page, for any
model, offline, with heatmaps and circuits beside the pictures): ``/unit?model=…&layer=…&filter=…``."""

from __future__ import annotations

import numpy as np
import streamlit as st

from convvis_core.activations import feature_maps
from convvis_core.presentation.overlays import overlay
from convvis_core.cam import FilterTarget, heatmap
from convvis_core.cam.base import EmptyHeatmapError
from convvis_core.circuits import wiring
from convvis_core.config import TOPK_KEPT
from convvis_core.errors import ConvVisError
from convvis_core.featureviz.presets import by_preference
from convvis_core.presentation.filter_grids import state, tile_image
from convvis_core.images import as_model_sees_it
from convvis_core.layers import default_layer
from convvis_core.topk import cached_index, scan
from convvis_ui import help_text, links
from convvis_ui.feedback import user_errors
from convvis_ui.image_input import image_picker
from convvis_ui.page import start_page
from convvis_ui.pickers import unit_request
from convvis_ui.shared_views import builtin_dataset, pictures, show_examples, views
from convvis_ui.unit_views import connection_row, different_pictures

CONNECTIONS = 6  # inputs and readers shown
EXAMPLES = 5
SCAN = 500  # images scanned on the page when no atlas or earlier scan has an index


def _step_links(by_path: dict, layer: str, filter_index: int) -> None:
    """Links to the previous and next filter, the previous and next layer, and the whole layer."""
    paths, step = list(by_path), st.columns(5)
    position = paths.index(layer)
    if filter_index > 0:
        links.unit_link(step[0], layer, filter_index - 1, f"previous filter (#{filter_index - 1})")
    if filter_index + 1 < by_path[layer].channels:
        links.unit_link(step[1], layer, filter_index + 1, f"next filter (#{filter_index + 1})")
    for column, other, side in ((step[2], position - 1, "previous"), (step[3], position + 1, "next")):
        if 0 <= other < len(paths):
            links.unit_link(column, paths[other], min(filter_index, by_path[paths[other]].channels - 1),
                            f"{side} layer ({paths[other]})")
    links.layer_link(step[4], layer, "all filters of this layer")


def _wiring(loaded, layer: str, filter_index: int):
    """The filter's circuit in, its readers and its weights; all None (said on the page) for a layer without weights."""
    with user_errors():
        try:
            return wiring(loaded, layer, filter_index)
        except ConvVisError as error:  # a pooling or input layer: no weights of its own
            st.caption(f"No weights to read here: {error}")
    return None, None, None


def _show_own(layer: str, filter_index: int, own, inputs, weights) -> None:
    """The filter's picture beside what it reached, its weights, and a link to the Filters page."""
    picture, facts = st.columns([1, 2], gap="large")
    picture.image(tile_image(own), width="stretch", caption=f"{layer} #{filter_index}{state(own)} · {own.preset} preset")
    with facts:
        reached = st.columns(3)
        reached[0].metric("Activation reached", f"{own.final_activation:.4g}",
                          f"{own.final_activation - own.start_activation:+.3g} from start")
        if weights is not None:
            reached[1].metric("Weight norm", f"{weights.norm:.3g}", help="L2 norm of its effective kernel")
            reached[1].caption(f"rank {weights.rank} of {weights.filters} in {layer}")
            reached[2].metric("Bias", f"{weights.bias:+.3g}")
            st.caption(f"Effective kernel (BatchNorm folded{', depthwise composed' if inputs.depthwise else ''}): "
                       f"mean {weights.mean:+.3g}, min {weights.minimum:+.3g}, max {weights.maximum:+.3g}.")
        if own.dead:
            st.warning("Dead: no change to the image moves this filter (zero gradient).")
        elif own.weak:
            st.info(help_text.WEAK_UNIT)
        if st.button("Open on the Filters page (other presets, more steps)", icon=":material/tune:"):
            links.open_filters(layer, str(filter_index))


def _pictures_of(loaded, layer: str, filter_index: int, presets: dict, inputs, outputs):
    """In one request: the filter's picture, and the strongest connections in and out with theirs."""
    requests = [(layer, [filter_index])]
    shown_inputs = [] if inputs is None else list(inputs.top(CONNECTIONS))
    shown_readers = [] if outputs is None else list(outputs.top(CONNECTIONS))
    if inputs is not None and inputs.source:
        requests.append((inputs.source, [c.index for c in shown_inputs]))
    if shown_readers:
        requests.append((outputs.reader_layer, [c.index for c in shown_readers]))
    with user_errors(stop=True):
        found = pictures(loaded, requests, presets)
    return (found[0][0], shown_inputs, found[1] if inputs is not None and inputs.source else [None] * len(shown_inputs),
            shown_readers, found[-1] if shown_readers else [])


def _show_circuits(filter_index: int, inputs, outputs, connections) -> None:
    """The strongest filters that drive this one, and those it drives."""
    shown_inputs, input_pictures, shown_readers, reader_pictures = connections
    st.subheader("Circuit in: what drives it")
    st.caption("—" if inputs is None else help_text.CIRCUIT_IN.format(count=len(inputs.inputs), conv=inputs.conv,
                                                                       source=inputs.source or "the image"))
    if inputs is not None:
        connection_row(shown_inputs, input_pictures, inputs.source)
    st.subheader("Circuit out: what it drives")
    st.caption(help_text.CIRCUIT_OUT.format(reader=outputs.reader_layer, filter=filter_index) if shown_readers
               else help_text.NO_READERS)
    if shown_readers:
        connection_row(shown_readers, reader_pictures, outputs.reader_layer)


def _where_it_fires(loaded, layer: str, filter_index: int, inputs) -> None:
    """The filter's map over the user's image, and the image's Grad-CAM (or saliency) for the filter."""
    st.subheader("Where it fires on your image")
    pick, maps = st.columns([1, 2], gap="large")
    with pick:
        chosen = image_picker(loaded.info, key="unit")
    seen = as_model_sees_it(chosen.image, loaded.info, chosen.fit)
    with maps, user_errors():
        activation = feature_maps(loaded, chosen.image, [layer], chosen.fit)[layer][..., filter_index]
        shown = st.columns(2)
        shown[0].image(overlay(seen, activation, 0.5, "viridis"), width="stretch",
                       caption=f"its map over the image · max {activation.max():.3g}, mean {activation.mean():.3g}")
        cam_layer = inputs.source if inputs is not None and inputs.source else None
        try:
            cam = heatmap(loaded, chosen.image, "gradcam" if cam_layer else "saliency", FilterTarget(layer, filter_index),
                          cam_layer, chosen.fit)
            shown[1].image(overlay(seen, cam.values, 0.5, "jet"), width="stretch",
                           caption=f"Grad-CAM of the filter at {cam_layer}" if cam_layer else "input gradients (saliency)")
        except EmptyHeatmapError as error:
            shown[1].caption(str(error))


def _dataset_examples(loaded, layer: str, filter_index: int) -> None:
    """The images of a built-in dataset that excite the filter most and least (scanned here on request)."""
    st.subheader("Dataset examples")
    dataset = builtin_dataset("mnist" if loaded.info.reads_digits else "gallery")
    with user_errors(stop=True):
        index = cached_index(loaded, dataset, layer, min(len(dataset), SCAN))
        if index is None:
            if not st.button(f"Scan {min(len(dataset), SCAN):,} images of {dataset.name}", icon=":material/search:"):
                st.caption(f"No index of {layer} over {dataset.name} yet (an atlas makes one for every layer at once).")
                st.stop()
            with st.spinner("Scanning…"):
                index = scan(loaded, dataset, layer, min(len(dataset), SCAN))
        key = (loaded.identity, dataset.identity, layer, filter_index)
        k = min(EXAMPLES, TOPK_KEPT, index.count)
        for text, side in ((f"Top {k} of {index.count:,} images of {dataset.name}", index.top),
                           (f"Bottom {k}: the images #{filter_index} responds to least", index.bottom)):
            st.caption(text)
            show_examples(views(*key, tuple(side.examples(filter_index, k)), loaded, dataset))
        maxima = index.maxima[:, filter_index]
        st.caption(f"Its maximum over {index.count:,} images: median {np.median(maxima):.3g}, "
                   f"highest {maxima.max():.3g}; zero on {np.mean(maxima == 0):.0%} of them.")


def main() -> None:
    start = start_page("Unit", help_text.UNIT_INTRO, "layer with a spatial (4-D) output, so it has no filters")
    loaded, by_path = start.loaded, start.layers
    presets = by_preference(start.info.input_size)  # pictures under any preset are found; missing: the model's default
    layer, filter_index = unit_request(by_path, default_layer(loaded.model).path, start.info.display_name)
    _step_links(by_path, layer, filter_index)
    st.header(f"{layer} · filter {filter_index}")
    inputs, outputs, weights = _wiring(loaded, layer, filter_index)
    own, *connections = _pictures_of(loaded, layer, filter_index, presets, inputs, outputs)
    _show_own(layer, filter_index, own, inputs, weights)
    different_pictures(loaded, layer, filter_index, next(iter(presets.values())))
    _show_circuits(filter_index, inputs, outputs, connections)
    _where_it_fires(loaded, layer, filter_index, inputs)
    _dataset_examples(loaded, layer, filter_index)


main()
