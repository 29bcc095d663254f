"""The Concepts page's discovery parts: a target's concepts (CRAFT) and one image's neuron groups. Each
``show_*`` reads its own controls, computes through the core (cached there on disk, so a repeat is
instant; progress while it works) and shows the result with its PNG sheet and CSV downloads.
The page gives the model, the target, the layer and the images."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from convvis_core.cam.targets import Target
from convvis_core.concepts.craft import IMPORTANCES, Craft, concept_maps, craft_concepts
from convvis_core.concepts.groups import NeuronGroups, neuron_groups
from convvis_core.concepts.layer_reading import seen_pixels
from convvis_core.config import MAX_CONCEPT_CROPS, MAX_CONCEPTS
from convvis_core.concepts.image_sets import ImageSet, image_set
from convvis_core.images import to_png_bytes
from convvis_core.layers import SpatialLayer, default_layer
from convvis_core.models import LoadedModel
from convvis_core.presentation.concept_sheets import craft_sheet, groups_sheet, ranked_maps, thumbnail
from convvis_core.presentation.overlays import part_colours, parts_overlay
from convvis_core.presentation.tables import csv_text
from convvis_ui import links
from convvis_ui.cached import cached, image_bytes, image_key
from convvis_ui.charts import parts_figure
from convvis_ui.feedback import user_errors
from convvis_ui.help_text import CRAFT_INTRO, GROUPS_INTRO
from convvis_ui.page import PageStart
from convvis_ui.pickers import layer_picker
from convvis_ui.shared_views import direction_pictures, seen_image
from convvis_ui.tcav_views import SENT_CONCEPT, target_images_picker, target_picker

TOP_CROPS = 6  # crops shown per concept
SENT_IMAGES = 20  # top crops sent to the TCAV part as concept images (it needs at least 10)
CROP_WIDTH = 88
STRONGEST = 5  # channels linked per concept or group
MAX_SHOWN_CHOICES = 20  # of the target's images, those offered for the concept map


@st.cache_data(show_spinner="Reading the target's images…", max_entries=8)
def set_pixels(model: str, images: str, _loaded: LoadedModel, _found: ImageSet) -> np.ndarray:
    """An image set as the model sees it, one uint8 batch, read once per (model, set); the arguments before
    the objects are the key."""
    return seen_pixels([Image.fromarray(image) for image in _found.images], _loaded)


def discover_concepts(start: PageStart) -> None:
    """The section: a target's concepts, found in its images or in crops of one image (CRAFT)."""
    loaded, by_path = start.loaded, start.layers
    st.markdown(CRAFT_INTRO)
    left, right = st.columns(2, gap="large")
    with left:
        target = target_picker(loaded, by_path)
        images = target_images_picker(loaded, target)
    with right:
        layer = layer_picker("concepts_craft", loaded.info.key, by_path, lambda: default_layer(loaded.model).path)
    if images is None:
        return
    pixels = set_pixels(loaded.identity, images.identity, loaded, images)
    where = int(right.selectbox("Where the concepts lie, in", range(min(len(pixels), MAX_SHOWN_CHOICES)),
                                format_func=lambda i: f"image {i + 1} of the target's", key="concepts_craft_where"))
    show_craft(loaded, target, by_path[layer], pixels, images.name, shown=Image.fromarray(pixels[where].squeeze()))


def neuron_groups_on_an_image(start: PageStart) -> None:
    """The section: one image's channels at a layer in groups that fire together (NMF)."""
    loaded, by_path = start.loaded, start.layers
    st.markdown(GROUPS_INTRO)
    left, right = st.columns(2, gap="large")
    with left:
        _, seen = seen_image(loaded, key="concepts_groups")
    with right:
        target = target_picker(loaded, by_path)
        layer = layer_picker("concepts_groups", loaded.info.key, by_path, lambda: default_layer(loaded.model).path)
    show_groups(loaded, seen, target, by_path[layer])


def swatch(colour: str) -> str:
    return f"<span style='color:{colour}'>■</span>"


@dataclass(frozen=True)
class CraftControls:
    concepts: int
    crops: int
    crop_fraction: float
    importance: str
    designs: int
    seed: int


def read_craft_controls(layer: SpatialLayer, key: str) -> CraftControls:
    """How many concepts from how many crops, and how importance is measured."""
    columns = st.columns(3)
    most = min(layer.channels, MAX_CONCEPTS)
    concepts = int(columns[0].number_input(f"Concepts (k, 1–{most})", 1, most, min(10, most), key=f"{key}_k",
                                           help="How many parts the crops' activations are factorized into (NMF)."))
    crops = int(columns[1].number_input("Crops", concepts, MAX_CONCEPT_CROPS, max(200, concepts), step=50,
                                        key=f"{key}_crops", help="Random squares of the images, each resized to the "
                                        "model's input and read once (a forward pass each)."))
    importance = columns[2].radio(
        "Importance", list(IMPORTANCES), format_func=IMPORTANCES.get, key=f"{key}_importance",
        help="Gradient × coefficient: how much the target's value would change, to first order, without the "
             "concept; signed, from the pass that reads the images (fast). Sobol total index: the share of the "
             "target's variance each concept carries when the concepts are randomly dimmed together, interactions "
             "included (CRAFT's measure); designs × (k + 2) runs of the network after the layer per image.")
    with st.expander("More settings"):
        fraction = st.slider("Crop side (share of the image's side)", 0.1, 1.0, 0.35, 0.05, key=f"{key}_fraction",
                             help="Smaller crops isolate smaller parts; each is enlarged to the model's input.")
        designs = int(st.number_input("Sobol: designs per image", 2, 256, 32, key=f"{key}_designs",
                                      disabled=importance != "sobol",
                                      help="Quasi-Monte Carlo points; more give steadier indices."))
        seed = int(st.number_input("Seed (crops and factorization)", 0, 2**31 - 1, 0, key=f"{key}_seed"))
    return CraftControls(concepts, crops, fraction, importance, designs, seed)


def show_craft(loaded: LoadedModel, target: Target, layer: SpatialLayer, pixels: np.ndarray, images_label: str,
               shown: Image.Image | None = None, key: str = "craft") -> Craft | None:
    """CRAFT over ``pixels`` (the target's images as the model sees them, one uint8 batch; one image: its own
    crops): controls, the run with progress, the concepts ranked with their crops, where they lie in
    ``shown`` (an image as the model sees it), their directions' feature visualizations, downloads."""
    controls = read_craft_controls(layer, key)
    names = loaded.info.output_info.class_names
    with st.status(f"CRAFT on {len(pixels)} image(s) of {images_label}…", expanded=True) as status:
        bar = st.progress(0.0, text="Reading the crops (the first batch traces the model)…")
        with user_errors(stop=True):
            found = craft_concepts(loaded, pixels, target, layer.path, controls.concepts, controls.crops,
                                   controls.crop_fraction, controls.importance, controls.designs, controls.seed,
                                   progress=lambda done, total: bar.progress(done / total, text=f"{done} of {total}"))
        status.update(label=f"{found.count} concepts of {found.target.describe(names)} at {found.layer} "
                            f"({'from the cache' if found.from_cache else f'{found.seconds:.1f} s'})",
                      state="complete", expanded=False)
    st.caption(f"**Cost**: {found.cost()}. **NMF error** {found.error:.1%} of the crops' activations left out.")
    if found.negative_share > 0.01:
        st.warning(f"{found.layer} has negative values ({found.negative_share:.0%} of its activations' mass); NMF "
                   "needs non-negative ones, so they were set to 0 before factorizing. Pick a layer after a ReLU for "
                   "concepts that describe all of it.", icon=":material/warning:")
    colours = part_colours(found.count)
    maps = None
    if shown is not None:
        with user_errors():
            maps = cached(concept_maps, loaded, shown, found=found)
            labels = [f"#{rank} concept {concept}" for rank, concept in enumerate(found.order, start=1)]
            drawn = st.multiselect("Concepts in the map", range(found.count), default=list(range(found.count)),
                                   format_func=labels.__getitem__, key=f"{key}_drawn",
                                   help="Leave out a concept (a background, say) to see where the others lie.")
            if drawn:
                st.plotly_chart(parts_figure(shown, ranked_maps(found, maps)[..., drawn], [colours[i] for i in drawn],
                                             [labels[i] for i in drawn]), key=f"{key}_map")
            st.caption("Where each concept lies in the image: each place in the colour of the concept strongest there "
                       "(colours as in the list below), as opaque as it is strong.")
    craft_table(found, colours)
    pictures = (direction_pictures(loaded, [(f"concept {concept}", found.direction(int(concept)))
                                            for concept in found.order])
                if st.toggle("Feature-visualize every concept's direction", key=f"{key}_featureviz",
                             help="The picture that drives the layer most along the concept's direction "
                                  "(a Direction objective); cached on disk.") else None)
    for rank, concept in enumerate(found.order, start=1):
        concept_row(loaded, found, int(concept), rank, colours[rank - 1],
                    None if pictures is None else pictures[rank - 1], key)
    downloads = st.columns(2)
    stem = f"craft_{found.layer.replace('/', '_')}"
    downloads[0].download_button("Download the sheet (PNG)",
                                 lambda: to_png_bytes(craft_sheet(found, image=shown, maps=maps, class_names=names)),
                                 f"{stem}.png", "image/png", key=f"{key}_png", on_click="ignore")
    downloads[1].download_button("Download the scores (CSV)", functools.partial(csv_text, found.rows()), f"{stem}.csv",
                                 "text/csv", key=f"{key}_csv", on_click="ignore")
    return found


def craft_table(found: Craft, colours: Sequence[str]) -> None:
    """The concepts' scores, most important first."""
    rows = pd.DataFrame(found.rows())
    score = "sobol total index" if found.sobol is not None else "gradient × coefficient"
    st.dataframe(rows, hide_index=True, column_config={
        "sobol total index": st.column_config.ProgressColumn(format="%.3f", min_value=0.0, max_value=1.0),
        "gradient × coefficient": st.column_config.NumberColumn(format="%+.3g"),
        "share of crops": st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0)})
    st.caption(f"Ranked by **{score}**. " + " ".join(f"{swatch(colour)} #{rank}" for rank, colour in
                                                      enumerate(colours, start=1)), unsafe_allow_html=True)


def concept_row(loaded: LoadedModel, found: Craft, concept: int, rank: int, colour: str, picture: np.ndarray | None,
                key: str) -> None:
    """One concept: its scores, the crops that hold it most, its direction's picture, its strongest channels
    (links to their unit pages), and a button that sends it to the TCAV part."""
    score = f"Sobol {found.sobol[concept]:.3f} · " if found.sobol is not None else ""
    st.markdown(f"{swatch(colour)} **#{rank} concept {concept}** · {score}gradient × coefficient "
                f"{found.gradient_x_coefficient[concept]:+.3g}: it **{found.effect(concept)}** the target",
                unsafe_allow_html=True)
    crops = found.concept_images(concept, TOP_CROPS)
    columns = st.columns(TOP_CROPS + 1)
    for column, crop in zip(columns, crops):
        column.image(image_bytes(thumbnail(crop, CROP_WIDTH)), width=CROP_WIDTH)
    if picture is not None:
        columns[-1].image(image_bytes(picture), width=CROP_WIDTH, caption="its direction")
    channels = st.columns(STRONGEST + 1)
    for column, (channel, weight) in zip(channels, found.strongest_channels(concept, STRONGEST)):
        links.unit_link(column, found.layer, channel, f"#{channel} ({weight:.2f})")
    if channels[-1].button("Test with TCAV", key=f"{key}_send_{concept}", help="Use this concept's top crops as "
                           "concept images in the TCAV part, to test it on other classes."):
        name = f"concept {concept} of {found.target.describe(loaded.info.output_info.class_names)} at {found.layer}"
        st.session_state[SENT_CONCEPT] = image_set(name, f"the {SENT_IMAGES} crops that hold CRAFT's {name} most",
                                                   found.concept_images(concept, SENT_IMAGES))
        st.toast(f"Concept {concept} is ready in the TCAV part, as the concept \"found by CRAFT\".")


def show_groups(loaded: LoadedModel, seen: Image.Image, target: Target, layer: SpatialLayer,
                key: str = "groups") -> NeuronGroups | None:
    """Neuron groups of ``layer`` on ``seen`` (the image as the model sees it): the number of groups, the
    groups' maps together and one by one, each group's contribution to ``target``, strongest channels
    (links to their unit pages) and direction's picture; downloads."""
    most = min(layer.channels, MAX_CONCEPTS, (layer.height or 1) * (layer.width or 1))
    count = int(st.columns(3)[0].number_input(f"Groups (k, 1–{most})", 1, max(most, 1), min(6, max(most, 1)), key=f"{key}_k",
                                help="How many groups of channels that fire together the image's activations are "
                                     "factorized into (NMF over the map's positions)."))
    with user_errors(stop=True):
        found = cached(neuron_groups, loaded, seen, spinner="Grouping the channels…", target=target,
                       layer=layer.path, groups=count)
    names = loaded.info.output_info.class_names
    st.caption(f"**NMF error** {found.error:.1%} of the activations left out. **Contribution** to "
               f"{found.target.describe(names)}: gradient × activation of each group's share of the activations; the "
               f"groups' add up to {found.contributions.sum():+.3g}, the part they leave out {found.leftover:+.3g}, "
               f"together the whole layer's {found.total:+.3g}.")
    if found.negative_share > 0.01:
        st.warning(f"{found.layer} has negative values ({found.negative_share:.0%} of its activations' mass), set to 0 "
                   "before factorizing.", icon=":material/warning:")
    colours = part_colours(found.count)
    st.plotly_chart(parts_figure(seen, ranked_maps(found, found.maps), colours,
                                 [f"group {group}" for group in found.order]), key=f"{key}_map")
    pictures = (direction_pictures(loaded, [(f"group {group}", found.direction(int(group))) for group in found.order])
                if st.toggle("Feature-visualize every group's direction", key=f"{key}_featureviz") else None)
    per_row = 3
    for first in range(0, found.count, per_row):
        for column, rank in zip(st.columns(per_row), range(first, min(first + per_row, found.count))):
            group = int(found.order[rank])
            with column:
                group_view(found, group, rank, colours[rank], None if pictures is None else pictures[rank])
    downloads = st.columns(2)
    stem = f"groups_{found.layer.replace('/', '_')}_{image_key(seen)[:8]}"
    downloads[0].download_button("Download the sheet (PNG)", lambda: to_png_bytes(groups_sheet(found, names)),
                                 f"{stem}.png", "image/png", key=f"{key}_png", on_click="ignore")
    downloads[1].download_button("Download the groups (CSV)", functools.partial(csv_text, found.rows()), f"{stem}.csv",
                                 "text/csv", key=f"{key}_csv", on_click="ignore")
    return found


def group_view(found: NeuronGroups, group: int, rank: int, colour: str, picture: np.ndarray | None) -> None:
    """One group: its map alone in its colour, its contribution, its direction's picture, its strongest channels."""
    seen = Image.fromarray(found.image.squeeze())
    st.markdown(f"{swatch(colour)} **group {group}**: {found.contributions[group]:+.3g} "
                f"({found.effect(group)} the target)", unsafe_allow_html=True)
    alone = parts_overlay(thumbnail(seen, 2 * CROP_WIDTH), found.maps[..., group:group + 1], [colour])
    images = st.columns(2)
    images[0].image(image_bytes(alone), width=2 * CROP_WIDTH)
    if picture is not None:
        images[1].image(image_bytes(picture), width=CROP_WIDTH, caption="its direction")
    for channel, weight in found.strongest_channels(group, STRONGEST):
        links.unit_link(st, found.layer, channel, f"#{channel} ({weight:.2f})")
