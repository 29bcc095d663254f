"""A rerun, or another session, on a view whose results are cached redoes none of the work that made
it: charts and tables are replayed rather than built and serialized again (convvis_ui.cached.shown_once),
the model is not run again for a top-5 (convvis_ui.cached.top5), download files are made only when
clicked, and a shown image is encoded once (convvis_ui.cached.image_bytes). The work is counted on the
real pages, on LeNet; bench/serve_cost.py measures what it costs."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from app_session import app_on
from convvis_core import images, predictions
from convvis_core.samples import load_sample
from convvis_core.featureviz.presets import SMALL_INPUTS
from convvis_ui import cached
from convvis_ui.pickers import RUN_FILTERS, layer_key



@pytest.fixture
def emptied():
    """Empty Streamlit caches: the work counted below is done anew in the first session."""
    st.cache_data.clear()
    st.cache_resource.clear()


def charts_built() -> int:
    """Plotly charts the activations page built and serialized (not replayed): its grids and channels."""
    return cached.SHOWN["grid"] + cached.SHOWN["channel"]


def session(script: str) -> AppTest:
    """A new session on a page, on LeNet and an MNIST digit."""
    at = app_on(script, timeout=120)
    at.session_state["convvis_model"] = "lenet_mnist"
    at.session_state["convvis_image_source"] = "digit_4"
    return at


def ran(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at: AppTest) -> list[str]:
    return [chart.proto.spec for chart in at.get("plotly_chart")]


def selectbox(at: AppTest, label: str):
    return next(box for box in at.selectbox if box.label == label)


def test_another_session_replays_the_activations_charts_and_a_new_colour_builds_them_anew(lenet, emptied):
    before = charts_built()
    first = ran(session("activations"))
    built = charts_built() - before
    assert built == len(charts(first)) >= 4  # a grid and a channel per layer
    second = ran(session("activations"))
    assert charts_built() - before == built
    assert charts(second) == charts(first)
    selectbox(second, "Colours").select("gray")
    ran(second)
    assert charts_built() - before == 2 * built
    assert all(new != old for new, old in zip(charts(second), charts(first)))


def test_the_top5_runs_the_model_once_for_home_its_reruns_and_the_activations_page(lenet, emptied):
    runs = predictions.MODEL_RUNS["lenet_mnist"]
    home = ran(session("app.py"))
    home.toggle[0].set_value(True)
    ran(home)
    ran(session("activations"))  # the same model, digit and fit
    assert predictions.MODEL_RUNS["lenet_mnist"] == runs + 1


def test_pages_encode_no_png_until_a_download_is_clicked(lenet, emptied):
    encoded = images.PNG_ENCODINGS["png"]
    heatmaps = ran(session("heatmaps"))
    assert len(heatmaps.get("download_button")) == 4  # one overlay per default method, and the ZIP
    filters = ran(session("filters"))
    filters.selectbox(key=layer_key("filters", "lenet_mnist")).select("conv1")
    filters.slider(key=f"steps_{SMALL_INPUTS}").set_value(8)  # LeNet's default preset
    ran(filters)
    filters.text_input(key="filters_spec_conv1").set_value("0-1")
    ran(filters)
    filters.button(key=RUN_FILTERS).click()
    ran(filters)
    assert len(filters.get("download_button")) == 3  # the grid, the ZIP, the enlarged filter
    assert images.PNG_ENCODINGS["png"] == encoded


def test_png_zip_holds_each_image_as_a_png_under_its_name():
    cat = load_sample("chelsea")
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    with zipfile.ZipFile(io.BytesIO(images.png_zip({"cat.png": cat, "tiny.png": pixels}))) as archive:
        assert archive.namelist() == ["cat.png", "tiny.png"]
        with Image.open(archive.open("cat.png")) as got:
            np.testing.assert_array_equal(np.asarray(got), np.asarray(cat))
        with Image.open(archive.open("tiny.png")) as got:
            np.testing.assert_array_equal(np.asarray(got), pixels)


def test_a_shown_image_is_encoded_once_per_content_no_wider_than_shown():
    st.cache_resource.clear()
    cat = load_sample("chelsea")
    encoded = cached.image_bytes(cat)
    assert cached.image_bytes(cat.copy()) is encoded  # same pixels, another object: not encoded again
    assert cached.image_bytes(np.asarray(cat)) == encoded
    with Image.open(io.BytesIO(encoded)) as shown:
        assert shown.format == "JPEG" and shown.size == cat.size  # what st.image sends for an RGB image
        assert np.abs(np.asarray(shown, np.float32) - np.asarray(cat, np.float32)).mean() < 2
    with Image.open(io.BytesIO(cached.image_bytes(cat, width=120))) as small:
        assert small.width == 120 and abs(small.height - round(cat.height * 120 / cat.width)) <= 1


def scaled(loaded, image, factor: int, offset: int = 0) -> float:
    """A cached view for the façade's tests: what it returns names every input."""
    return float(np.asarray(image).sum()) * factor + offset + len(loaded.identity)


def test_cached_keys_every_setting_the_image_and_the_model_so_none_can_be_left_out(emptied):
    from types import SimpleNamespace
    one, other = SimpleNamespace(identity="a"), SimpleNamespace(identity="bb")
    image = np.ones((2, 2), np.uint8)
    runs = lambda: cached.COMPUTED["scaled"]  # noqa: E731
    before = runs()
    assert cached.cached(scaled, one, image, factor=2) == 9.0
    assert cached.cached(scaled, one, image, factor=2) == 9.0 and runs() == before + 1  # served from the cache
    assert cached.cached(scaled, one, image, factor=3) == 13.0  # a setting changed
    assert cached.cached(scaled, one, image, factor=2, offset=1) == 10.0  # a setting added
    assert cached.cached(scaled, one, image * 2, factor=2) == 17.0  # another image
    assert cached.cached(scaled, one, image.astype(np.int64), factor=2) == 9.0  # same values, other pixels' type
    assert cached.cached(scaled, other, image, factor=2) == 10.0  # another model
    assert runs() == before + 6
    with pytest.raises(TypeError):
        cached.cached(scaled, one, image, 2)  # a setting passed by position could be left out of a key


def test_cached_calls_a_function_without_an_image_and_stores_apart_functions_of_one_name(emptied):
    from types import SimpleNamespace
    loaded = SimpleNamespace(identity="a")

    def scaled(loaded, factor: int) -> str:  # the module's scaled, redefined: a page's function of the same name
        return f"{loaded.identity} × {factor}"

    assert cached.cached(scaled, loaded, factor=2) == "a × 2"
    assert cached.cached(globals()["scaled"], loaded, np.ones((1, 1), np.uint8), factor=2) == 3.0
