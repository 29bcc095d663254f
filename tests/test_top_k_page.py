"""The Top k page ranks MNIST on LeNet end to end: the layer and filter synced from the Filters page, one
scan, then another filter answered from its index."""

from __future__ import annotations

import numpy as np

from app_session import app_on
from convvis_core.featureviz import PRESETS
from convvis_core.featureviz.render import FilterResult
from convvis_ui import links
from convvis_ui.pickers import SCAN_TOP_K, filter_key, layer_key


def test_the_page_ranks_mnist_on_lenet_end_to_end(lenet, tmp_path, monkeypatch):
    monkeypatch.setenv("CONVVIS_CACHE_DIR", str(tmp_path))
    at = app_on("top_k")
    at.session_state["convvis_model"] = "lenet_mnist"
    picture = np.full((28, 28), 200, np.uint8)
    at.session_state[links.FILTER_RUN] = links.FilterRun(  # as the Filters page leaves its last run
        lenet.identity, "conv2_relu", PRESETS["quick preview"], (FilterResult(3, picture, 0.1, 2.0, 2.0, False),))
    at.run()
    assert not at.exception and not at.error
    assert at.selectbox(key="topk_dataset_lenet_mnist").value == "mnist"
    assert at.selectbox(key=layer_key("top_k", "lenet_mnist")).value == "conv2_relu"  # synced from the Filters page
    at.button(key=SCAN_TOP_K).click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.subheader[0].value == "conv2_relu #3: top 9 of 2,000 images"
    assert [status.label for status in at.get("status")] == ["Scanned 2,000 images: every filter of conv2_relu ranked"]
    assert len(at.get("image")) == 9 * 2 * 2 + 1  # top and bottom 9, each overlay + crop, and the synthetic picture
    assert len(at.get("plotly_chart")) == 1
    at.number_input(key=filter_key("top_k", "lenet_mnist", "conv2_relu")).set_value(11).run()  # instant: from the index
    assert not at.exception and not at.error
    assert at.subheader[0].value == "conv2_relu #11: top 9 of 2,000 images"
    assert not at.get("status")  # no second scan
