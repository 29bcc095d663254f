"""Views more than one page shows: feature visualizations with live progress, dataset examples."""

from __future__ import annotations

from typing import Sequence

import streamlit as st

from convvis_core.datasets.base import Dataset
from convvis_core.datasets.catalog import open_dataset
from convvis_core.drawing import ExampleView, example_views
from convvis_core.featureviz import FilterResult, Settings, visualize_filters
from convvis_core.models import LoadedModel
from convvis_core.topk import Example
from convvis_ui.cached import image_bytes

PER_ROW = 5
CROP_WIDTH = 120
WHOLE_IMAGE = 0.8  # a receptive field covering more of the image than this is not worth a crop


def pictures(loaded: LoadedModel, requests: Sequence[tuple[str, Sequence[int]]],
             settings: Settings) -> list[list[FilterResult]]:
    """Feature visualizations for (layer, filters) requests, one request per layer, under one status
    box with a progress bar; served from the cache when computed before (by a page or an atlas)."""
    with st.status("Feature visualizations…", expanded=True) as status:
        bar = st.progress(0.0, text="Starting (the first run of a layer traces the model)…")
        found = []
        for number, (path, filters) in enumerate(requests, start=1):
            what = f"{path} ({number}/{len(requests)})"
            found.append(visualize_filters(loaded, path, list(filters), settings, progress=lambda done, total: bar.progress(
                done / total, text=f"{what}: step {done} of {total}")))
        cached = sum(r.from_cache for results in found for r in results)
        total = sum(len(results) for results in found)
        status.update(label=f"Feature visualizations: {total} image(s), {cached} from the cache", state="complete",
                      expanded=False)
    return found


@st.cache_resource(show_spinner="Reading the dataset…", max_entries=4)
def builtin_dataset(name: str) -> Dataset:
    return open_dataset(name)


@st.cache_data(show_spinner=False, max_entries=32)
def views(model: str, dataset_id: str, layer: str, channel: int,
          examples: tuple[Example, ...], _loaded: LoadedModel, _dataset: Dataset) -> list[ExampleView]:
    """Overlays and crops for the examples shown; the arguments before the objects are the key."""
    return example_views(_loaded, _dataset, layer, channel, examples)


def show_examples(shown: list[ExampleView], per_row: int = PER_ROW) -> None:
    """Each example: the filter's map over the image, and a crop of the maximum's receptive field."""
    for start in range(0, len(shown), per_row):
        for column, view in zip(st.columns(per_row), shown[start:start + per_row]):
            example = view.example
            column.image(image_bytes(view.overlay), width="stretch",
                         caption=f"{example.rank}. {view.caption} · max {example.value:.3g} at "
                                 f"({example.row}, {example.col}) · mean {example.mean:.3g}")
            if example.value == 0 and example.mean == 0:
                column.caption("The filter is silent on this image (zero everywhere): no place to crop.")
            elif view.field_fraction > WHOLE_IMAGE:
                column.caption("The maximum's receptive field is (nearly) the whole image.")
            else:
                column.image(image_bytes(view.crop, CROP_WIDTH), width=CROP_WIDTH,
                             caption="receptive field of the maximum")
