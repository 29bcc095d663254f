"""The Concepts page's "Test a concept" section (TCAV): where the concept, the target's images and the random sets
come from, the target and the layers, then each layer's score against random directions, with its verdict.

Image sets are built once per source and settings for every session (``st.cache_resource``: they hold arrays the
core reads, never copies); the test itself is cached by the core, keyed by the sets' digests, so a repeat, or the
same URL opened again, shows at once. Every bad input is shown as a message and the rest of the page goes on.
"""

from __future__ import annotations

import functools
from typing import Callable, TypeVar

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from convvis_core.cam.targets import ClassTarget, FilterTarget, OutputUnitTarget, RegionTarget, Target
from convvis_core.concepts.image_sets import (DEFAULT_SET_IMAGES, MAX_SET_IMAGES, MIN_CONCEPT_IMAGES, RANDOM_SOURCES,
                                              ImageSet, checked_concept, crops_set, dataset_set, probe_set, random_sets)
from convvis_core.concepts.probes import ANGLED, COLOURS, PATTERNS, ProbeConcept
from convvis_core.concepts.tcav import (DEFAULT_RUNS, MAX_RUNS, MIN_RUNS, LayerScore, TCAVResult, cached_tcav,
                                        concept_objective, tcav)
from convvis_core.config import dataset_dirs
from convvis_core.datasets.base import ArrayDataset, Dataset
from convvis_core.datasets.catalog import builtin_names
from convvis_core.images import to_png_bytes
from convvis_core.layers import default_layer
from convvis_core.models import LoadedModel
from convvis_core.presentation.tcav_sheets import CONCEPT_COLOUR, RANDOM_COLOUR, tcav_sheet
from convvis_ui import links
from convvis_ui.cached import digest_of, image_bytes, image_key
from convvis_ui.dataset_picker import dataset_label, report_skipped, server_folder, uploaded_dataset
from convvis_ui.feedback import user_errors
from convvis_ui.image_input import image_picker
from convvis_ui.page import PageStart
from convvis_ui.pickers import layers_picker
from convvis_ui.shared_views import builtin_dataset, direction_pictures

PAGE = "concepts"
RUN_TCAV = "concepts_tcav_run"  # the Test button (tests reach it by this key)
SENT_CONCEPT = "convvis_craft_concept"  # an ImageSet: a CRAFT concept's top crops, sent here to be tested
SHOWN = 8  # images of a set shown under its picker
FURTHEST_WIDTH = 72
Found = TypeVar("Found")


def attempt(compute: Callable[[], Found]) -> Found | None:
    """``compute()``, or None after showing why it failed: the section stops, the rest of the page goes on."""
    with user_errors():
        return compute()
    return None


@st.cache_resource(show_spinner="Drawing the concept…", max_entries=16)
def drawn_concept(concept: ProbeConcept, count: int, size: tuple[int, int], seed: int) -> ImageSet:
    return probe_set(concept, count, size, seed)


@st.cache_resource(show_spinner="Reading the images…", max_entries=16)
def dataset_images(identity: str, count: int | None, label: int | None, name: str | None, _dataset: Dataset) -> ImageSet:
    return dataset_set(_dataset, count, label, name)


@st.cache_resource(show_spinner="Cropping the image…", max_entries=8)
def image_crops(digest: str, count: int, size: tuple[int, int], name: str, _image) -> ImageSet:
    return crops_set(_image, count, name, size=size)


@st.cache_resource(show_spinner="Making the random sets…", max_entries=8)
def random_images(source: str, runs: int, count: int, size: tuple[int, int], seed: int,
                  _dataset: Dataset | None = None) -> list[ImageSet]:
    return random_sets(_dataset if _dataset is not None else source, runs, count, size, seed)


def collection(what: str, key: str, builtin: str | None = None) -> Dataset | None:
    """A dataset for ``what``: built-in sets (starting at ``builtin``; None: none offered), the user's .zip (its own
    upload slot, kept for the session), or a folder the operator allows; None while there is none yet (a message
    says what to do)."""
    options = (builtin_names() if builtin else []) + ["upload"] + [f"folder:{path}" for path in dataset_dirs()]
    choice = st.selectbox(what, options, index=options.index(builtin) if builtin else 0, format_func=dataset_label,
                          key=f"concepts_{key}_dataset")
    if choice.startswith("folder:"):
        return attempt(lambda: server_folder(choice.removeprefix("folder:")))
    if choice != "upload":
        return attempt(lambda: builtin_dataset(choice))
    kept = f"convvis_concepts_{key}_zip"
    file = st.file_uploader(f"{what}: a .zip of images", type=["zip"], key=f"concepts_{key}_zip_file")
    if file is not None and st.session_state.get(f"_{kept}_id") != file.file_id:
        st.session_state[f"_{kept}_id"] = file.file_id
        data = file.getvalue()
        digest = digest_of(data)
        if attempt(lambda: uploaded_dataset(digest, file.name, data)) is not None:  # checked before it is kept
            st.session_state[kept] = (digest, file.name, data)
    if kept not in st.session_state:
        st.info(f"Upload a .zip of PNG, JPEG, GIF, BMP, TIFF or WebP images: {what.lower()}.")
        return None
    return uploaded_dataset(*st.session_state[kept])


def show_set(found: ImageSet) -> None:
    """A few of the set's images and where it comes from."""
    st.image([image_bytes(image) for image in found.images[:SHOWN]], width=56)
    st.caption(f"{len(found)} images: {found.origin}")


def concept_picker(loaded: LoadedModel) -> ImageSet | None:
    """A pattern ConvVis draws (URL: ``concept=stripes``), or the user's own concept images."""
    asked = st.query_params.get("concept")
    if asked in PATTERNS:
        links.consume("concepts_pattern", asked)
    sent = st.session_state.get(SENT_CONCEPT)
    sources = {"drawn": "A pattern ConvVis draws", "own": "Your own images"} | (
        {"craft": f"Found by CRAFT ({sent.name})"} if sent is not None else {})
    source = st.radio("Concept", list(sources), horizontal=True, key="concepts_concept_source", format_func=sources.get)
    if source == "craft":
        links.reflect(concept=None)
        found = sent
    elif source == "own":
        links.reflect(concept=None)
        dataset = collection("Concept images", "concept")
        if dataset is None:
            return None
        report_skipped(dataset)
        found = attempt(lambda: checked_concept(dataset_images(dataset.identity, None, None, dataset.name, dataset)))
    else:
        pattern = st.selectbox("Pattern", list(PATTERNS), key="concepts_pattern")
        links.reflect(concept=pattern)
        links.written("concepts_pattern", pattern)
        left, right = st.columns(2)
        colour = left.selectbox("Colour", ["random", *COLOURS], key="concepts_colour",
                                help="Each image jitters the colour a little; random: a new colour per image.")
        angle = right.slider("Angle", 0, 175, 0, 5, key="concepts_angle", disabled=pattern not in ANGLED,
                             help="0°: horizontal stripes; each image turns it by up to ±8°.")
        count = st.slider("Images", MIN_CONCEPT_IMAGES, 200, DEFAULT_SET_IMAGES, key="concepts_concept_count")
        probe = ProbeConcept(pattern, None if colour == "random" else COLOURS[colour],
                             float(angle) if pattern in ANGLED else 0.0)
        found = drawn_concept(probe, count, loaded.info.input_size, 0)
    if found is not None:
        show_set(found)
    return found


def target_picker(loaded: LoadedModel, by_path: dict) -> Target:
    """What the concept is tested against: a class (URL: ``class=``), a values unit, a segmentation's class over the
    whole image, or, for a model without an output to explain, a filter."""
    info, output = loaded.info, loaded.info.output_info
    if output.kind in ("classes", "segmentation"):
        names = output.class_names
        asked = st.query_params.get("class")
        if asked is not None and asked.isdigit() and int(asked) < len(names):
            links.consume(f"concepts_class_{info.key}", int(asked))
        index = int(st.selectbox("Class (type to search)", range(len(names)), format_func=lambda i: f"{names[i]} ({i})",
                                 key=f"concepts_class_{info.key}"))
        links.reflect(**{"class": index})
        links.written(f"concepts_class_{info.key}", index)
        return ClassTarget(index) if output.kind == "classes" else RegionTarget(index)
    if output.kind == "values":
        return OutputUnitTarget(int(st.number_input(f"Output unit (0–{output.units - 1})", 0, output.units - 1, 0,
                                                    key=f"concepts_unit_{info.key}")))
    layer = st.selectbox("Filter of layer", list(by_path), key=f"concepts_filter_layer_{info.key}",
                         index=list(by_path).index(default_layer(loaded.model).path))
    index = st.number_input(f"Filter (0–{by_path[layer].channels - 1})", 0, by_path[layer].channels - 1, 0,
                            key=f"concepts_filter_{info.key}_{layer}")
    return FilterTarget(layer, int(index))


def target_images_picker(loaded: LoadedModel, target: Target) -> ImageSet | None:
    """The target's images: a dataset (of a labelled one, the images of one label) or random crops of one image."""
    source = st.radio("Target's images", ["dataset", "crops"], horizontal=True, key="concepts_images_source",
                      format_func={"dataset": "A dataset", "crops": "Random crops of one image"}.get)
    if source == "crops":
        chosen = image_picker(loaded.info, key="concepts")
        count = st.slider("Crops", 10, 200, DEFAULT_SET_IMAGES, key="concepts_crop_count")
        found = image_crops(image_key(chosen.image), count, loaded.info.input_size, chosen.label, chosen.image)
    else:
        dataset = collection("Dataset", "images", "mnist" if loaded.info.reads_digits else "gallery")
        if dataset is None:
            return None
        report_skipped(dataset)
        label = None
        if isinstance(dataset, ArrayDataset) and dataset.labels is not None:
            labels = sorted(int(value) for value in np.unique(dataset.labels))
            own = target.index if isinstance(target, ClassTarget) and target.index in labels else None
            options = [None, *labels]
            label = st.selectbox("Only the images labelled", options, index=options.index(own),
                                 format_func=lambda value: "every image" if value is None else
                                 (dataset.class_names[value] if dataset.class_names else str(value)),
                                 key=f"concepts_label_{dataset.identity}_{own}")
        count = st.slider("Images", 10, MAX_SET_IMAGES, 100, key="concepts_images_count")
        found = attempt(lambda: dataset_images(dataset.identity, count, label, None, dataset))
    if found is not None:
        show_set(found)
    return found


def random_picker(loaded: LoadedModel) -> list[ImageSet] | None:
    """Where the random sets come from, how many (one run each) and how large."""
    source = st.selectbox("Random images", [*RANDOM_SOURCES, "own"], key="concepts_random_source",
                          format_func=lambda s: RANDOM_SOURCES.get(s, "your own random images (.zip or folder)"),
                          help="What the concept is told apart from; a random direction's score is what a concept "
                               "must beat. TCAV's paper uses random photos of the model's own world.")
    left, right = st.columns(2)
    runs = left.number_input("Random sets (runs)", MIN_RUNS, MAX_RUNS, DEFAULT_RUNS, key="concepts_runs",
                             help="One CAV per random set, and one random CAV per set (against the next): the "
                                  "t-test compares the two groups of scores.")
    count = right.number_input("Images per random set", 10, MAX_SET_IMAGES, DEFAULT_SET_IMAGES, key="concepts_random_count")
    size = loaded.info.input_size
    if source != "own":
        return attempt(lambda: random_images(source, int(runs), int(count), size, 0))
    dataset = collection("Random images", "random")
    if dataset is None:
        return None
    return attempt(lambda: random_images(dataset.identity, int(runs), int(count), size, 0, dataset))


def scores_figure(score: LayerScore) -> go.Figure:
    """Every run's TCAV score and every random direction's, on 0..1, with one half marked."""
    figure = go.Figure()
    for name, values, colour in (("concept", score.scores, CONCEPT_COLOUR), ("random", score.random_scores, RANDOM_COLOUR)):
        figure.add_trace(go.Box(x=values, name=name, boxpoints="all", jitter=0.4, pointpos=0, orientation="h",
                                marker_color=f"rgb{colour}", line_width=1, fillcolor="rgba(0,0,0,0)",
                                hovertemplate="%{x:.2f}<extra>" + name + "</extra>"))
    figure.add_vline(x=0.5, line_dash="dot", line_color="#888")
    figure.update_layout(height=170, margin=dict(l=10, r=10, t=10, b=30), showlegend=False,
                         xaxis=dict(range=[-0.02, 1.02], title="TCAV score (share of the target's images raised)"))
    return figure


def layer_view(result: TCAVResult, score: LayerScore, images: ImageSet, picture: np.ndarray | None) -> None:
    """One layer: the numbers, the verdict, the runs' scores, the images furthest along the concept."""
    st.markdown(f"#### {score.layer}")
    columns = st.columns(4)
    columns[0].metric("TCAV score", f"{score.mean:.2f} ± {score.spread:.2f}",
                      help="Share of the target's images whose value rises when the layer's activations move towards "
                           "the concept; mean ± standard deviation over the runs.")
    columns[1].metric("Random directions", f"{score.random_mean:.2f} ± {score.random_spread:.2f}")
    columns[2].metric("p-value", f"{score.p_value:.2g}", help=f"Two-sided t-test, concept scores against random "
                      f"ones; significant below {score.threshold:.2g} (0.05 split over the layers tested).")
    columns[3].metric("CAV held-out accuracy", f"{score.accuracy:.0%}",
                      help=f"How well the concept vectors tell the concept from random images they were not trained "
                           f"on; under {score.chance_level:.0%} is chance.")
    verdict = score.verdict(result.target)
    (st.success if score.significant else st.warning if score.at_chance or score.flat_gradients else st.info)(verdict)
    st.plotly_chart(scores_figure(score), key=f"concepts_scores_{score.layer}", config={"displayModeBar": False})
    if picture is not None:
        st.image(image_bytes(picture), width=128, caption="the concept's direction, visualized")
    st.image([image_bytes(images.images[int(index)]) for index in score.furthest], width=FURTHEST_WIDTH)
    st.caption(f"The images of {result.target} furthest along the concept.")


def directions(loaded: LoadedModel, result: TCAVResult) -> dict[str, np.ndarray | None]:
    """Each layer's concept direction, visualized (cached on disk as every picture is)."""
    return dict(zip((score.layer for score in result.layers),
                    direction_pictures(loaded, [(score.layer, concept_objective(score)) for score in result.layers])))


def sheet_png(result: TCAVResult, concept: ImageSet, images: ImageSet, pictures: dict | None) -> bytes:
    return to_png_bytes(tcav_sheet(result, concept, images, pictures))


def result_view(loaded: LoadedModel, result: TCAVResult, concept: ImageSet, images: ImageSet) -> None:
    """Every layer's finding, the table of scores, and the downloads."""
    st.caption(f"**{result.concept}** against **{result.target}**, {result.runs} runs; target's images: "
               f"{result.target_images}; random: {result.random_origin}"
               + (" · from the cache" if result.from_cache else ""))
    visualize = st.toggle("Feature visualization of each concept direction", key="concepts_pictures",
                          help="The picture that most raises the layer's activations along the concept (a direction "
                               "objective); seconds per layer on a large model, then cached.")
    pictures = attempt(lambda: directions(loaded, result)) if visualize else None
    for score in result.layers:
        layer_view(result, score, images, (pictures or {}).get(score.layer))
    st.dataframe(result.rows(), hide_index=True)
    stem = f"tcav_{result.concept.split(',')[0].replace(' ', '_')}"
    left, right = st.columns(2)
    left.download_button("Download scores (CSV)", result.to_csv(), f"{stem}.csv", "text/csv", on_click="ignore")
    right.download_button("Download sheet (PNG)", functools.partial(sheet_png, result, concept, images, pictures),
                          f"{stem}.png", "image/png", on_click="ignore")


def test_a_concept(start: PageStart) -> None:
    """The section: does a concept move a target? Pickers, then the cached result or the button that computes it."""
    loaded, by_path = start.loaded, start.layers
    st.markdown("Does the model use a **concept** to decide? A concept activation vector separates the concept's "
                "images from random ones at a layer; the TCAV score is the share of the target's images that moving "
                "towards the concept raises. Random directions give the scores that mean nothing: only a score a "
                "t-test tells apart from theirs is a finding.")
    left, middle, right = st.columns(3, gap="large")
    with left:
        concept = concept_picker(loaded)
    with middle:
        target = target_picker(loaded, by_path)
        images = target_images_picker(loaded, target)
    with right:
        layers = layers_picker(PAGE, loaded.info.key, by_path, [default_layer(loaded.model).path], write_url=True,
                               help="The layers the concept is tested at; each image passes the model once for all.")
        random = random_picker(loaded)
    if concept is None or images is None or random is None:
        return
    if not layers:
        st.info("Choose at least one layer.")
        return
    asked = dict(loaded=loaded, concept=concept, target_images=images, target=target, layers=layers, random=random)
    result = attempt(lambda: cached_tcav(**asked))
    if result is None:
        if not st.button(f"Test the concept at {len(layers)} layer(s)", type="primary", key=RUN_TCAV,
                         help=f"{len(concept) + len(images) + sum(map(len, random)):,} images through the model once "
                              f"(the target's also backwards), then {2 * len(random) * len(layers)} small classifiers."):
            st.info("Press **Test the concept**: its result is then cached, for this page and the command line.")
            return
        with st.status("Testing the concept…", expanded=True) as status:
            bar = st.progress(0.0, text="Starting (the first pass traces the model)…")
            result = attempt(lambda: tcav(**asked, progress=lambda done, total: bar.progress(
                done / total, text=f"{done:,} of {total:,} (images through the model, then classifiers)")))
            if result is None:
                status.update(label="The concept could not be tested", state="error")
                return
            status.update(label=f"Tested '{result.concept}' at {len(result.layers)} layer(s)", state="complete",
                          expanded=False)
    result_view(loaded, result, concept, images)
