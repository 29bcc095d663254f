"""The Filters page's Advanced settings: every part of a feature-visualization recipe as widgets
(objective and its composed recipe, parameterization, transforms, optimizer, penalty terms), each
starting at the chosen preset's value, giving one :class:`Settings`."""

from __future__ import annotations

import streamlit as st

from convvis_core.featureviz import Settings
from convvis_core.featureviz.objectives import OBJECTIVES
from convvis_core.featureviz.optimizers import OPTIMIZERS
from convvis_core.featureviz.recipe import PENALTIES, difference, penalized, with_neuron
from convvis_core.featureviz.settings import PARAMETERIZATIONS

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
