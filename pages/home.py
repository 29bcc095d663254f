"""Home: the chosen model at a glance, its top-5 predictions (or what each of its outputs says) for a
sample or an upload, its layers."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from convvis_core.images import Fit, as_model_sees_it
from convvis_core.model_summary import layer_table
from convvis_core.models import LoadedModel
from convvis_core.models.heads import KINDS
from convvis_core.predictions import OutputPrediction, Prediction, predict_outputs
from convvis_core.presentation.overlays import mask_overlay
from convvis_core.segmentation import class_map
from convvis_ui.cached import image_bytes, image_key, shown_once, top5
from convvis_ui.feedback import user_errors
from convvis_ui.image_input import image_picker
from convvis_ui.page import start_page


def predictions_figure(predictions: list[Prediction]) -> go.Figure:
    """Horizontal bars, the most probable class on top."""
    shown = predictions[::-1]  # plotly draws bars bottom-up
    figure = go.Figure(go.Bar(x=[p.probability for p in shown], y=[f"{p.class_name} ({p.class_index})" for p in shown],
                              orientation="h", text=[f"{p.probability:.1%}" for p in shown], textposition="auto",
                              marker_color="#4c78a8"))
    figure.update_layout(title="Top-5 predictions", xaxis=dict(range=[0, 1], tickformat=".0%"),
                         height=260, margin=dict(l=10, r=10, t=40, b=10))
    return figure


@st.cache_data(show_spinner=False, max_entries=16)
def cached_outputs(model: str, image: str, fit: Fit, _loaded: LoadedModel, _image: Image.Image) -> list[OutputPrediction]:
    return predict_outputs(_loaded, _image, fit)


def every_output(loaded: LoadedModel, image: Image.Image, fit: Fit, seen: Image.Image) -> None:
    """What each head of the model says about the image, by its kind; the one the pages explain first."""
    said = cached_outputs(loaded.identity, image_key(image), fit, loaded, image)
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


def main() -> None:
    start = start_page("ConvVis", "See what a convolutional network has learned: its filters, its feature maps, "
                       "where it looks, and which images excite it. Pick a model in the sidebar; every page uses it.",
                       lacking=None)  # the model card shows what any model has
    loaded, info = start.loaded, start.info

    st.subheader(info.display_name)
    st.caption(info.description)

    columns = st.columns(4)
    columns[0].metric("Input", f"{info.input_size[0]}×{info.input_size[1]}×{info.channels}")
    whole = loaded.whole()  # every head of the file's model (pages work on a view of one)
    columns[1].metric("Parameters", f"{whole.count_params():,}")
    columns[2].metric("Spatial layers", len(start.layers))
    columns[3].metric("Outputs" if len(info.outputs) > 1 else "Classes", len(info.outputs) if len(info.outputs) > 1
                      else len(info.class_names) if info.class_names else "none")

    left, right = st.columns([2, 3], gap="large")
    with left:
        st.markdown("#### Predictions")
        chosen = image_picker(info, key="home")
        seen = as_model_sees_it(chosen.image, info, chosen.fit)
        st.image(image_bytes(seen), caption=f"{chosen.label}, as the model sees it ({seen.width}×{seen.height})",
                 width=min(320, max(seen.width, 160)))
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
    with right:
        st.markdown("#### Layers")
        only_spatial = st.toggle("Only layers with feature maps (4-D output)", value=False)
        table = pd.DataFrame(layer_table(whole))
        if only_spatial:
            table = table[table["feature maps"]]
        st.dataframe(table, hide_index=True, height=520,
                     column_config={"parameters": st.column_config.NumberColumn(format="localized")})


main()
