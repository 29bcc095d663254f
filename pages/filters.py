"""Filters: what each filter of a layer responds to, by activation maximization, live and cached."""

from __future__ import annotations

import functools

import numpy as np
import streamlit as st
from PIL import Image

from convvis_core.featureviz import PRESETS, visualize_filters
from convvis_core.presentation.filter_grids import caption, filter_grid, progress_strip, sort_by_activation, tile_image
from convvis_core.featureviz.selection import parse_filters, random_filters
from convvis_core.featureviz.objectives import per_class
from convvis_core.featureviz.presets import PRESET_NOTES, default_preset, fitted_preset
from convvis_core.featureviz.render import prepare_in_background
from convvis_core.graph import LOGITS
from convvis_core.images import png_zip, to_png_bytes
from convvis_core.layers import default_layer
from convvis_ui import links
from convvis_ui.cached import image_bytes
from convvis_ui.feedback import user_errors
from convvis_ui.page import presenting, start_page
from convvis_ui.pickers import RUN_FILTERS, layer_picker
from convvis_ui.recipe_settings import advanced_settings


def main() -> None:
    start = start_page("Filters", "Gradient ascent finds the image each filter responds to most (activation "
                       "maximization). Results are cached on disk: a repeat is instant, even after a restart.",
                       "layer with a spatial (4-D) output, so it has no filters to visualize")
    loaded, info, by_path = start.loaded, start.info, start.layers
    wanted = links.request()

    preset_name = st.sidebar.selectbox("Preset", list(PRESETS), index=list(PRESETS).index(default_preset(info.input_size)),
                                       help="Each preset is named after where it comes from; the default fits the model's "
                                            "input size. " + " ".join(f"**{name}**: {text}" for name, text in PRESET_NOTES.items()))
    base = fitted_preset(preset_name, info.input_size)
    settings = base if presenting() else advanced_settings(base, preset_name, info.is_classifier)  # a projector shows the preset as it is

    if per_class(settings.objective):
        layer_path, count, unit = LOGITS, len(info.class_names), "class"
        st.info("Class logit: each 'filter' is a class; the image maximizes its pre-softmax score.")
    else:
        layer_path = layer_picker("filters", info.key, by_path, lambda: "conv_pw_8_relu" if "conv_pw_8_relu" in by_path
                                  else default_layer(loaded.model).path)
        count, unit = by_path[layer_path].channels, "filter"

    st.session_state.setdefault("filters_mode", "range")
    if wanted.filters and layer_path == wanted.layer:
        links.consume("filters_mode", "range")
        links.consume(f"filters_spec_{layer_path}", wanted.filters)
    mode = st.radio("Filters", ["single", "range", "random sample", "all"], horizontal=True, key="filters_mode")
    with user_errors(stop=True):
        if mode == "single":
            filters = [int(st.number_input(f"{unit.title()} index (0–{count - 1})", 0, count - 1, 0))]
        elif mode == "range":
            spec = st.text_input("Indices and ranges", f"0-{min(count, 16) - 1}", help="e.g. 0-15,32,40-43",
                                 key=f"filters_spec_{layer_path}")
            filters = parse_filters(spec, count)
        elif mode == "random sample":
            how_many = st.slider("How many", 1, min(count, 64), min(count, 16))
            filters = random_filters(count, how_many, settings.seed)
        else:
            filters = list(range(count))
            if count > 64:
                st.warning(f"All {count} filters take a while on a CPU; results are cached as they finish.")
        if per_class(settings.objective) and info.class_names:
            st.caption("Classes: " + ", ".join(f"{i} {info.class_names[i]}" for i in filters[:12])
                       + ("…" if len(filters) > 12 else ""))

    prepare_in_background(loaded, layer_path, len(filters), settings)  # trace while the user is still choosing
    if st.button(f"Run on {len(filters)} {unit}{'s' if len(filters) > 1 else ''}", type="primary", key=RUN_FILTERS):
        with st.status(f"Optimizing {len(filters)} image(s) on {layer_path}…", expanded=True) as status:
            bar = st.progress(0.0, text="Starting (the first run of a layer traces the model)…")
            preview = st.empty()

            def on_progress(done: int, total: int) -> None:
                bar.progress(done / total, text=f"Step {done} of {total}")

            def on_frame(step: int, frames: dict[int, np.ndarray]) -> None:
                preview.image(progress_strip(frames), caption=f"Step {step}: filters {', '.join(map(str, frames))}")

            with user_errors(stop=False):
                results = visualize_filters(loaded, layer_path, filters, settings, progress=on_progress,
                                            on_frame=on_frame)
                links.remember_filter_run(loaded.identity, layer_path, settings, results)
                cached = sum(r.from_cache for r in results)
                status.update(label=f"Done: {len(results)} image(s), {cached} from the cache", state="complete",
                              expanded=False)

    run = links.last_filter_run(loaded.identity)
    if run is None:
        st.info("Choose a layer and filters, then press **Run**.")
        st.stop()
    shown_layer, shown_settings, results = run.layer, run.settings, list(run.results)

    ordered = sort_by_activation(results)
    dead = [r.filter_index for r in ordered if r.dead]
    weak = [r.filter_index for r in ordered if r.weak]
    st.subheader(f"{shown_layer}: {len(results)} filter(s), strongest first")
    if dead:
        st.warning(f"{len(dead)} dead filter(s): {', '.join(map(str, dead))}. No change to the image moves them "
                   "(zero gradient, e.g. all-zero weights), so they are shown as grey tiles, not noise.")
    if weak:
        st.info(f"{len(weak)} filter(s) barely fire on their pictures (what was maximized stayed below zero): "
                f"{', '.join(map(str, weak))}. Their pictures show little of what they detect. Try plain pixels "
                "and a larger learning rate under Advanced settings, or the 'keras.io example' preset.")
    downloads = st.columns(2)  # files made only when clicked (on_click="ignore": no rerun either)
    downloads[0].download_button("Download grid (PNG)", lambda: to_png_bytes(filter_grid(ordered, sort=False)),
                                 f"{shown_layer.replace('/', '_')}_filters.png", "image/png", on_click="ignore")
    pictures = {f"filter_{result.filter_index:04d}.png": result.image for result in ordered}
    downloads[1].download_button("Download all (ZIP)", functools.partial(png_zip, pictures),
                                 f"{shown_layer.replace('/', '_')}_filters.zip", "application/zip", on_click="ignore")

    per_row = 8
    for start in range(0, min(len(ordered), 128), per_row):
        columns = st.columns(per_row)
        for column, result in zip(columns, ordered[start:start + per_row]):
            column.image(image_bytes(tile_image(result)), caption=caption(result), width="stretch")
    if len(ordered) > 128:
        st.image(image_bytes(filter_grid(ordered, sort=False)), caption="All filters", width="stretch")

    st.markdown("#### Enlarge")
    choice = st.selectbox("Filter", [r.filter_index for r in ordered], key="enlarge")
    chosen = next(r for r in ordered if r.filter_index == choice)
    big, facts = st.columns([2, 1])
    big.image(image_bytes(Image.fromarray(chosen.image).resize((384, 384), Image.NEAREST if chosen.image.shape[0] < 64
                                                                else Image.BICUBIC)),
              caption=f"{shown_layer} #{chosen.filter_index}")
    facts.metric("Activation reached", f"{chosen.final_activation:.4g}", f"{chosen.final_activation - chosen.start_activation:+.3g} from start")
    facts.write(f"Objective `{shown_settings.objective}`; {shown_settings.parameterization} image, {shown_settings.optimizer}, "
                f"{shown_settings.steps} steps, {shown_settings.size} px, seed {shown_settings.seed}.")
    if shown_layer != LOGITS:
        links.unit_link(facts, shown_layer, chosen.filter_index, f"{shown_layer} #{chosen.filter_index}: its unit page")
    facts.download_button("Download this filter (PNG)", functools.partial(to_png_bytes, Image.fromarray(chosen.image)),
                          f"{shown_layer.replace('/', '_')}_filter_{chosen.filter_index}.png", "image/png",
                          on_click="ignore")


main()
