"""The opening every page shares: page config, the sidebar's model, title and caption, the layers the
page can work on (stopping with a message when there are none)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import streamlit as st

from convvis_core.layers import SpatialLayer, spatial_layers
from convvis_core.models import LoadedModel, ModelInfo
from convvis_ui.links import HOME, PAGES
from convvis_ui.sidebar import model_sidebar


@dataclass(frozen=True)
class PageStart:
    """What a page knows once it has opened: the model and the layers it offers."""

    loaded: LoadedModel
    layers: dict[str, SpatialLayer]  # by path, in graph order

    @property
    def info(self) -> ModelInfo:
        return self.loaded.info


_PRESENTING = "convvis_presenting"  # survives page switches; the toggle below is re-seeded from it
_TOGGLE = "_convvis_presentation_toggle"
_PROJECTOR_CSS = """<style>
section[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"] {display: none;}
html, [data-testid="stMain"] {font-size: 22px;}
[data-testid="stMain"] .block-container {max-width: 100%; padding: 1.5rem 2rem;}
[data-testid="stPageLink"] a {font-size: 1.3rem; padding: 0.6rem 1rem; border: 1px solid #4c78a8; border-radius: 0.5rem;}
</style>"""


def presenting() -> bool:
    """Presentation mode (for a projector): pages leave out advanced settings when it is on."""
    return bool(st.session_state.get(_PRESENTING))


def _presentation_mode() -> None:
    """One toggle: the sidebar and advanced settings hidden, larger text and pictures, big links;
    a button in the page turns it off again (the sidebar, where the toggle is, is hidden then)."""
    st.session_state[_TOGGLE] = presenting()
    st.sidebar.toggle("Presentation mode", key=_TOGGLE, help="For a projector: hides the sidebar and advanced "
                      "settings, enlarges text and pictures. A button at the top of the page turns it off.",
                      on_change=lambda: st.session_state.update({_PRESENTING: st.session_state[_TOGGLE]}))
    if presenting():
        st.markdown(_PROJECTOR_CSS, unsafe_allow_html=True)
        st.button("Leave presentation mode", icon=":material/close_fullscreen:",
                  on_click=lambda: st.session_state.update({_PRESENTING: False}))


def _navigation() -> None:
    """The pages, in order, with their titles and icons: drawn here rather than by Streamlit, whose own
    list differs in its older mode (file names, alphabetical) that a deep link as a server's first
    request starts."""
    with st.sidebar:
        for page in (HOME, *PAGES):
            st.page_link(str(page.file), label=page.title, icon=page.icon)


def start_page(title: str, caption: str, lacking: str | None,
               layers: Callable[[LoadedModel], list[SpatialLayer]] | None = None) -> PageStart:
    """Open a page: config, navigation, sidebar, title, caption; ``layers(loaded)`` (default: every
    spatial layer) lists what the page works on, and an empty list stops the page saying the model
    has no ``lacking`` (None: the page works without layers)."""
    st.set_page_config(page_title=title if title == "ConvVis" else f"{title} · ConvVis", page_icon="🧠",
                       layout="wide")
    _navigation()
    loaded = model_sidebar()
    _presentation_mode()
    st.title(title)
    st.caption(caption)
    found = layers(loaded) if layers else spatial_layers(loaded.model)
    if not found and lacking is not None:
        st.error(f"{loaded.info.display_name} has no {lacking}. Pick or upload a convolutional model "
                 "(one with Conv2D layers) in the sidebar.")
        st.stop()
    return PageStart(loaded, {layer.path: layer for layer in found})
