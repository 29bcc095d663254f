"""The Concepts page on LeNet: a bad concept refused while the page goes on, then a drawn one tested (TCAV); a
digit's concepts found in its crops (CRAFT), one sent to the TCAV part; a digit's neuron groups; each part in the URL."""

from __future__ import annotations

import re

import numpy as np
from PIL import Image

from app_session import app_on
from convvis_ui.tcav_views import RUN_TCAV


def test_the_page_explains_a_bad_concept_and_goes_on_to_test_a_drawn_one(lenet, tmp_path, monkeypatch):
    """LeNet on the Concepts page: an allowed server folder of five images is refused as a concept with what to do,
    and the page goes on; then stripes against the digit 1 are tested (three runs) and shown with their verdict."""
    (tmp_path / "five").mkdir()
    for index in range(5):
        Image.fromarray(np.full((8, 8, 3), 40 * index, np.uint8)).save(tmp_path / "five" / f"{index}.png")
    monkeypatch.setenv("CONVVIS_DATASET_DIRS", str(tmp_path / "five"))
    at = app_on("concepts")
    at.query_params.update({"model": "lenet_mnist", "class": "1", "layer": "conv1_relu"})
    at.run()
    at.radio(key="concepts_concept_source").set_value("own").run()
    at.selectbox(key="concepts_concept_dataset").set_value(f"folder:{(tmp_path / 'five').resolve()}").run()
    assert not at.exception, at.exception
    assert any("has 5 images; a concept needs at least 10" in error.value for error in at.error), at.error
    assert at.multiselect(key="concepts_layers_lenet_mnist").value == ["conv1_relu"]  # the page went on
    at.number_input(key="concepts_runs").set_value(3)
    at.radio(key="concepts_concept_source").set_value("drawn").run()
    at.button(key=RUN_TCAV).click().run()
    assert not at.exception, at.exception
    assert [metric.label for metric in at.metric][:4] == ["TCAV score", "Random directions", "p-value",
                                                          "CAV held-out accuracy"]
    verdicts = [element.value for element in (*at.success, *at.info, *at.warning)]
    assert any(re.match(r"(Significant|Not significant|Not meaningful)", verdict) for verdict in verdicts), verdicts
    assert dict(at.query_params)["layer"] == "conv1_relu" and dict(at.query_params)["concept"] == "stripes"


def test_the_page_finds_a_digits_concepts_sends_one_to_tcav_and_groups_its_channels(lenet):
    """CRAFT over crops of one digit: the concepts ranked with their crops and the concept map; "Test with TCAV"
    makes the concept the TCAV part's; then the digit's neuron groups, each part named in the URL."""
    at = app_on("concepts")
    at.query_params.update({"model": "lenet_mnist", "part": "craft"})
    at.run()
    at.radio(key="concepts_images_source").set_value("crops").run()
    at.slider(key="concepts_crop_count").set_value(20)
    at.number_input(key="craft_k").set_value(3).run()
    assert not at.exception and not at.error, ([e.value for e in at.exception], [e.value for e in at.error])
    assert dict(at.query_params)["part"] == "craft"
    assert at.status[0].proto.label.startswith("3 concepts of 0 (class 0) at pool2"), at.status[0].proto.label
    ranked = [m.value for m in at.markdown if re.search(r"\*\*#\d concept \d\*\*", m.value)]
    assert len(ranked) == 3, [m.value for m in at.markdown]
    at.button(key=next(b.key for b in at.button if b.key.startswith("craft_send_"))).click().run()
    at.segmented_control(key="concepts_part").set_value("tcav").run()
    assert not at.exception
    radio = at.radio(key="concepts_concept_source")
    assert any(option.startswith("Found by CRAFT (concept ") for option in radio.options), radio.options
    at.segmented_control(key="concepts_part").set_value("groups").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert dict(at.query_params)["part"] == "groups"
    assert len([m.value for m in at.markdown if re.search(r"\*\*group \d\*\*: [+-]", m.value)]) == 6  # the default k
