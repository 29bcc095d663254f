"""Views more than one page shows: the picked image as the model sees it, a top-5 table, feature
visualizations with live progress, dataset examples."""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from convvis_core.datasets.base import Dataset
from convvis_core.datasets.catalog import open_dataset
from convvis_core.presentation.filter_grids import tile_image
from convvis_core.presentation.sheets import ExampleView, example_views
from convvis_core.featureviz import FilterResult, Settings, visualize_filters
from convvis_core.featureviz.objectives import Direction
from convvis_core.featureviz.render import cached_under, visualize
from convvis_core.images import as_model_sees_it
from convvis_core.models import LoadedModel
from convvis_core.predictions import Prediction
from convvis_core.topk import Example
from convvis_ui.cached import image_bytes
from convvis_ui.feedback import user_errors
from convvis_ui.image_input import ChosenImage, image_picker

PER_ROW = 5
CROP_WIDTH = 120
WHOLE_IMAGE = 0.8  # a receptive field covering more of the image than this is not worth a crop


def seen_image(loaded: LoadedModel, key: str) -> tuple[ChosenImage, Image.Image]:
    """The image picker, and the picked image shown as the model sees it (fitted to its input)."""
    chosen = image_picker(loaded.info, key=key)
    seen = as_model_sees_it(chosen.image, loaded.info, chosen.fit)
    st.image(image_bytes(seen), caption=f"{chosen.label}, as the model sees it ({seen.width}×{seen.height})",
             width=min(320, max(seen.width, 160)))
    return chosen, seen


def top5_table(predictions: Sequence[Prediction], indices: bool = False) -> None:
    """A classifier's top-5 as a table of probability bars; ``indices`` adds each class's index."""
    st.dataframe(pd.DataFrame({"class": [f"{p.class_name} ({p.class_index})" if indices else p.class_name
                                         for p in predictions],
                               "probability": [p.probability for p in predictions]}),
                 hide_index=True, column_config={"probability": st.column_config.ProgressColumn(
                     format="percent", min_value=0.0, max_value=1.0)})


def pictures(loaded: LoadedModel, requests: Sequence[tuple[str, Sequence[int]]],
             presets: Mapping[str, Settings]) -> list[list[FilterResult]]:
    """Feature visualizations for (layer, filters) requests, one request per layer, under one status box
    with a progress bar. Each filter's picture comes from the first of ``presets`` (name → settings, in
    order of preference) it was computed with before, by a page, the CLI or an atlas; the rest are computed
    with the first preset."""
    name, settings = next(iter(presets.items()))
    with st.status("Feature visualizations…", expanded=True) as status:
        bar = st.progress(0.0, text="Starting (the first run of a layer traces the model)…")
        found = []
        for number, (path, filters) in enumerate(requests, start=1):
            what = f"{path} ({number}/{len(requests)})"
            results = cached_under(loaded, path, filters, presets)
            missing = [f for f in dict.fromkeys(filters) if f not in results]
            if missing:
                computed = visualize_filters(loaded, path, missing, settings, progress=lambda done, total: bar.progress(
                    done / total, text=f"{what}: step {done} of {total}"))
                results.update({r.filter_index: replace(r, preset=name) for r in computed})
            found.append([results[f] for f in filters])
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


def direction_pictures(loaded: LoadedModel, directions: Sequence[tuple[str, Direction]]) -> list[np.ndarray | None]:
    """Feature visualizations of named directions (a concept's CAV, a CRAFT concept, a neuron group) in one status
    box with progress; each cached on disk, so shown at once the next time. One that fails says why, and None
    keeps its place."""
    found = []
    with st.status("Feature visualizations of the directions…", expanded=True) as status:
        bar = st.progress(0.0, text="Starting (the first one traces the model)…")
        for number, (name, direction) in enumerate(directions, start=1):
            report = functools.partial(lambda done, total, what: bar.progress(
                done / total, text=f"{what}: step {done} of {total}"), what=f"{name} ({number}/{len(directions)})")
            found.append(None)
            with user_errors():
                found[-1] = tile_image(visualize(loaded, direction, progress=report)[0])
        status.update(label=f"Feature visualizations of {len(directions)} direction(s)", state="complete", expanded=False)
    return found
