"""Filters: what each filter of a layer responds to, by activation maximization, live and cached."""

from __future__ import annotations

import functools

import numpy as np
import streamlit as st
from PIL import Image

from convvis_core.featureviz import PRESETS, Settings, visualize_filters
from convvis_core.presentation.filter_grids import caption, filter_grid, sort_by_activation, tile_image
from convvis_core.featureviz.selection import parse_filters, random_filters
from convvis_core.featureviz.objectives import OBJECTIVES
from convvis_core.featureviz.optimizers import OPTIMIZERS
from convvis_core.featureviz.recipe import PENALTIES, difference, penalized, with_neuron
from convvis_core.featureviz.presets import PRESET_NOTES, default_preset, fitted_preset
from convvis_core.featureviz.render import prepare_in_background
from convvis_core.featureviz.settings import PARAMETERIZATIONS
from convvis_core.graph import LOGITS
from convvis_core.images import png_zip, to_png_bytes
from convvis_core.layers import default_layer
from convvis_ui import links
from convvis_ui.cached import image_bytes
from convvis_ui.feedback import user_errors
from convvis_ui.page import presenting, start_page
from convvis_ui.pickers import RUN_FILTERS, layer_picker


RECIPE = "filters_recipe"  # widget keys of the objective recipe
OTHER_FILTER = "filters_recipe_other"
RECIPE_WEIGHT = "filters_recipe_weight"
RECIPES = {
    "the filter": "maximize the filter alone",
    "difference of two filters": "maximize the filter minus weight × another filter (both averaged over the "
                                 "map): what excites this filter and not the other",
    "filter × neuron": "Lucid's channel × neuron interaction: the filter averaged over the whole map plus "
                       "weight × another filter at the map's centre only: the first's pattern everywhere, "
                       "the second's in the middle",
}


def recipe_choice(column) -> str:
    """The Objective recipe's widgets; the recipe's serialization ("" for the filter alone)."""
    kind = column.selectbox("Recipe", list(RECIPES), key=RECIPE, help=" ".join(f"**{k}**: {v}." for k, v in RECIPES.items()))
    if kind == "the filter":
        return ""
    other = int(column.number_input("Other filter", 0, 4095, 0, key=OTHER_FILTER))
    weight = float(column.number_input("Weight", 0.0, 100.0, 0.5 if kind.startswith("difference") else 1.0,
                                       key=RECIPE_WEIGHT))
    return (difference(weight, other) if kind.startswith("difference") else with_neuron(weight, other)).spec()


def advanced_settings(base: Settings, preset_name: str, is_classifier: bool) -> Settings:
    """Every knob of the recipe, starting at the preset's values (the widgets' keys name the preset)."""
    with st.expander("Advanced settings (objective, parameterization, transforms, optimizer)"):
        left, middle, right = st.columns(3)
        objectives = [o for o in OBJECTIVES if is_classifier or not OBJECTIVES[o].reads_logits]
        objective = left.selectbox("Objective", objectives, index=objectives.index(base.objective),
                                   format_func=lambda o: f"{o}: {OBJECTIVES[o].description}", key=f"objective_{preset_name}")
        recipe = recipe_choice(left) if not OBJECTIVES[objective].reads_logits else ""
        border = left.number_input("Border excluded (map pixels)", 0, 16, base.border, key=f"border_{preset_name}")
        parameterization = left.selectbox("Parameterization", list(PARAMETERIZATIONS),
                                          index=list(PARAMETERIZATIONS).index(base.parameterization),
                                          format_func=lambda p: PARAMETERIZATIONS[p], key=f"param_{preset_name}")
        decorrelate = left.checkbox("Decorrelated colour", base.decorrelate, key=f"decor_{preset_name}")
        pad = middle.slider("Pad (px)", 0, 32, base.pad, key=f"pad_{preset_name}")
        jitter = middle.slider("Jitter (px)", 0, 32, base.jitter, key=f"jitter_{preset_name}")
        scale = middle.slider("Random scale ±", 0.0, 0.5, base.scale, 0.05, key=f"scale_{preset_name}")
        rotate = middle.slider("Random rotation ±°", 0.0, 45.0, base.rotate, 1.0, key=f"rotate_{preset_name}")
        final_jitter = middle.slider("Final jitter (px)", 0, 16, base.final_jitter, key=f"fjitter_{preset_name}")
        fused = middle.checkbox("Transforms as one resampling", base.fused_transforms, key=f"fused_{preset_name}",
                                help="The same random pad, jitter, scale and rotation as one interpolation onto a "
                                     "fixed-size canvas: one input size for the model, so each step costs less.")
        optimizer = right.selectbox("Optimizer", list(OPTIMIZERS), index=list(OPTIMIZERS).index(base.optimizer),
                                    format_func=lambda o: OPTIMIZERS[o].description, key=f"opt_{preset_name}")
        learning_rate = right.number_input("Learning rate", 1e-4, 1e3, base.learning_rate, format="%.4g",
                                           key=f"lr_{preset_name}")
        steps = right.slider("Steps", 8, 1024, base.steps, 8, key=f"steps_{preset_name}")
        size = right.slider("Image size (px)", 8, 384, base.size, 4, key=f"size_{preset_name}")
        seed = right.number_input("Seed", 0, 2**31 - 1, base.seed, key=f"seed_{preset_name}")
        penalties = {name: right.number_input(f"{name.capitalize()} weight", 0.0, 100.0, 0.0, key=f"{name}_{preset_name}",
                                              help=PENALTIES[name].__doc__)
                     for name in PENALTIES}
    return Settings(objective=objective, border=int(border), parameterization=parameterization,
                    decorrelate=decorrelate, pad=pad, jitter=jitter, scale=scale, rotate=rotate,
                    final_jitter=final_jitter, fused_transforms=fused,
                    optimizer=optimizer, learning_rate=float(learning_rate), steps=steps, size=size,
                    seed=int(seed), recipe=penalized(recipe, penalties))


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

    if settings.objective_spec.reads_logits:
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
        if settings.objective_spec.reads_logits and info.class_names:
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
                tiles = [Image.fromarray(image).convert("RGB").resize((96, 96)) for image in frames.values()]
                strip = Image.new("RGB", (100 * len(tiles), 96), "white")
                for index, tile in enumerate(tiles):
                    strip.paste(tile, (index * 100, 0))
                preview.image(strip, caption=f"Step {step}: filters {', '.join(map(str, frames))}")

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
    facts.write(f"Preset settings: {shown_settings.parameterization} image, {shown_settings.optimizer}, "
                f"{shown_settings.steps} steps, {shown_settings.size} px, seed {shown_settings.seed}.")
    if shown_layer != LOGITS:
        links.unit_link(facts, shown_layer, chosen.filter_index, f"{shown_layer} #{chosen.filter_index}: its unit page")
    facts.download_button("Download this filter (PNG)", functools.partial(to_png_bytes, Image.fromarray(chosen.image)),
                          f"{shown_layer.replace('/', '_')}_filter_{chosen.filter_index}.png", "image/png",
                          on_click="ignore")


main()
