"""The layer and filter pickers every page shares: the layer from the URL (a link followed), else the
one remembered, else the page's default; then the widget; then, where the page says so, the URL.

The pickers own their widget keys: tests (and nothing else) reach the widgets by ``layer_key`` and
``filter_key``, never by their position on the page.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import streamlit as st

from convvis_core.layers import SpatialLayer
from convvis_ui import links

_LAYER_KEYS = {"filters": "layer_{model}", "layer": "layer_browser_{model}", "top_k": "topk_layer_{model}",
               "circuits": "circuit_layer_{model}", "activations": "activations_layers_{model}",
               "heatmaps": "heatmaps_layer_{model}", "heatmaps_target": "heatmaps_target_layer_{model}",
               "live": "live_layer_{model}", "compare": "compare_layer_{model}",
               "compare_cam": "compare_cam_layer_{model}", "concepts": "concepts_layers_{model}",
               "concepts_craft": "concepts_craft_layer_{model}", "concepts_groups": "concepts_groups_layer_{model}"}
_FILTER_KEYS = {"top_k": "topk_filter_{model}_{layer}", "circuits": "circuit_filter_{model}_{layer}",
                "activations": "channel_{model}_{layer}", "heatmaps": "heatmaps_filter_{model}_{layer}"}


RUN_FILTERS = "filters_run"  # the Filters page's Run button
SCAN_TOP_K = "topk_scan"  # the Top k page's Scan button


def layer_key(page: str, model: str) -> str:
    """The session-state key of ``page``'s layer widget for the model whose ``info.key`` is ``model``."""
    return _LAYER_KEYS[page].format(model=model)


def filter_key(page: str, model: str, layer: str, image: str | None = None) -> str:
    """The session-state key of ``page``'s filter widget on ``layer`` (and ``image``, a digest, for a page whose
    default filter depends on the image)."""
    key = _FILTER_KEYS[page].format(model=model, layer=layer)
    return key if image is None else f"{key}_{image}"


def remembered_key(page: str, model: str) -> str:
    """Where a page that remembers its layer across page switches keeps it (not a widget's key)."""
    return f"convvis_{layer_key(page, model)}"  # not a widget's: survives page switches


def layer_picker(page: str, model: str, by_path: Mapping[str, SpatialLayer] | Sequence[str], default: str | Callable[[], str], *,
                 container=st, linked: str | None = None, remember: bool = False, warn_unknown: str | None = None,
                 write_url: bool = False, label: str = "Layer", help: str | None = None) -> str:
    """The page's layer selectbox (``label``: "Layer"). It starts at the URL's layer (else ``linked``, what another page
    last showed), else the remembered one (``remember``: kept across page switches), else ``default``;
    ``warn_unknown`` (the model's name) warns when the URL names a layer the page lacks; ``write_url``
    writes the layer chosen into the URL. ``by_path`` may be a plain list of paths (shown as they are),
    e.g. the layers two models share."""
    key = layer_key(page, model)
    wanted = links.request().layer
    if warn_unknown is not None and wanted is not None and wanted not in by_path:
        st.warning(f"{warn_unknown} has no layer '{wanted}' with filters; showing the default one.",
                   icon=":material/link_off:")
    links.consume(key, wanted if wanted in by_path else linked)
    if st.session_state.get(key) not in by_path:
        remembered = st.session_state.get(remembered_key(page, model)) if remember else None
        st.session_state[key] = remembered if remembered in by_path else default() if callable(default) else default
    shown = (lambda p: by_path[p].label) if isinstance(by_path, Mapping) else str
    layer = container.selectbox(label, list(by_path), format_func=shown, key=key, help=help)
    if remember:
        st.session_state[remembered_key(page, model)] = layer
    if write_url:
        links.reflect(layer=layer, filter=None)
        links.written(key, layer)  # next run, the URL's layer is this page's own, not a link to follow
    return layer


def layers_picker(page: str, model: str, by_path: dict[str, SpatialLayer], default: list[str], *,
                  help: str | None = None, write_url: bool = False) -> list[str]:
    """A multiselect of layers: the URL's layers when a link names some (``layer=a`` or ``layer=a,b``), else
    ``default``; ``write_url`` writes the layers chosen into the URL, comma-separated."""
    key = layer_key(page, model)
    wanted = [path for path in (links.request().layer or "").split(",") if path in by_path]
    if wanted:
        links.consume(key, wanted)
    st.session_state.setdefault(key, default)
    layers = st.multiselect("Layers", list(by_path), format_func=lambda p: by_path[p].label, key=key, help=help)
    if write_url:
        links.reflect(layer=",".join(layers) or None)
        links.written(key, layers)
    return layers


def filter_picker(page: str, model: str, layer: str, count: int, *, container=st, label: str = "Filter",
                  linked: int | None = None, default: int | Callable[[], int] | None = None,
                  image: str | None = None, help: str | None = None) -> int:
    """The page's filter number of ``layer`` (0 to ``count`` - 1): the URL's filter when the URL names
    this layer and the filter exists, else ``linked`` (another page's), else the one chosen before,
    else ``default``. With ``image`` (a digest) the widget is that image's own: a default that depends on
    the image (its most active filter) is recomputed for the next image, not carried over."""
    key = filter_key(page, model, layer, image)
    wanted = links.request()
    asked = wanted.channel if wanted.layer == layer and 0 <= (wanted.channel or 0) < count else None
    links.consume(key, asked if asked is not None else linked)
    if default is not None and not 0 <= st.session_state.get(key, -1) < count:
        st.session_state[key] = default() if callable(default) else default
    return int(container.number_input(f"{label} (0–{count - 1})", 0, count - 1, key=key, help=help))


def unit_request(by_path: dict[str, SpatialLayer], default: str, model_name: str) -> tuple[str, int]:
    """The layer and filter a unit page's URL asks for, warning about (and replacing) ones the model
    lacks; the URL is then rewritten to what is shown."""
    asked_layer, asked_filter = st.query_params.get("layer"), st.query_params.get("filter")
    layer = asked_layer if asked_layer in by_path else default
    if asked_layer is not None and asked_layer not in by_path:
        st.warning(f"{model_name} has no layer '{asked_layer}' with filters; showing {layer} instead.",
                   icon=":material/link_off:")
    count = by_path[layer].channels
    filter_index = int(asked_filter) if asked_filter is not None and asked_filter.isdigit() else 0
    if asked_filter is not None and not (asked_filter.isdigit() and filter_index < count):
        filter_index = min(filter_index, count - 1) if asked_filter.isdigit() else 0
        st.warning(f"{layer} has {count} filters (0–{count - 1}), so there is no filter '{asked_filter}'; showing "
                   f"#{filter_index} instead.", icon=":material/link_off:")
    links.reflect(layer=layer, filter=filter_index)
    return layer, filter_index
