"""Heatmaps: where in the picture the model looked, by several methods side by side, each with a
faithfulness score (deletion and insertion curves) that says which map to trust."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from convvis_core.cam import (BASELINES, DEFAULT_METHODS, METHODS, ClassTarget, FilterTarget,
                              OutputNormTarget, OutputUnitTarget, Region, RegionTarget, Target, method_named)
from convvis_core.cam.faithfulness import STEPS
from convvis_core.cam.methods import settings_for
from convvis_core.cam.scoring import ScoredHeatmap, explain_and_score, verdict
from convvis_core.cam.targets import check_target, score_name, similarity_target, strongest_filter
from convvis_core.images import png_zip, to_png_bytes
from convvis_core.layers import default_layer
from convvis_core.presentation.overlays import legend, mask_overlay, overlay
from convvis_core.segmentation import class_map, predicted_region
from convvis_core.models import LoadedModel
from convvis_ui.cached import cached, image_bytes, image_key, shown_once, top5
from convvis_ui.charts import curves_figure, map_figure
from convvis_ui.feedback import user_errors
from convvis_ui.help_text import BASELINE_HELP, METHODS_HELP
from convvis_ui.image_input import ChosenImage, reference_picker
from convvis_ui.method_settings import read_settings
from convvis_ui.page import start_page
from convvis_ui.pickers import filter_picker, layer_picker
from convvis_ui.shared_views import seen_image, top5_table
from convvis_ui.trust_views import trust_view

COLORMAPS = ("jet", "viridis", "inferno", "gray")  # names both plotly and matplotlib know
PER_ROW = 3


def overlay_png(seen: Image.Image, values: np.ndarray, alpha: float, colormap: str) -> bytes:
    return to_png_bytes(overlay(seen, values, alpha, colormap))


def overlays_zip(seen: Image.Image, maps: dict[str, np.ndarray], alpha: float, colormap: str) -> bytes:
    """Every map over the image, one PNG each, named by the keys of ``maps``."""
    return png_zip({name: overlay(seen, values, alpha, colormap) for name, values in maps.items()})


def class_picker(names: Sequence[str], start: int, label: str, key: str) -> int:
    return int(st.selectbox(label, range(len(names)), index=start, format_func=lambda i: f"{names[i]} ({i})", key=key))


def choose_target(loaded: LoadedModel, seen: Image.Image, digest: str, by_path: dict, last: str,
                  predictions: list | None) -> Target:
    """The target picker for what the chosen output holds: a class; a unit, the norm or the similarity
    to a reference of a values output; a class over a region of a segmentation; else a filter."""
    info, output = loaded.info, loaded.info.output_info
    if output.kind == "classes":
        return ClassTarget(class_picker(info.class_names, predictions[0].class_index, "Explain class (type to search)",
                                        f"heatmaps_class_{info.key}_{digest}"))
    if output.kind == "values":
        ways = {"unit": "one output unit", "norm": "the output's norm", "similarity": "similarity to a reference image"}
        way = st.radio("Explain", list(ways), format_func=ways.get, horizontal=True, key=f"heatmaps_values_{info.key}",
                       help="A regression: one unit's value. An embedding: its norm, or its cosine similarity to "
                            "another image's embedding (what here makes it look like that image).")
        if way == "unit":
            return OutputUnitTarget(int(st.number_input(f"Output unit (0–{output.units - 1})", 0, output.units - 1, 0,
                                                        key=f"heatmaps_unit_{info.key}")))
        if way == "norm":
            return OutputNormTarget()
        reference = reference_picker(info, key="heatmaps_reference")
        with user_errors(stop=True):
            return cached(similarity_target, loaded, reference.image, name=reference.label, fit=reference.fit)
    if output.kind == "segmentation":
        return region_target(loaded, seen)
    st.info(f"{info.display_name} has no classes: explain one filter of a layer (its mean activation).")
    pick_layer, pick_filter = st.columns([3, 1])
    filter_layer = layer_picker("heatmaps_target", info.key, by_path, last, container=pick_layer, label="Filter of layer")
    filter_index = filter_picker("heatmaps", info.key, filter_layer, by_path[filter_layer].channels,
                                 container=pick_filter, image=digest, help="Starts at the most active filter on this image.",
                                 default=lambda: cached(strongest_filter, loaded, seen, layer=filter_layer))
    return FilterTarget(filter_layer, filter_index)


REGIONS = {"whole": "the whole image", "predicted": "where the model predicts this class", "box": "a box I draw"}


def region_target(loaded: LoadedModel, seen: Image.Image) -> Target:
    """Class c of a segmentation over the whole image, the model's own mask for c, or a box."""
    info, output = loaded.info, loaded.info.output_info
    names = output.class_names
    classes = cached(class_map, loaded, seen)
    present = np.bincount(classes.ravel(), minlength=len(names))
    index = class_picker(names, int(np.argmax(present[1:]) + 1) if len(names) > 1 else 0,
                         "Explain class", f"heatmaps_segclass_{info.key}")
    where = st.radio("Over", list(REGIONS), format_func=REGIONS.get, horizontal=True, key=f"heatmaps_region_{info.key}",
                     help="The score summed over these pixels of the output map is what is explained "
                          "(pytorch-grad-cam's semantic segmentation target).")
    height, width = output.shape[:2]
    if where == "whole":
        return RegionTarget(index)
    if where == "predicted":
        with user_errors(stop=True):
            return RegionTarget(index, predicted_region(loaded, seen, index))
    rows = st.slider("Rows of the box", 0, height, (height // 4, 3 * height // 4), key=f"heatmaps_rows_{info.key}")
    columns = st.slider("Columns of the box", 0, width, (width // 4, 3 * width // 4), key=f"heatmaps_cols_{info.key}")
    region = Region.box((height, width), rows[0], columns[0], rows[1], columns[1])
    with user_errors(stop=True):
        check_target(loaded, RegionTarget(index, region))
    return RegionTarget(index, region)


def segmentation_view(loaded: LoadedModel, seen: Image.Image, target: Target) -> None:
    """The model's predicted mask over the image, with its legend and the explained region outlined."""
    names = loaded.info.output_info.class_names
    classes = cached(class_map, loaded, seen)
    region = target.region if isinstance(target, RegionTarget) else None
    picture = mask_overlay(seen, classes, 0.55, None if region is None else region.mask())
    st.image(image_bytes(picture), caption="Predicted mask" + ("" if region is None else " · explained region outlined"),
             width=min(320, max(seen.width, 160)))
    shares = np.bincount(classes.ravel(), minlength=len(names)) / classes.size
    st.caption(" · ".join(f"<span style='color:{colour}'>■</span> {name} {share:.0%}"
                          for (name, colour), share in zip(legend(names), shares) if share > 0),
               unsafe_allow_html=True)


def image_view(loaded: LoadedModel) -> tuple[ChosenImage, Image.Image, list | None]:
    """The image as the model sees it, and a classifier's top-5 on it."""
    chosen, seen = seen_image(loaded, key="heatmaps")
    if not loaded.info.is_classifier:
        return chosen, seen, None
    with user_errors(stop=True):
        predictions = top5(loaded, seen, "stretch")  # seen is already fitted
    top5_table(predictions, indices=True)
    return chosen, seen, predictions


# Where to explain, by which methods, and how the maps are drawn.
Controls = NamedTuple("Controls", [("layer", str), ("methods", list), ("alpha", float), ("colormap", str),
                                   ("baseline", str)])


def read_controls(loaded: LoadedModel, by_path: dict, last: str) -> Controls:
    layer = layer_picker("heatmaps", loaded.info.key, by_path, last, label="Layer the map is computed at",
                         warn_unknown=loaded.info.display_name,
                         help="Default: the last layer with a real map, where class evidence is most concentrated. "
                              "Earlier layers give sharper, noisier maps. Input-gradient methods ignore it.")
    methods = st.multiselect("Methods", list(METHODS), default=list(DEFAULT_METHODS),
                             format_func=lambda m: METHODS[m].title, help=METHODS_HELP)
    controls = st.columns(3)
    alpha = controls[0].slider("Overlay opacity", 0.0, 1.0, 0.5, 0.05)
    colormap = controls[1].selectbox("Colours", COLORMAPS)
    baseline = controls[2].selectbox("Deleted pixels become", list(BASELINES), format_func=BASELINES.get,
                                     help=BASELINE_HELP)
    return Controls(layer, methods, alpha, colormap, baseline)


def heatmaps(loaded: LoadedModel, seen: Image.Image, target: Target, view: Controls,
             settings: dict[str, int]) -> dict[str, ScoredHeatmap | str]:
    """Each method's scored map (or why it has none), cached; the status box and its bar go around the
    cached calls, never inside them."""
    methods, results = view.methods, {}
    with st.status(f"Computing {len(methods)} heatmap(s) and their faithfulness curves…", expanded=False) as status:
        bar = st.progress(0.0)
        for done, method in enumerate(methods):
            bar.progress(done / len(methods), text=f"{METHODS[method].title} ({done + 1} of {len(methods)})")
            with user_errors(stop=True):
                results[method] = cached(explain_and_score, loaded, seen, entries=64, method=method, target=target,
                                         layer=view.layer, baseline=view.baseline, **settings_for(method, settings))
        bar.progress(1.0, text="Done")
        status.update(label=f"{len(methods)} heatmap(s) for {target.describe(loaded.info.output_info.class_names)}",
                      state="complete")
    return results


def method_view(method: str, result: ScoredHeatmap | str, seen: Image.Image, stem: str, computed: tuple,
                view: Controls) -> None:
    """One method's map over the image, its faithfulness scores and curves, and its download.
    ``computed`` names the map (model, image and every setting it was computed with)."""
    st.markdown(f"#### {METHODS[method].title}")
    if isinstance(result, str):
        st.warning(result, icon=":material/block:")
        return
    heatmap, scores, alpha, colormap = result.heatmap, result.scores, view.alpha, view.colormap
    shown_once(("map", *computed, alpha, colormap),
               lambda: st.plotly_chart(map_figure(seen, heatmap.values, alpha, colormap), key=f"map_{method}"))
    deletion, insertion = st.columns(2)
    steps = f"{len(scores.fractions) - 1} steps of {1 / (len(scores.fractions) - 1):.0%} of the pixels each."
    deletion.metric("Deletion AUC ↓", f"{scores.deletion_auc:.3f}", help=f"Lower is more faithful. {steps}")
    insertion.metric("Insertion AUC ↑", f"{scores.insertion_auc:.3f}", help=f"Higher is more faithful. {steps}")
    road, _ = st.columns(2)
    road.metric("ROAD ↑", f"{result.road.combined:.3f}",
                help="Remove and debias (Rong et al. 2022): removed pixels are filled in from their neighbours, "
                     "not a baseline, so the model cannot tell where pixels were removed. Mean over 10–90 % "
                     "removed of (score when the least relevant go − score when the most relevant go) / 2. "
                     "About 0 for a random map; higher is more faithful.")
    shown_once(("curves", *computed), lambda: st.plotly_chart(
        curves_figure(scores), key=f"curves_{method}", config={"displayModeBar": False}))
    st.caption(f"{heatmap.layer or 'no layer'} · {result.seconds:.2f} s")
    if heatmap.completeness is not None:
        st.caption(f"Completeness: {heatmap.completeness.sentence()}")
        if heatmap.completeness.warning():
            st.warning(heatmap.completeness.warning(), icon=":material/functions:")
    st.download_button("Download overlay (PNG)", functools.partial(overlay_png, seen, heatmap.values, alpha, colormap),
                       f"{stem}_{method}.png", "image/png", key=f"png_{method}", on_click="ignore")


def verdict_view(scored: dict[str, ScoredHeatmap], seen: Image.Image, stem: str, view: Controls,
                 failed: set[str]) -> None:
    """Which map to trust (never one that fails the sanity check), the scores side by side, and every overlay
    in one download."""
    best = verdict(scored, failed)
    if not best:
        return
    st.markdown("#### Which map to trust")
    st.markdown(best.sentence({method: METHODS[method].title for method in scored}))
    table = pd.DataFrame([{"method": METHODS[m].title, "deletion AUC ↓": r.scores.deletion_auc,
                           "insertion AUC ↑": r.scores.insertion_auc, "ROAD ↑": r.road.combined, "seconds": r.seconds}
                          for m, r in scored.items()])
    st.dataframe(table, hide_index=True, column_config={
        **{column: st.column_config.NumberColumn(format="%.3f")
           for column in ("deletion AUC ↓", "insertion AUC ↑", "ROAD ↑")},
        "seconds": st.column_config.NumberColumn(format="%.2f")})
    maps = {f"{stem}_{method}.png": result.heatmap.values for method, result in scored.items()}
    st.download_button("Download all overlays (ZIP)", functools.partial(overlays_zip, seen, maps, view.alpha,
                                                                         view.colormap),
                       f"{stem}_heatmaps.zip", "application/zip", on_click="ignore")


def main() -> None:
    start = start_page("Heatmaps", "Where in the picture did the model look? Several methods side by side, each "
                       "scored by how much the target's score falls when its most important pixels are deleted (lower "
                       "area is better) and rises when they are inserted into a blank (higher area is better).",
                       "layer with a spatial (4-D) output, so there is no map to draw")
    loaded, info, by_path = start.loaded, start.info, start.layers
    with user_errors(stop=True):
        last = default_layer(loaded.model).path
    left, right = st.columns([1, 2], gap="large")
    with left:
        chosen, seen, predictions = image_view(loaded)
    digest, stem = image_key(seen), Path(chosen.label).stem
    with right:
        target = choose_target(loaded, seen, digest, by_path, last, predictions)
        view = read_controls(loaded, by_path, last)
        settings = read_settings(loaded, view.methods)
    if info.output_info.kind == "segmentation":
        with left:
            segmentation_view(loaded, seen, target)
    with right:
        st.caption(f"**Score** in the curves below: {score_name(loaded, target)}, for "
                   f"{target.describe(info.output_info.class_names)}; they delete or insert the pixels in {STEPS} "
                   f"steps of {1 / STEPS:.0%}.")
    if not view.methods:
        st.info("Pick at least one method.")
        st.stop()
    results = heatmaps(loaded, seen, target, view, settings)
    for first in range(0, len(view.methods), PER_ROW):
        for column, method in zip(st.columns(PER_ROW, gap="medium"), view.methods[first:first + PER_ROW]):
            with column:
                computed = (loaded.identity, digest, target, view.layer, method, view.baseline,
                            tuple(sorted(settings_for(method, settings).items())))
                method_view(method, results[method], seen, stem, computed, view)
    scored = {m: r for m, r in results.items() if not isinstance(r, str)}
    failed = trust_view(loaded, seen, scored, {m: method_named(m, **settings_for(m, settings)) for m in scored},
                        view.baseline)
    verdict_view(scored, seen, stem, view, failed)


main()
