"""The Activations page shows the default spread of layers for a sample and an upload, and explains a
model without feature maps."""

from __future__ import annotations

import json

import keras
from streamlit.testing.v1 import AppTest

from app_session import app_on
from convvis_core.activations import default_spread
from convvis_core.images import to_png_bytes
from convvis_core.samples import load_sample


def page() -> AppTest:
    return app_on("activations")


def assert_rendered(at: AppTest, paths: list[str]) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert [header.value for header in at.subheader] == paths
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    grid = charts[2 * paths.index("conv_pw_13_relu")]  # each layer: its grid, then its channel
    assert grid["data"][0]["type"] == "heatmap" and grid["data"][0]["customdata"]["shape"] == "255, 255, 2"
    assert [trace.get("name") for trace in grid["data"][1:]] == ["dead"]


def test_page_shows_the_default_spread_for_a_sample_and_an_upload(mobilenet):
    spread = [layer.path for layer in default_spread(mobilenet.model)]
    at = page().run()
    assert_rendered(at, spread)
    assert any("137 dead" in caption.value for caption in at.caption)  # chelsea, conv_pw_13_relu
    coffee = to_png_bytes(load_sample("coffee"))
    at.file_uploader(key="_convvis_activations_file").set_value(("my_coffee.png", coffee, "image/png")).run()
    assert_rendered(at, spread)
    assert at.session_state["convvis_image_source"] == "upload"
    assert any("my_coffee.png" in caption for image in at.image for caption in image.captions)


def test_page_explains_a_model_without_feature_maps(mobilenet, tmp_path):
    vector = keras.Input((8, 8, 3))
    keras.Model(vector, keras.layers.Dense(2)(keras.layers.Flatten()(vector))).save(tmp_path / "flat.keras")
    at = page().run()
    at.file_uploader(key="_convvis_model_file").set_value(
        ("flat.keras", (tmp_path / "flat.keras").read_bytes(), "application/octet-stream")).run()
    assert not at.exception, at.exception
    assert any("no layer with a spatial" in e.value for e in at.error)
