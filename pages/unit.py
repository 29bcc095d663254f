"""Unit: everything about one filter on one screen, at one URL (OpenAI Microscope's unit page, for any
model, offline, with heatmaps and circuits beside the pictures): ``/unit?model=…&layer=…&filter=…``."""

from __future__ import annotations

import numpy as np
import streamlit as st

from convvis_core.activations import feature_maps
from convvis_core.presentation.overlays import overlay
from convvis_core.cam import FilterTarget, heatmap
from convvis_core.cam.base import EmptyHeatmapError
from convvis_core.circuits import circuit, filter_weights, readers
from convvis_core.config import TOPK_KEPT
from convvis_core.errors import ConvVisError
from convvis_core.featureviz.presets import by_preference
from convvis_core.featureviz.render import diverse_pictures
from convvis_core.presentation.filter_grids import state, tile_image
from convvis_core.images import as_model_sees_it
from convvis_core.layers import default_layer
from convvis_core.topk import cached_index, scan
from convvis_ui import links
from convvis_ui.feedback import user_errors
from convvis_ui.image_input import image_picker
from convvis_ui.page import start_page
from convvis_ui.pickers import unit_request
from convvis_ui.shared_views import builtin_dataset, pictures, show_examples, views

CONNECTIONS = 6  # inputs and readers shown
EXAMPLES = 5
SCAN = 500  # images scanned on the page when no atlas or earlier scan has an index
DIVERSE_COUNT = "unit_diverse_count"  # widget keys of "Different pictures of this filter"
DIVERSE_RUN = "unit_diverse_run"
SIGN_COLOURS = {"excitatory": "red", "inhibitory": "blue", "zero": "gray"}


def connection_row(connections, found_pictures, layer_of) -> None:
    """Each connected filter: its picture, sign, weight and a link to its own unit page."""
    limit = max((abs(c.total) for c in connections), default=1.0) or 1.0
    for column, connection, result in zip(st.columns(max(len(connections), 4)), connections, found_pictures):
        if result is not None:
            column.image(tile_image(result), width="stretch")
        column.badge(connection.sign, color=SIGN_COLOURS[connection.sign])
        column.caption(f"norm {connection.norm:.2g} · sum {connection.total:+.2g}")
        column.progress(min(1.0, abs(connection.total) / limit))
        if layer_of is not None:
            links.unit_link(column, layer_of, connection.index)
        else:
            column.markdown(f"**{connection.name}**")


def different_pictures(loaded, layer: str, filter_index: int, settings) -> None:
    """Lucid's diversity objective: 2–4 pictures of this filter optimized together, pushed apart."""
    st.subheader("Different pictures of this filter")
    count_column, run_column = st.columns([1, 3])
    count = int(count_column.number_input("How many", 2, 4, 3, key=DIVERSE_COUNT,
                                          help="Optimized together under the model's default preset, each from its "
                                               "own start; Lucid's diversity objective pushes their layer "
                                               "statistics (Gram matrices) apart, so each shows another facet."))
    shown = repr(("diverse", loaded.identity, layer, filter_index, count, sorted(settings.result_part().items())))
    if run_column.button("Make different pictures", key=DIVERSE_RUN, icon=":material/diversity_3:"):
        with user_errors(), st.spinner("Optimizing…"):
            st.session_state[shown] = diverse_pictures(loaded, layer, filter_index, count, settings)
    results = st.session_state.get(shown)
    if results:
        for column, result in zip(st.columns(count), results):
            column.image(tile_image(result), width="stretch", caption=f"activation {result.final_activation:.3g}")


def main() -> None:
    start = start_page("Unit", "One filter: what it looks for, which images excite it, where it fires on yours, what "
                       "drives it and what it drives. Every filter named here links to its own page.",
                       "layer with a spatial (4-D) output, so it has no filters")
    loaded, info, by_path = start.loaded, start.info, start.layers
    presets = by_preference(info.input_size)  # pictures computed under any preset are found; missing: the model's default
    paths = list(by_path)
    layer, filter_index = unit_request(by_path, default_layer(loaded.model).path, info.display_name)
    count = by_path[layer].channels

    position = paths.index(layer)
    step = st.columns(5)
    if filter_index > 0:
        links.unit_link(step[0], layer, filter_index - 1, f"previous filter (#{filter_index - 1})")
    if filter_index + 1 < count:
        links.unit_link(step[1], layer, filter_index + 1, f"next filter (#{filter_index + 1})")
    if position > 0:
        links.unit_link(step[2], paths[position - 1], min(filter_index, by_path[paths[position - 1]].channels - 1),
                        f"previous layer ({paths[position - 1]})")
    if position + 1 < len(paths):
        links.unit_link(step[3], paths[position + 1], min(filter_index, by_path[paths[position + 1]].channels - 1),
                        f"next layer ({paths[position + 1]})")
    links.layer_link(step[4], layer, "all filters of this layer")

    st.header(f"{layer} · filter {filter_index}")
    with user_errors():
        try:
            inputs = circuit(loaded, layer, filter_index)
            outputs = readers(loaded.model, layer, filter_index)
            weights = filter_weights(loaded.model, layer, filter_index)
        except ConvVisError as error:  # a pooling or input layer: no weights of its own
            inputs = outputs = weights = None
            st.caption(f"No weights to read here: {error}")

    requests = [(layer, [filter_index])]
    shown_inputs = [] if inputs is None else list(inputs.top(CONNECTIONS))
    shown_readers = [] if outputs is None else list(outputs.top(CONNECTIONS))
    if inputs is not None and inputs.source:
        requests.append((inputs.source, [c.index for c in shown_inputs]))
    if shown_readers:
        requests.append((outputs.reader_layer, [c.index for c in shown_readers]))
    with user_errors(stop=True):
        found = pictures(loaded, requests, presets)
    own = found[0][0]
    input_pictures = found[1] if inputs is not None and inputs.source else [None] * len(shown_inputs)
    reader_pictures = found[-1] if shown_readers else []

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
            st.info("Weak under this recipe: what was maximized stayed below zero. Try plain pixels on the Filters page.")
        if st.button("Open on the Filters page (other presets, more steps)", icon=":material/tune:"):
            links.open_filters(layer, str(filter_index))


    different_pictures(loaded, layer, filter_index, next(iter(presets.values())))

    st.subheader("Circuit in: what drives it")
    if inputs is None:
        st.caption("—")
    else:
        st.caption(f"The strongest of {len(inputs.inputs)} input channels of **{inputs.conv}**, reading "
                   f"{inputs.source or 'the image'} (kernel-slice norm; the sign of the slice's sum).")
        connection_row(shown_inputs, input_pictures, inputs.source)

    st.subheader("Circuit out: what it drives")
    if not shown_readers:
        st.caption("No later convolution reads this filter (a classifier head or a sum reads it).")
    else:
        st.caption(f"The filters of **{outputs.reader_layer}** that read #{filter_index} most strongly, by the norm of "
                   "the kernel slice through which they read it.")
        connection_row(shown_readers, reader_pictures, outputs.reader_layer)

    st.subheader("Where it fires on your image")
    pick, maps = st.columns([1, 2], gap="large")
    with pick:
        chosen = image_picker(info, key="unit")
    seen = as_model_sees_it(chosen.image, info, chosen.fit)
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

    st.subheader("Dataset examples")
    dataset = builtin_dataset("mnist" if info.reads_digits else "gallery")
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
        st.caption(f"Top {k} of {index.count:,} images of {dataset.name}")
        show_examples(views(*key, tuple(index.top.examples(filter_index, k)), loaded, dataset))
        st.caption(f"Bottom {k}: the images #{filter_index} responds to least")
        show_examples(views(*key, tuple(index.bottom.examples(filter_index, k)), loaded, dataset))
        maxima = index.maxima[:, filter_index]
        st.caption(f"Its maximum over {index.count:,} images: median {np.median(maxima):.3g}, "
                   f"highest {maxima.max():.3g}; zero on {np.mean(maxima == 0):.0%} of them.")


main()
