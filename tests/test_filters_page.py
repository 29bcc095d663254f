"""The Filters page on LeNet: a run, weak filters named, a repeat served from the cache; the difference
recipe, built from widgets and written out; and an upload whose pixel mode changes shows new pictures,
not the old mode's."""

from __future__ import annotations

import hashlib
import re

import numpy as np

from app_session import app_on
from convvis_core.featureviz import objectives
from convvis_core.featureviz.presets import SMALL_INPUTS, fitted_preset
from convvis_core.models import load_uploaded_model
from convvis_core.preprocessing import MODES
from convvis_ui import links
from convvis_ui.links import FILTER_RUN
from convvis_ui.pickers import RUN_FILTERS, layer_key
from convvis_ui.recipe_settings import OBJECTIVE_TEXT, OTHER_FILTER, RECIPE, RECIPE_WEIGHT, WRITTEN
from test_uploads import saved, small_cnn


def test_filters_page_runs_end_to_end_on_lenet(lenet, tmp_path, monkeypatch):
    monkeypatch.setenv("CONVVIS_CACHE_DIR", str(tmp_path))
    at = app_on("filters")
    at.session_state["convvis_model"] = "lenet_mnist"
    at.run()
    assert not at.exception and not at.error
    preset = next(box for box in at.sidebar.selectbox if box.label == "Preset")
    assert preset.value == SMALL_INPUTS  # the default for 28×28 inputs
    at.selectbox(key=layer_key("filters", "lenet_mnist")).select("conv2_relu").run()
    at.text_input(key="filters_spec_conv2_relu").set_value("0-5").run()
    at.button(key=RUN_FILTERS).click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.subheader[0].value == "conv2_relu: 6 filter(s), strongest first"
    assert not at.info  # no filter is weak under the default
    shown = at.session_state[FILTER_RUN].settings  # the widgets at the preset's values key as the preset (and the atlas)
    assert shown.result_part() == fitted_preset(SMALL_INPUTS, lenet.info.input_size).result_part()
    next(box for box in at.sidebar.selectbox if box.label == "Preset").select("quick preview").run()
    at.slider(key="steps_quick preview").set_value(16).run()
    at.button(key=RUN_FILTERS).click().run()
    assert not at.exception and not at.error
    weak = re.search(r"^(\d+) filter\(s\) barely fire on their pictures .*?: ([\d, ]+)\.", at.info[0].value)
    assert weak and int(weak[1]) == 3 and sorted(map(int, weak[2].split(", "))) == [0, 2, 5], at.info[0].value
    assert len(at.get("download_button")) == 3
    at.button(key=RUN_FILTERS).click().run()  # the same request again: served from the cache
    assert not at.exception
    assert [status.label for status in at.get("status")] == ["Done: 6 image(s), 6 from the cache"]


def test_filters_page_difference_recipe_runs_on_lenet(lenet, tmp_path, monkeypatch):
    monkeypatch.setenv("CONVVIS_CACHE_DIR", str(tmp_path))
    at = app_on("filters")
    at.session_state["convvis_model"] = "lenet_mnist"
    at.run()
    at.selectbox(key=layer_key("filters", "lenet_mnist")).select("conv2_relu").run()
    at.text_input(key="filters_spec_conv2_relu").set_value("0-1").run()
    at.selectbox(key=RECIPE).select("difference of two filters").run()
    at.number_input(key=OTHER_FILTER).set_value(7).run()
    at.number_input(key=RECIPE_WEIGHT).set_value(1.0).run()
    at.button(key=RUN_FILTERS).click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.subheader[0].value == "conv2_relu: 2 filter(s), strongest first"
    at.number_input(key=OTHER_FILTER).set_value(60).run()  # conv2 has 50 filters
    at.button(key=RUN_FILTERS).click().run()
    assert not at.exception and "Filter 60 is out of range" in at.error[0].value
    assert "`Filter() - 1.0 * Channel(None, 60)`" in " ".join(c.value for c in at.caption)  # what was built, as text
    at.selectbox(key=f"objective_{SMALL_INPUTS}").select(WRITTEN).run()  # the same terms, written out
    written = 'Filter() - 0.5 * Channel("conv1", 2)'
    at.text_input(key=OBJECTIVE_TEXT).set_value(written).run()
    at.button(key=RUN_FILTERS).click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state[FILTER_RUN].settings.objective == objectives.parse(written)
    at.text_input(key=OBJECTIVE_TEXT).set_value("Filter() -").run()
    assert not at.exception and "is not an objective" in at.error[0].value


def test_a_new_pixel_mode_for_an_upload_shows_new_filters_not_the_old_modes(tmp_path, monkeypatch):
    """An upload's results are named by its identity, which holds the pixel mode: after the user changes
    the mode, the Filters page no longer shows the pictures made under the old one (nor offers them to
    Top k), and a new run makes new ones rather than finding the old mode's in the cache."""
    monkeypatch.setenv("CONVVIS_CACHE_DIR", str(tmp_path / "cache"))
    data = saved(small_cnn(), tmp_path / "m.keras")
    digest = hashlib.sha256(data).hexdigest()
    inferred = load_uploaded_model(data, "flowers.keras").info.preprocessing
    other = next(mode for mode in ("tf", "caffe") if mode != inferred)
    assert other in MODES
    at = app_on("filters")
    at.session_state["convvis_uploads"] = {digest: ("flowers.keras", data)}
    at.session_state["convvis_model"] = f"upload:{digest}"
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.slider(key=f"steps_{SMALL_INPUTS}").set_value(8).run()
    at.text_input(key="filters_spec_conv").set_value("0-3").run()

    def run_filters() -> links.FilterRun:
        next(button for button in at.button if button.label.startswith("Run on")).click().run()
        assert not at.exception and not at.error, ([e.value for e in at.exception], [e.value for e in at.error])
        return at.session_state[links.FILTER_RUN]

    before = run_filters()
    assert [status.label for status in at.get("status")] == ["Done: 4 image(s), 0 from the cache"]
    assert at.subheader[0].value == "conv: 4 filter(s), strongest first"
    at.selectbox(key=f"_convvis_pre_{digest}").select(other).run()
    assert not at.exception and not at.error
    assert not at.subheader  # the old mode's pictures are gone, not shown as this mode's
    assert at.info[0].value == "Choose a layer and filters, then press **Run**."
    after = run_filters()
    assert after.identity != before.identity and other in after.identity
    assert [status.label for status in at.get("status")] == ["Done: 4 image(s), 0 from the cache"]  # made anew
    assert at.subheader[0].value == "conv: 4 filter(s), strongest first"
    assert any(not np.array_equal(old.image, new.image) for old, new in zip(before.results, after.results))
