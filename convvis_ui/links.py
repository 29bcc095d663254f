"""How pages reach each other: typed links that are also URLs, and typed results pages share.

A link names a page and what it should show (``open_filters("conv2_relu", "3")``); it switches
page with those values as query parameters, so the same view is also a URL a lecturer can bookmark
(``/filters?layer=conv2_relu&filters=3``). The page that is opened reads them with its own
``*_request()`` function and sets its own widgets: no page ever writes another page's widget keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import streamlit as st

from convvis_core.featureviz import FilterResult, Settings
from convvis_core.presentation.filter_grids import sort_by_activation

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class PageFile:
    """A page: its title in the navigation, its URL path, and its file, named after the URL path (a
    deep link opened as a server's first request then finds it: Streamlit looks it up by file name)."""

    title: str
    url_path: str
    icon: str

    @property
    def file(self) -> Path:
        return ROOT / "pages" / f"{self.url_path}.py"


HOME = PageFile("Home", "home", ":material/home:")  # the default page, served at /
FILTERS = PageFile("Filters", "filters", ":material/tune:")
ACTIVATIONS = PageFile("Activations", "activations", ":material/grid_on:")
HEATMAPS = PageFile("Heatmaps", "heatmaps", ":material/local_fire_department:")
TOP_K = PageFile("Top k", "top_k", ":material/photo_library:")
CIRCUITS = PageFile("Circuits", "circuits", ":material/account_tree:")
UNIT = PageFile("Unit", "unit", ":material/center_focus_strong:")
LAYER = PageFile("Layer", "layer", ":material/apps:")
LIVE = PageFile("Live", "live", ":material/videocam:")
COMPARE = PageFile("Compare", "compare", ":material/compare:")
CONCEPTS = PageFile("Concepts", "concepts", ":material/lightbulb:")
PAGES = (FILTERS, ACTIVATIONS, HEATMAPS, TOP_K, CIRCUITS, LAYER, UNIT, LIVE, COMPARE, CONCEPTS)  # the navigation's order, after HOME


_SERIAL = "_convvis_link_serial"  # counts links followed, so following the same link again applies it again


def _open(page: PageFile, **values: str | int | None) -> None:
    st.session_state[_SERIAL] = st.session_state.get(_SERIAL, 0) + 1
    st.switch_page(str(page.file), query_params={name: str(value) for name, value in values.items() if value is not None})


def open_filters(layer: str, filters: str | None = None) -> None:
    """The Filters page on ``layer``, with ``filters`` ("3", "0-15,32") as its range."""
    _open(FILTERS, layer=layer, filters=filters)


def open_activations(layer: str, channel: int | None = None) -> None:
    """The Activations page showing ``layer``, with ``channel`` enlarged."""
    _open(ACTIVATIONS, layer=layer, channel=channel)


def open_with_image(page: PageFile, name: str, png: bytes, layer: str | None = None) -> None:
    """``page`` (Heatmaps or Activations) on a picture given as PNG bytes (a frozen camera frame), as if the
    user had uploaded it under ``name``: it becomes the shared upload every page's image picker offers."""
    from convvis_ui.image_input import SOURCE, UPLOADED

    st.session_state[UPLOADED] = (name, png)
    st.session_state[SOURCE] = "upload"
    _open(page, layer=layer)


def unit_link(container, layer: str, filter_index: int, label: str | None = None, **options) -> None:
    """A link (a real URL: it opens in a new tab too) to one filter's unit page."""
    container.page_link(str(UNIT.file), label=label or f"{layer} #{filter_index}", icon=UNIT.icon,
                        query_params={"layer": layer, "filter": str(filter_index)}, **options)


def layer_link(container, layer: str, label: str | None = None, **options) -> None:
    """A link to the grid of every filter of ``layer``."""
    container.page_link(str(LAYER.file), label=label or f"all of {layer}", icon=LAYER.icon,
                        query_params={"layer": layer}, **options)


def reflect(**values: str | int | None) -> None:
    """Write what the page shows into its URL, so copying the address reproduces the view."""
    for name, value in values.items():
        if value is None:
            st.query_params.pop(name, None)
        elif st.query_params.get(name) != str(value):
            st.query_params[name] = str(value)


@dataclass(frozen=True)
class Request:
    """What a URL asks a page to show; each field None when the URL does not say."""

    layer: str | None = None
    filters: str | None = None
    channel: int | None = None


def request() -> Request:
    """The view the URL asks for (unknown or malformed values are left to the page to refuse)."""
    params = st.query_params
    number = params.get("filter", params.get("channel"))
    return Request(params.get("layer"), params.get("filters"),
                   int(number) if number is not None and number.lstrip("-").isdigit() else None)


def consume(key: str, value) -> None:
    """Set a widget of the current page to a value the URL asks for, once per link followed (or per
    URL opened): afterwards the user's own choice wins."""
    applied = (st.session_state.get(_SERIAL, 0), value)
    if value is not None and st.session_state.get(f"_linked_{key}") != applied:
        st.session_state[key] = value
        st.session_state[f"_linked_{key}"] = applied


def written(key: str, value) -> None:
    """Widget ``key`` shows ``value`` and the page has written it into the URL: the next run reads it back from the
    URL without taking it for a link that asks for it (which would undo a change the user makes meanwhile)."""
    st.session_state[f"_linked_{key}"] = (st.session_state.get(_SERIAL, 0), value)


@dataclass(frozen=True)
class FilterRun:
    """The Filters page's last run, which Top k shows beside its real examples."""

    identity: str  # the model's (LoadedModel.identity): a run under other pixels, labels or output is not this one's
    layer: str
    settings: Settings
    results: tuple[FilterResult, ...]

    @property
    def strongest(self) -> int | None:
        return sort_by_activation(list(self.results))[0].filter_index if self.results else None

    def picture(self, layer: str, channel: int) -> FilterResult | None:
        return next((r for r in self.results if r.filter_index == channel), None) if layer == self.layer else None


FILTER_RUN = "convvis_filter_run"  # session-state key of the last FilterRun


def remember_filter_run(identity: str, layer: str, settings: Settings, results: Sequence[FilterResult]) -> None:
    st.session_state[FILTER_RUN] = FilterRun(identity, layer, settings, tuple(results))


def last_filter_run(identity: str) -> FilterRun | None:
    """The Filters page's last run on this model (``LoadedModel.identity``), if any."""
    run = st.session_state.get(FILTER_RUN)
    return run if run is not None and run.identity == identity else None
