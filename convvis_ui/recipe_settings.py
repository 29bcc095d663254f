"""The Filters page's Advanced settings: every part of a feature-visualization recipe as widgets
(objective and its composed recipe, parameterization, transforms, optimizer, penalty terms), each
starting at the chosen preset's value, giving one :class:`Settings`."""

from __future__ import annotations

import streamlit as st

from convvis_core.featureviz import Settings
from convvis_core.featureviz.objectives import (PENALTIES, ClassLogit, DeepDream, Filter, Neuron, Term, difference,
                                                parse, penalized, with_neuron)
from convvis_core.featureviz.optimizers import OPTIMIZERS
from convvis_core.featureviz.settings import PARAMETERIZATIONS
from convvis_ui.feedback import user_errors

RECIPE = "filters_recipe"  # widget keys of the objective recipe
OTHER_FILTER = "filters_recipe_other"
RECIPE_WEIGHT = "filters_recipe_weight"
OBJECTIVE_TEXT = "filters_objective_text"
WRITTEN = "written out"
OBJECTIVES: dict[str, tuple[Term | None, str]] = {  # the Objective box: the term each choice starts from, and what it is
    "the filter": (Filter(), "each filter's mean over its map (optionally without a border)"),
    "neuron": (Neuron(), "each filter at the centre of its map"),
    "class logit": (ClassLogit(), "each class's pre-softmax score (classifiers only; the grid's units are the classes)"),
    "whole layer (DeepDream)": (DeepDream(), "the layer's mean squared activation (each filter only picks the start)"),
    WRITTEN: (None, "any objective, written as the CLI's --objective and a notebook's visualize() take it"),
}
RECIPES = {
    "the filter": "maximize the filter alone",
    "difference of two filters": "maximize the filter minus weight × another filter (both averaged over the "
                                 "map): what excites this filter and not the other",
    "filter × neuron": "Lucid's channel × neuron interaction: the filter averaged over the whole map plus "
                       "weight × another filter at the map's centre only: the first's pattern everywhere, "
                       "the second's in the middle",
}


def recipe_choice(column) -> Term | None:
    """The Objective recipe's widgets; the term the recipe adds to the objective (None for the filter alone)."""
    kind = column.selectbox("Recipe", list(RECIPES), key=RECIPE, help=" ".join(f"**{k}**: {v}." for k, v in RECIPES.items()))
    if kind == "the filter":
        return None
    other = int(column.number_input("Other filter", 0, 4095, 0, key=OTHER_FILTER))
    weight = float(column.number_input("Weight", 0.0, 100.0, 0.5 if kind.startswith("difference") else 1.0,
                                       key=RECIPE_WEIGHT))
    return difference(weight, other) if kind.startswith("difference") else with_neuron(weight, other)


def objective_choice(column, base: Term, preset_name: str, is_classifier: bool) -> Term:
    """The objective's widgets, starting at the preset's: one of the usual terms, with a border for the filter and
    a recipe added, or one written out (parsed as the CLI parses it; a mistake stops the page with its message)."""
    names = [name for name in OBJECTIVES if is_classifier or name != "class logit"]
    start = next((name for name in names if type(OBJECTIVES[name][0]) is type(base)), WRITTEN)
    name = column.selectbox("Objective", names, index=names.index(start), format_func=lambda o: f"{o}: {OBJECTIVES[o][1]}",
                            key=f"objective_{preset_name}")
    if name == WRITTEN:
        text = column.text_input("Objective as text", str(base), key=OBJECTIVE_TEXT,
                                 help='Terms joined by +, - and numbers times them, e.g. `Filter() - 0.5 * Channel(None, 7) '
                                      '+ 0.1 * TotalVariation()`; a term names its layer (`Channel("conv2_relu", 3)`) '
                                      "or None for the layer picked below.")
        with user_errors(stop=True):
            return parse(text)
    term = OBJECTIVES[name][0]
    if isinstance(term, Filter):
        border = base.border if isinstance(base, Filter) else 0
        term = Filter(border=int(column.number_input("Border excluded (map pixels)", 0, 16, border,
                                                     key=f"border_{preset_name}")))
    extra = recipe_choice(column) if name != "class logit" else None
    return term if extra is None else term + extra


def advanced_settings(base: Settings, preset_name: str, is_classifier: bool) -> Settings:
    """Every knob of the recipe, starting at the preset's values (the widgets' keys name the preset)."""
    with st.expander("Advanced settings (objective, parameterization, transforms, optimizer)"):
        left, middle, right = st.columns(3)
        objective = objective_choice(left, base.objective, preset_name, is_classifier)
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
        objective = penalized(objective, penalties)
        st.caption(f"Objective as text (the CLI's `--objective`): `{objective}`")
    return Settings(objective=objective, parameterization=parameterization,
                    decorrelate=decorrelate, pad=pad, jitter=jitter, scale=scale, rotate=rotate,
                    final_jitter=final_jitter, fused_transforms=fused,
                    optimizer=optimizer, learning_rate=float(learning_rate), steps=steps, size=size,
                    seed=int(seed))
