"""Home: the chosen model at a glance, its top-5 predictions (or what each of its outputs says) for a
sample or an upload, its layers."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from PIL import Image

from convvis_core.images import Fit
from convvis_core.model_summary import layer_table
from convvis_core.models import LoadedModel
from convvis_core.models.heads import KINDS
from convvis_core.predictions import OutputPrediction, predict_outputs
from convvis_core.presentation.overlays import mask_overlay
from convvis_core.segmentation import class_map
from convvis_ui.cached import cached, image_bytes, image_key, shown_once, top5
from convvis_ui.charts import predictions_figure
from convvis_ui.feedback import user_errors
from convvis_ui.page import start_page
from convvis_ui.shared_views import seen_image


def every_output(loaded: LoadedModel, image: Image.Image, fit: Fit, seen: Image.Image) -> None:
    """What each head of the model says about the image, by its kind; the one the pages explain first."""
    said: list[OutputPrediction] = cached(predict_outputs, loaded, image, fit=fit)
    explained = loaded.info.output
    for output in sorted(said, key=lambda o: o.index != explained):
        mark = " · explained on every page" if output.index == explained and len(said) > 1 else ""
        st.markdown(f"**{output.name}** ({KINDS.get(output.kind, output.kind)}){mark}")
        if output.kind == "classes":
            st.plotly_chart(predictions_figure(output.classes), config={"displayModeBar": False},
                            key=f"home_output_{output.index}")
        elif output.kind == "values":
            st.dataframe(pd.DataFrame({"unit": range(len(output.values)), "value": output.values}).head(64),
                         hide_index=True, height=min(35 * (len(output.values) + 1) + 3, 260))
            st.caption(f"Norm {output.norm:.4g}" + (f"; first 64 of {len(output.values)} values shown"
                                                    if len(output.values) > 64 else ""))
        elif output.kind == "segmentation":
            view = loaded.with_output(output.index)
            st.image(image_bytes(mask_overlay(seen, class_map(view, seen), 0.55)),
                     caption="Predicted mask: " + ", ".join(f"{share.class_name} {share.share:.0%}"
                                                            for share in output.shares),
                     width=min(320, max(seen.width, 160)))
        else:
            st.caption(output.reason)


def model_card(loaded: LoadedModel, spatial_layers: int) -> None:
    """The model's name, description and size at a glance."""
    info = loaded.info
    st.subheader(info.display_name)
    st.caption(info.description)
    columns = st.columns(4)
    columns[0].metric("Input", f"{info.input_size[0]}×{info.input_size[1]}×{info.channels}")
    columns[1].metric("Parameters", f"{loaded.whole().count_params():,}")  # every head of the file's model
    columns[2].metric("Spatial layers", spatial_layers)
    columns[3].metric("Outputs" if len(info.outputs) > 1 else "Classes", len(info.outputs) if len(info.outputs) > 1
                      else len(info.class_names) if info.class_names else "none")


def predictions_view(loaded: LoadedModel) -> None:
    """An image, as the model sees it, and what the model says about it."""
    info = loaded.info
    st.markdown("#### Predictions")
    chosen, seen = seen_image(loaded, key="home")
    if info.outputs and (len(info.outputs) > 1 or not info.is_classifier):
        with user_errors():
            every_output(loaded, chosen.image, chosen.fit, seen)
    elif not info.is_classifier:
        st.info(f"{info.display_name} has no classifier head, so it makes no predictions. "
                "Its layers can still be explored on the other pages.")
    else:
        with user_errors():
            predictions = top5(loaded, chosen.image, chosen.fit)
            shown_once(("top-5", loaded.identity, image_key(chosen.image), chosen.fit),
                       lambda: st.plotly_chart(predictions_figure(predictions), config={"displayModeBar": False}))


def layers_view(loaded: LoadedModel) -> None:
    """Every layer of the file's model, or only those with feature maps."""
    st.markdown("#### Layers")
    only_spatial = st.toggle("Only layers with feature maps (4-D output)", value=False)
    table = pd.DataFrame(layer_table(loaded.whole()))
    if only_spatial:
        table = table[table["feature maps"]]
    st.dataframe(table, hide_index=True, height=520,
                 column_config={"parameters": st.column_config.NumberColumn(format="localized")})


def main() -> None:
    start = start_page("ConvVis", "See what a convolutional network has learned: its filters, its feature maps, "
                       "where it looks, and which images excite it. Pick a model in the sidebar; every page uses it.",
                       lacking=None)  # the model card shows what any model has
    model_card(start.loaded, len(start.layers))
    left, right = st.columns([2, 3], gap="large")
    with left:
        predictions_view(start.loaded)
    with right:
        layers_view(start.loaded)


main()
