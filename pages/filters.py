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
from convvis_core.featureviz.presets import default_preset, fitted_preset
from convvis_core.featureviz.render import prepare_in_background
from convvis_core.graph import LOGITS
from convvis_core.images import png_zip, to_png_bytes
from convvis_core.layers import default_layer
from convvis_ui import help_text, links
from convvis_ui.cached import image_bytes
from convvis_ui.feedback import user_errors
from convvis_ui.page import presenting, start_page
from convvis_ui.pickers import RUN_FILTERS, layer_picker
from convvis_ui.recipe_settings import advanced_settings


def _recipe(info):
    """The preset chosen in the sidebar, with its Advanced settings (none on a projector: the preset as it is)."""
    preset_name = st.sidebar.selectbox("Preset", list(PRESETS), index=list(PRESETS).index(default_preset(info.input_size)),
                                       help=help_text.PRESET_HELP)
    base = fitted_preset(preset_name, info.input_size)
    return base if presenting() else advanced_settings(base, preset_name, info.is_classifier)


def _pick_layer(start, settings) -> tuple[str, int, str]:
    """The layer (the class logits when the objective is per class), how many units it has, and what a unit is."""
    if per_class(settings.objective):
        st.info(help_text.CLASS_LOGIT)
        return LOGITS, len(start.info.class_names), "class"
    layer_path = layer_picker("filters", start.info.key, start.layers, lambda: default_layer(start.loaded.model).path)
    return layer_path, start.layers[layer_path].channels, "filter"


def _pick_filters(info, layer_path: str, count: int, unit: str, settings) -> list[int]:
    """The filters to optimize: one, a written range (a link's, when it names this layer), a random sample, or all."""
    wanted = links.request()
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
    return filters


def _optimize(loaded, layer_path: str, filters: list[int], settings) -> None:
    """Optimize the filters' pictures, showing progress and frames; the run is remembered for the page to show."""
    with st.status(f"Optimizing {len(filters)} image(s) on {layer_path}…", expanded=True) as status:
        bar = st.progress(0.0, text="Starting (the first run of a layer traces the model)…")
        preview = st.empty()

        def on_progress(done: int, total: int) -> None:
            bar.progress(done / total, text=f"Step {done} of {total}")

        def on_frame(step: int, frames: dict[int, np.ndarray]) -> None:
            preview.image(progress_strip(frames), caption=f"Step {step}: filters {', '.join(map(str, frames))}")

        with user_errors(stop=False):
            results = visualize_filters(loaded, layer_path, filters, settings, progress=on_progress, on_frame=on_frame)
            links.remember_filter_run(loaded.identity, layer_path, settings, results)
            cached = sum(r.from_cache for r in results)
            status.update(label=f"Done: {len(results)} image(s), {cached} from the cache", state="complete",
                          expanded=False)


def _show_grid(layer: str, ordered: list) -> None:
    """The run's pictures, strongest first, with dead and weak filters named and the downloads."""
    dead = [r.filter_index for r in ordered if r.dead]
    weak = [r.filter_index for r in ordered if r.weak]
    st.subheader(f"{layer}: {len(ordered)} filter(s), strongest first")
    for found, text, say in ((dead, help_text.DEAD_FILTERS, st.warning), (weak, help_text.WEAK_FILTERS, st.info)):
        if found:
            say(text.format(count=len(found), filters=", ".join(map(str, found))))
    downloads = st.columns(2)  # files made only when clicked (on_click="ignore": no rerun either)
    downloads[0].download_button("Download grid (PNG)", lambda: to_png_bytes(filter_grid(ordered, sort=False)),
                                 f"{layer.replace('/', '_')}_filters.png", "image/png", on_click="ignore")
    pictures = {f"filter_{result.filter_index:04d}.png": result.image for result in ordered}
    downloads[1].download_button("Download all (ZIP)", functools.partial(png_zip, pictures),
                                 f"{layer.replace('/', '_')}_filters.zip", "application/zip", on_click="ignore")
    per_row = 8
    for first in range(0, min(len(ordered), 128), per_row):
        for column, result in zip(st.columns(per_row), ordered[first:first + per_row]):
            column.image(image_bytes(tile_image(result)), caption=caption(result), width="stretch")
    if len(ordered) > 128:
        st.image(image_bytes(filter_grid(ordered, sort=False)), caption="All filters", width="stretch")


def _show_enlarged(layer: str, settings, ordered: list) -> None:
    """One filter of the run, large, with what it reached, its recipe, its unit page and its download."""
    st.markdown("#### Enlarge")
    choice = st.selectbox("Filter", [r.filter_index for r in ordered], key="enlarge")
    chosen = next(r for r in ordered if r.filter_index == choice)
    big, facts = st.columns([2, 1])
    big.image(image_bytes(Image.fromarray(chosen.image).resize((384, 384), Image.NEAREST if chosen.image.shape[0] < 64
                                                                else Image.BICUBIC)),
              caption=f"{layer} #{chosen.filter_index}")
    facts.metric("Activation reached", f"{chosen.final_activation:.4g}", f"{chosen.final_activation - chosen.start_activation:+.3g} from start")
    facts.write(f"Objective `{settings.objective}`; {settings.parameterization} image, {settings.optimizer}, "
                f"{settings.steps} steps, {settings.size} px, seed {settings.seed}.")
    if layer != LOGITS:
        links.unit_link(facts, layer, chosen.filter_index, f"{layer} #{chosen.filter_index}: its unit page")
    facts.download_button("Download this filter (PNG)", functools.partial(to_png_bytes, Image.fromarray(chosen.image)),
                          f"{layer.replace('/', '_')}_filter_{chosen.filter_index}.png", "image/png",
                          on_click="ignore")


def main() -> None:
    start = start_page("Filters", help_text.FILTERS_INTRO,
                       "layer with a spatial (4-D) output, so it has no filters to visualize")
    settings = _recipe(start.info)
    layer_path, count, unit = _pick_layer(start, settings)
    filters = _pick_filters(start.info, layer_path, count, unit, settings)
    prepare_in_background(start.loaded, layer_path, len(filters), settings)  # trace while the user is still choosing
    if st.button(f"Run on {len(filters)} {unit}{'s' if len(filters) > 1 else ''}", type="primary", key=RUN_FILTERS):
        _optimize(start.loaded, layer_path, filters, settings)
    run = links.last_filter_run(start.loaded.identity)
    if run is None:
        st.info("Choose a layer and filters, then press **Run**.")
        st.stop()
    ordered = sort_by_activation(list(run.results))
    _show_grid(run.layer, ordered)
    _show_enlarged(run.layer, run.settings, ordered)


main()
