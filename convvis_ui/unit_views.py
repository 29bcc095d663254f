"""The Unit page's two composite views: a row of connected filters (a circuit's inputs or readers), and
Lucid-style diverse pictures of one filter, made on request and kept for the session."""

from __future__ import annotations

import streamlit as st

from convvis_core.featureviz.render import diverse_pictures
from convvis_core.presentation.filter_grids import tile_image
from convvis_ui import help_text, links
from convvis_ui.feedback import user_errors

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
    count = int(count_column.number_input("How many", 2, 4, 3, key=DIVERSE_COUNT, help=help_text.DIVERSE_HELP))
    shown = repr(("diverse", loaded.identity, layer, filter_index, count, sorted(settings.result_part().items())))
    if run_column.button("Make different pictures", key=DIVERSE_RUN, icon=":material/diversity_3:"):
        with user_errors(), st.spinner("Optimizing…"):
            st.session_state[shown] = diverse_pictures(loaded, layer, filter_index, count, settings)
    results = st.session_state.get(shown)
    if results:
        for column, result in zip(st.columns(count), results):
            column.image(tile_image(result), width="stretch", caption=f"activation {result.final_activation:.3g}")
