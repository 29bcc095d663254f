"""Compare: what fine-tuning (or another run, or pruning) changed, layer by layer and filter by filter.

Model A is the sidebar's, model B this page's second picker; both are named in the URL
(``/compare?model=A&other=B``). One streamed pass over a dataset's images gives the linear CKA of
every pair of layers at the same path (optionally every layer × layer pair) and every filter's
activation change; weight changes come from the weights themselves.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from convvis_core.cam.methods import heatmap
from convvis_core.cam.targets import ClassTarget
from convvis_core.compare.changes import change_text, layer_summaries
from convvis_core.compare.similarity import Similarity, choose_layers, compare_models
from convvis_core.featureviz.presets import by_preference
from convvis_core.images import as_model_sees_it
from convvis_core.models import MODELS, LoadedModel
from convvis_core.layers import default_layer
from convvis_core.presentation.comparisons import difference_overlay
from convvis_core.presentation.overlays import overlay
from convvis_core.presentation.filter_grids import tile_image
from convvis_core.batches import scan_count
from convvis_ui import help_text, links
from convvis_ui.cached import image_bytes, shown_once, top5
from convvis_ui.dataset_picker import pick_dataset, report_skipped
from convvis_ui.feedback import user_errors
from convvis_ui.image_input import image_picker
from convvis_ui.other_model import other_model_picker
from convvis_ui.page import start_page
from convvis_ui.pickers import layer_picker
from convvis_ui.shared_views import pictures

DEFAULT_IMAGES = 500
SHOWN_FILTERS = 8
RUN = "compare_run"


def _similarity(a: LoadedModel, b: LoadedModel, dataset, count: int, matrix: bool) -> Similarity:
    """The comparison, its pass's progress shown while it runs. The core keeps it on disk (a rerun reads it back
    at once), so no st.cache_data here: that would replay the status box as first drawn, spinning for ever."""
    with st.status(f"Running both models over {count:,} images…", expanded=True) as status:
        bar = st.progress(0.0)
        result = compare_models(a, b, dataset, count, matrix=matrix,
                                progress=lambda done, total: bar.progress(done / total, f"{done:,} / {total:,} images"))
        status.update(label=f"Compared over {count:,} images{' (cached)' if result.from_cache else ''}",
                      state="complete", expanded=False)
    return result


def _cka_chart(result: Similarity) -> None:
    figure = go.Figure(go.Heatmap(z=result.cka, x=list(result.layers_b), y=list(result.layers_a), zmin=0, zmax=1,
                                  colorscale="Viridis", colorbar={"title": "CKA"}))
    figure.update_layout(height=max(300, 22 * len(result.layers_a) + 120), yaxis={"autorange": "reversed"},
                         xaxis_title="model B", yaxis_title="model A", margin={"l": 10, "r": 10, "t": 10, "b": 10})
    st.plotly_chart(figure, width="stretch")


def _same_image(a: LoadedModel, b: LoadedModel, result: Similarity) -> None:
    """One image through both: the top-5 of each, Grad-CAM of each for A's top class, and the difference."""
    st.subheader("Same image, both models")
    chosen = image_picker(a.info, key="compare_image")
    left, right = st.columns(2)
    with user_errors():
        for column, loaded, name in ((left, a, "A"), (right, b, "B")):
            column.markdown(f"**{name}: {loaded.info.display_name}**")
            column.dataframe([{"class": p.class_name, "probability": p.probability}
                              for p in top5(loaded, chosen.image, chosen.fit)], hide_index=True)
    if not (a.info.is_classifier and b.info.is_classifier):
        return
    target = None
    with user_errors():
        target = ClassTarget(top5(a, chosen.image, chosen.fit)[0].class_index)
    if target is None:  # the image could not be read: said above
        return
    seen = as_model_sees_it(chosen.image, a.info, chosen.fit)
    matched = result.matched
    if not matched:
        return
    preferred = default_layer(a.model).path
    layer = layer_picker("compare_cam", a.info.key, matched, preferred if preferred in matched else matched[-1],
                         label="Grad-CAM layer (in both models)")
    maps = []
    columns = st.columns(3)
    for column, loaded, path, name in zip(columns, (a, b), (layer, result.counterpart(layer)), "AB"):
        with column, user_errors():  # one model without a map here leaves the other's shown
            found = heatmap(loaded, chosen.image, "gradcam", target, path, fit=chosen.fit).values
            column.image(image_bytes(overlay(seen, found)), caption=f"Grad-CAM, {name}", width="stretch")
            maps.append(found)
    if len(maps) == 2:
        columns[2].image(image_bytes(difference_overlay(seen, *maps)), caption="difference |B − A|", width="stretch")


def _controls(a: LoadedModel):
    """Model B, the images, how many, and whether to pair every layer; None until Compare is first pressed."""
    b = other_model_picker(a.info.key)
    dataset = pick_dataset("compare", a.info.key, a.info.reads_digits, label="Images")
    report_skipped(dataset)
    with user_errors(stop=True):
        choose_layers(a, b, None, matrix=True)  # different inputs: a message now, not after the pass
    top = scan_count(dataset, None)
    count = top if top <= 8 else st.slider("Images to compare on", 8, top, min(DEFAULT_IMAGES, top),
                                           key=f"compare_count_{dataset.identity}")
    matrix = st.toggle("All pairs (layer × layer matrix)", key="compare_matrix")
    if not st.button("Compare", type="primary", key=RUN) and not st.session_state.get(f"_{RUN}_done"):
        st.info(f"**A:** {a.info.display_name} · **B:** {b.info.display_name}. Press Compare to run both over "
                f"{count:,} images.")
        return None
    st.session_state[f"_{RUN}_done"] = True
    return b, dataset, count, matrix


def _layer_rows(a: LoadedModel, b: LoadedModel, result: Similarity) -> tuple[list[dict], dict]:
    """Each matched layer's row of the table (CKA, mean weight and activation change) and its filters' changes."""
    summaries = layer_summaries(a, b, result)
    measured = lambda value: value if value == value else None  # noqa: E731  (NaN: not measured, an empty cell)
    rows = [{"layer": summary.layer, **({"B's layer": summary.counterpart} if result.matching.lines() else {}),
             "CKA": summary.cka, "mean weight change": measured(summary.weight_change),
             "mean activation change": measured(summary.activation_change)} for summary in summaries]
    return rows, {summary.layer: summary.filters for summary in summaries}


def main() -> None:
    a = start_page("Compare", help_text.COMPARE_INTRO, lacking=None).loaded
    chosen = _controls(a)
    if chosen is None:
        return
    b, dataset, count, matrix = chosen
    with user_errors(stop=True):
        result = _similarity(a, b, dataset, count, matrix)
    st.subheader("Layer similarity (linear CKA)")
    for line in result.matching.lines():
        st.caption(line)
    rows, changes = _layer_rows(a, b, result)
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch")
    if matrix:
        shown_once(("compare-matrix", a.identity, b.identity, dataset.identity, count, matrix), lambda: _cka_chart(result))
    if changes:
        _changed_filters(a, b, changes, result)
    _same_image(a, b, result)


def _changed_filters(a: LoadedModel, b: LoadedModel, changes: dict, result: Similarity) -> None:
    """The most changed filters of one layer, each with both models' feature visualizations (the same
    preset and seed, from the shared picture cache) and a link to each model's unit page."""
    st.subheader("Filters that changed most")
    layer = layer_picker("compare", a.info.key, list(changes), next(iter(changes)))
    rows = changes[layer][:SHOWN_FILTERS]
    name, settings = next(iter(by_preference(a.info.input_size).items()))
    drawn = {}
    if st.toggle(f"Feature visualizations of A and B ({name} preset)", value=True, key="compare_pictures"):
        with user_errors():
            filters = [row.filter for row in rows]
            drawn = {model: pictures(model, [(path, filters)], {name: settings})[0]
                     for model, path in ((a, layer), (b, result.counterpart(layer)))}
    for number, row in enumerate(rows):
        text, left, right = st.columns([2, 1, 1])
        text.markdown(f"**#{row.filter}** · activation change {change_text(row.activation_change)} · "
                      f"weight change {change_text(row.weight_change)}")
        for column, model, tag in ((left, a, "A"), (right, b, "B")):
            if drawn:
                column.image(tile_image(drawn[model][number]), width="stretch")
            if tag == "A":  # A and B may be the same model object
                links.unit_link(column, layer, row.filter, label=f"A: {layer} #{row.filter}")
            elif b.info.key in MODELS:  # an upload has no URL: its unit page is reached by picking it in the sidebar
                theirs = result.counterpart(layer)
                column.page_link(str(links.UNIT.file), label=f"B: {theirs} #{row.filter}", icon=links.UNIT.icon,
                                 query_params={"model": b.info.key, "layer": theirs, "filter": str(row.filter)})

main()
