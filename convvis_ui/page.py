"""The opening every page shares: page config, the sidebar's model, title and caption, the layers the
page can work on (stopping with a message when there are none)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import streamlit as st

from convvis_core.layers import SpatialLayer, spatial_layers
from convvis_core.models import LoadedModel, ModelInfo
from convvis_ui.sidebar import model_sidebar


@dataclass(frozen=True)
class PageStart:
    """What a page knows once it has opened: the model and the layers it offers."""

    loaded: LoadedModel
    layers: dict[str, SpatialLayer]  # by path, in graph order

    @property
    def info(self) -> ModelInfo:
        return self.loaded.info


def start_page(title: str, caption: str, lacking: str,
               layers: Callable[[LoadedModel], list[SpatialLayer]] | None = None) -> PageStart:
    """Open a page: config, sidebar, title, caption; ``layers(loaded)`` (default: every spatial layer)
    lists what the page works on, and an empty list stops the page saying the model has no ``lacking``."""
    st.set_page_config(page_title=f"{title} · ConvVis", page_icon="🧠", layout="wide")
    loaded = model_sidebar()
    st.title(title)
    st.caption(caption)
    found = layers(loaded) if layers else spatial_layers(loaded.model)
    if not found:
        st.error(f"{loaded.info.display_name} has no {lacking}. Pick or upload a convolutional model "
                 "(one with Conv2D layers) in the sidebar.")
        st.stop()
    return PageStart(loaded, {layer.path: layer for layer in found})
