"""Layer: every filter of one layer as a grid of pictures (from the atlas or earlier runs), missing ones as
placeholders with one button to compute them; each picture opens the filter's unit page."""

from __future__ import annotations

import numpy as np
import streamlit as st

from convvis_core.circuits import weight_norms
from convvis_core.errors import ConvVisError
from convvis_core.featureviz.presets import by_preference
from convvis_core.featureviz.render import cached_under
from convvis_core.presentation.filter_grids import state, tile_image
from convvis_core.layers import default_layer
from convvis_ui import links
from convvis_ui.feedback import user_errors
from convvis_ui.page import start_page
from convvis_ui.pickers import layer_picker
from convvis_ui.shared_views import pictures

PER_ROW = 8
PER_PAGE = 64
ORDERS = {"index": "filter index", "activation": "activation reached", "norm": "weight norm"}


def main() -> None:
    start = start_page("Layer", "Every filter of one layer at a glance: the pictures an atlas or earlier runs computed "
                       "(under any preset, the model's default first), the rest as placeholders. A picture's link opens its unit page.",
                       "layer with a spatial (4-D) output, so it has no filters")
    loaded, info, by_path = start.loaded, start.info, start.layers
    presets = by_preference(info.input_size)
    controls = st.columns([3, 2, 1])
    layer = layer_picker("layer", info.key, by_path, lambda: default_layer(loaded.model).path, container=controls[0],
                         warn_unknown=info.display_name, write_url=True)
    count = by_path[layer].channels
    order = controls[1].radio("Sort by", list(ORDERS), format_func=ORDERS.get, horizontal=True, key="layer_browser_order")

    with user_errors(stop=True):
        done = cached_under(loaded, layer, range(count), presets)
    missing = [f for f in range(count) if f not in done]
    if missing:
        st.caption(f"{len(done)} of {count} filters computed; {len(missing)} not yet.")
        if controls[2].button(f"Compute {len(missing)}", type="primary", icon=":material/play_arrow:",
                              help=f"Optimizes every missing filter with the {next(iter(presets))} preset; each is cached as it "
                                   "finishes. `convvis atlas` does whole models ahead of time, on Ray if you have one."):
            with user_errors(stop=True):
                done.update({r.filter_index: r for r in pictures(loaded, [(layer, missing)], presets)[0]})
            missing = []
    else:
        st.caption(f"All {count} filters computed.")

    filters = list(range(count))
    if order == "activation":  # computed ones by what they reached, strongest first; the rest after
        filters.sort(key=lambda f: -done[f].final_activation if f in done else np.inf)
    elif order == "norm":
        try:
            norms = weight_norms(loaded.model, layer)
            filters.sort(key=lambda f: -norms[f])
        except ConvVisError as error:
            st.caption(f"Not sorted by weight: {error}")
    pages = (count + PER_PAGE - 1) // PER_PAGE
    page = st.slider("Page", 1, pages, 1, key=f"layer_browser_page_{layer}") if pages > 1 else 1
    placeholder = np.full((96, 96), 235, np.uint8)
    shown = filters[(page - 1) * PER_PAGE:page * PER_PAGE]
    for start_index in range(0, len(shown), PER_ROW):
        for column, f in zip(st.columns(PER_ROW), shown[start_index:start_index + PER_ROW]):
            result = done.get(f)
            column.image(tile_image(result) if result else placeholder, width="stretch",
                         caption=f"{result.final_activation:.3g}{state(result)}" if result else "not computed")
            links.unit_link(column, layer, f, f"#{f}")


main()
