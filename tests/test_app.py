"""The home page renders with the offline default model, as a user opening the app sees it."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[1] / "app.py"


def home() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=180)


def top_prediction(at: AppTest) -> str:
    """The label of the top bar of the predictions chart (bars are drawn bottom-up)."""
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    return figure["data"][0]["y"][-1]


def test_home_page_shows_mobilenet_and_its_top5(mobilenet):
    at = home().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.subheader[0].value == "MobileNet V1 (offline)"
    assert [m.value for m in at.metric][:2] == ["224×224×3", f"{mobilenet.model.count_params():,}"]
    assert top_prediction(at) == "Egyptian cat (285)"


def test_switching_to_lenet_and_a_digit_sample(lenet):
    at = home().run()
    at.sidebar.selectbox[0].select("lenet_mnist").run()
    assert not at.exception, at.exception
    assert at.subheader[0].value == "LeNet, MNIST digits (offline)"
    at.selectbox(key="_convvis_home_source").select("digit_4").run()
    assert not at.exception
    assert top_prediction(at) == "4 (4)"


def test_a_model_without_classes_says_so():
    at = home().run()
    at.sidebar.selectbox[0].select("vgg16_hed").run()
    assert not at.exception
    assert any("no classifier head" in i.value for i in at.info)


def test_every_page_is_linked_in_the_sidebar_in_order():
    at = home().run()
    assert not at.exception, at.exception
    links = [element.proto.label for element in at.sidebar.get("page_link")]
    assert links == ["Home", "Filters", "Activations", "Heatmaps", "Top k", "Circuits", "Layer", "Unit", "Live", "Compare", "Concepts"]
