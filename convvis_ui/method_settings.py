"""The Heatmaps page's per-method settings: the widgets of the methods that take one (Integrated Gradients' steps,
Occlusion's patch and stride, RISE's masks), shown only when their method is chosen."""

from __future__ import annotations

from typing import Sequence

import streamlit as st

from convvis_core.cam.occlusion import Occlusion, default_patch
from convvis_core.models import LoadedModel
from convvis_ui.help_text import IG_STEPS_HELP, RISE_MASKS_HELP


def read_settings(loaded: LoadedModel, methods: Sequence[str]) -> dict[str, int]:
    """The chosen methods' own settings: Integrated Gradients' steps, Occlusion's patch and stride, RISE's masks."""
    settings = {}
    if "integrated_gradients" in methods:
        settings["steps"] = int(st.number_input(
            "Integrated Gradients: steps", 1, 1024, 64, key="heatmaps_ig_steps",
            help=IG_STEPS_HELP))
    if "occlusion" in methods:
        size = loaded.info.input_size
        patch_column, stride_column = st.columns(2)
        settings["patch"] = int(patch_column.number_input(
            "Occlusion: patch (px)", 1, min(size), default_patch(size), key=f"heatmaps_patch_{loaded.info.key}",
            help="Side of the square of baseline pixels slid over the image; about the size of the object's parts."))
        settings["stride"] = int(stride_column.number_input(
            "Occlusion: stride (px)", 1, min(size), max(1, settings["patch"] // 2),
            key=f"heatmaps_stride_{loaded.info.key}_{settings['patch']}", help="Pixels between patch positions."))
        windows = len(Occlusion(settings["patch"], settings["stride"]).corners(size))
        st.caption(f"Occlusion: {windows} patch positions, one forward pass each.")
    if "rise" in methods:
        settings["masks"] = int(st.number_input(
            "RISE: random masks", 1, 8000, 500, 100, key="heatmaps_rise_masks",
            help=RISE_MASKS_HELP))
    return settings
