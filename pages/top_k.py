"""Top k: the dataset images that excite a filter most, and where (OpenAI Microscope's dataset examples).

A synthetic feature visualization can mislead; real images ground it. One scan ranks every filter of
a layer at once and is cached on disk, so switching filters afterwards is instant.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from convvis_core.config import MAX_SCAN_IMAGES, TOPK_KEPT
from convvis_core.presentation.filter_grids import tile_image
from convvis_core.layers import default_layer
from convvis_core.topk import TopKIndex, cached_index, scan
from convvis_ui import links
from convvis_ui.cached import image_bytes, shown_once
from convvis_ui.dataset_picker import pick_dataset, report_skipped
from convvis_ui.feedback import user_errors
from convvis_ui.page import start_page
from convvis_ui.pickers import SCAN_TOP_K, filter_picker, layer_picker
from convvis_ui.shared_views import show_examples, views

DEFAULT_SCAN = 2000


def histogram(index: TopKIndex, channel: int, k: int) -> go.Figure:
    """Every image's maximum for this filter; the lines mark where the top k and bottom k begin."""
    values = index.maxima[:, channel]
    figure = go.Figure(go.Histogram(x=values, nbinsx=60, marker_color="#4c78a8",
                                    hovertemplate="max %{x}<br>%{y} images<extra></extra>"))
    kth = min(k, len(index.top.value)) - 1
    figure.add_vline(x=float(index.top.value[kth, channel]), line_color="#e45756", line_dash="dash",
                     annotation_text=f"top {k}")
    figure.add_vline(x=float(index.bottom.value[kth, channel]), line_color="#888", line_dash="dot",
                     annotation_text=f"bottom {k}", annotation_position="top left")
    figure.update_layout(title=f"Max activation of #{channel} over {index.count:,} images", height=300,
                         xaxis_title="maximum over the map", yaxis_title="images", bargap=0.05,
                         margin=dict(l=10, r=10, t=50, b=10))
    return figure


def main() -> None:
    start = start_page("Top k", "The dataset images that excite a filter most, and where: a synthetic feature "
                       "visualization can mislead, real examples ground it. One scan ranks every filter of the layer "
                       "and is cached on disk.", "layer with a spatial (4-D) output, so it has no filters to rank")
    loaded, info, by_path = start.loaded, start.info, start.layers
    filter_run = links.last_filter_run(loaded.identity)  # the Filters page's pictures, shown beside the real examples

    left, middle, right = st.columns([2, 1, 3])
    with left:
        dataset = pick_dataset("top_k", info.key, info.reads_digits)
    with middle:
        most = min(len(dataset), MAX_SCAN_IMAGES)
        count = int(st.number_input("Images to scan", 1, most, min(most, DEFAULT_SCAN),
                                    key=f"topk_count_{dataset.identity}",
                                    help=f"The first N of {len(dataset):,} images (at most {MAX_SCAN_IMAGES:,} a scan)."))
    with right:
        layer_path = layer_picker("top_k", info.key, by_path, lambda: default_layer(loaded.model).path,
                                  linked=filter_run.layer if filter_run else None)
    report_skipped(dataset)

    with user_errors(stop=True):
        index = cached_index(loaded, dataset, layer_path, count)
    if index is None:
        if not st.button(f"Scan {count:,} images on {layer_path}", type="primary", key=SCAN_TOP_K,
                         help=f"{dataset.name}: the first {count:,} images, every filter of the layer at once."):
            st.info("Press **Scan**: one pass ranks every filter of the layer; it is then cached on disk.")
            st.stop()
        with st.status(f"Scanning {count:,} images on {layer_path}…", expanded=True) as status:
            bar = st.progress(0.0, text="Starting (the first batch traces the model)…")
            with user_errors(stop=True):
                index = scan(loaded, dataset, layer_path, count,
                             progress=lambda done, total: bar.progress(done / total, text=f"{done:,} of {total:,} images"))
            status.update(label=f"Scanned {index.count:,} images: every filter of {layer_path} ranked", state="complete",
                          expanded=False)

    controls = st.columns([1, 2, 2])
    channel = filter_picker("top_k", info.key, layer_path, index.channels, container=controls[0],
                            linked=filter_run.strongest if filter_run and filter_run.layer == layer_path else None,
                            default=lambda: int(np.argmax(index.top.value[0])),  # the strongest filter in the dataset
                            help="Starts at the Filters page's last filter on this layer, else at the filter with the "
                                 "highest activation in the dataset.")
    most_kept = min(TOPK_KEPT, index.count)
    k = controls[1].slider("k", 1, most_kept, min(9, most_kept), key="topk_k") if most_kept > 1 else 1
    with controls[2]:
        if st.button("Open this filter on the Filters page →", help="Its feature visualization, next to these examples."):
            links.open_filters(layer_path, str(channel))
        links.unit_link(st, layer_path, channel, f"#{channel}: its unit page")

    with user_errors(stop=True):
        top = index.top.examples(channel, k)
        bottom = index.bottom.examples(channel, k)
        key = (loaded.identity, dataset.identity, layer_path, channel)
        top_views, bottom_views = views(*key, tuple(top), loaded, dataset), views(*key, tuple(bottom), loaded, dataset)

    st.subheader(f"{layer_path} #{channel}: top {len(top)} of {index.count:,} images")
    if top[0].value == bottom[0].value:
        st.warning(f"Filter #{channel} reaches the same maximum, {top[0].value:.3g}, on every image: it is dead or "
                   "saturated here, so the order below is just the dataset's.")
    show_examples(top_views)

    chart, picture = st.columns([3, 1])
    with chart:
        shown_once(("histogram", *key, index.count, k),
                   lambda: st.plotly_chart(histogram(index, channel, k), config={"displayModeBar": False}))
    synthetic = filter_run.picture(layer_path, channel) if filter_run else None
    if synthetic is not None:
        picture.image(image_bytes(tile_image(synthetic)), width="stretch",
                      caption=f"#{channel} as the Filters page optimized it")
    else:
        picture.caption(f"Run #{channel} on the Filters page to see its synthetic picture here, beside the real ones.")

    st.subheader(f"Bottom {len(bottom)}: the images #{channel} responds to least")
    show_examples(bottom_views)


main()
