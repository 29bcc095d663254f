"""Home: the chosen model at a glance, its top-5 predictions for a sample or an upload, its layers."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from convvis_core.images import as_model_sees_it
from convvis_core.model_summary import layer_table
from convvis_core.predictions import Prediction
from convvis_ui.cached import image_bytes, image_key, model_key, shown_once, top5
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


start = start_page("ConvVis", "See what a convolutional network has learned: its filters, its feature maps, "
                   "where it looks, and which images excite it. Pick a model in the sidebar; every page uses it.",
                   lacking=None)  # the model card shows what any model has
loaded, info = start.loaded, start.info

st.subheader(info.display_name)
st.caption(info.description)

columns = st.columns(4)
columns[0].metric("Input", f"{info.input_size[0]}×{info.input_size[1]}×{info.channels}")
columns[1].metric("Parameters", f"{loaded.model.count_params():,}")
columns[2].metric("Spatial layers", len(start.layers))
columns[3].metric("Classes", len(info.class_names) if info.class_names else "none")

left, right = st.columns([2, 3], gap="large")
with left:
    st.markdown("#### Predictions")
    chosen = image_picker(info, key="home")
    seen = as_model_sees_it(chosen.image, info, chosen.fit)
    st.image(image_bytes(seen), caption=f"{chosen.label}, as the model sees it ({seen.width}×{seen.height})",
             width=min(320, max(seen.width, 160)))
    if not info.is_classifier:
        st.info(f"{info.display_name} has no classifier head, so it makes no predictions. "
                "Its layers can still be explored on the other pages.")
    else:
        with user_errors():
            predictions = top5(loaded, chosen.image, chosen.fit)
            shown_once(("top-5", model_key(loaded), image_key(chosen.image), chosen.fit),
                       lambda: st.plotly_chart(predictions_figure(predictions), config={"displayModeBar": False}))
with right:
    st.markdown("#### Layers")
    only_spatial = st.toggle("Only layers with feature maps (4-D output)", value=False)
    table = pd.DataFrame(layer_table(loaded.model))
    if only_spatial:
        table = table[table["feature maps"]]
    st.dataframe(table, hide_index=True, height=520,
                 column_config={"parameters": st.column_config.NumberColumn(format="localized")})
