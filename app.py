"""ConvVis: the entry point and home page (the chosen model at a glance, its top-5 predictions).

Run with ``streamlit run app.py``. Every file in ``pages/`` is a page (``2_Activations.py`` →
"Activations"); each renders the shared sidebar model picker itself.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from convvis_core.images import as_model_sees_it
from convvis_core.layers import spatial_layers
from convvis_core.model_summary import layer_table
from convvis_core.predictions import Prediction
from convvis_ui.cached import image_bytes, image_digest, shown_once, top5
from convvis_ui.feedback import user_errors
from convvis_ui.image_input import image_picker
from convvis_ui.sidebar import model_sidebar

PAGES = Path(__file__).resolve().parent / "pages"


def home() -> None:
    """The home page: model card, predictions for a sample or uploaded image, layer table."""
    loaded = model_sidebar()
    info = loaded.info

    st.title("ConvVis")
    st.markdown("See what a convolutional network has learned: its filters, its feature maps, where it "
                "looks, and which images excite it. Pick a model in the sidebar; every page uses it.")

    st.subheader(info.display_name)
    st.caption(info.description)
    spatial = spatial_layers(loaded.model)
    columns = st.columns(4)
    columns[0].metric("Input", f"{info.input_size[0]}×{info.input_size[1]}×{info.channels}")
    columns[1].metric("Parameters", f"{loaded.model.count_params():,}")
    columns[2].metric("Spatial layers", len(spatial))
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
                shown_once(("top-5", info.key, info.preprocessing, image_digest(chosen.image), chosen.fit),
                           lambda: st.plotly_chart(predictions_figure(predictions), config={"displayModeBar": False}))
    with right:
        st.markdown("#### Layers")
        only_spatial = st.toggle("Only layers with feature maps (4-D output)", value=False)
        table = pd.DataFrame(layer_table(loaded.model))
        if only_spatial:
            table = table[table["feature maps"]]
        st.dataframe(table, hide_index=True, height=520,
                     column_config={"parameters": st.column_config.NumberColumn(format="localized")})


def predictions_figure(predictions: list[Prediction]) -> go.Figure:
    """Horizontal bars, the most probable class on top."""
    shown = predictions[::-1]  # plotly draws bars bottom-up
    figure = go.Figure(go.Bar(x=[p.probability for p in shown], y=[f"{p.class_name} ({p.class_index})" for p in shown],
                              orientation="h", text=[f"{p.probability:.1%}" for p in shown], textposition="auto",
                              marker_color="#4c78a8"))
    figure.update_layout(title="Top-5 predictions", xaxis=dict(range=[0, 1], tickformat=".0%"),
                         height=260, margin=dict(l=10, r=10, t=40, b=10))
    return figure


def page_title(path: Path) -> str:
    """"1_Filters.py" -> "Filters", "3_Top_k.py" -> "Top k"."""
    return path.stem.split("_", 1)[-1].replace("_", " ")


st.set_page_config(page_title="ConvVis", page_icon="🧠", layout="wide")
st.navigation([st.Page(home, title="Home", icon=":material/home:", default=True)]
              + [st.Page(str(path), title=page_title(path), url_path=page_title(path).lower().replace(" ", "-"))
                 for path in sorted(PAGES.glob("[0-9]*.py"))]).run()
