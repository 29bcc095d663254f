"""The Circuits page on MobileNet: the ranking equals circuit()'s, by weight and by contribution, the
image's layer shows its kernels, and a row's link opens the Filters page on the input layer."""

from __future__ import annotations

from app_session import app_on
from convvis_core.circuits import circuit
from convvis_ui.pickers import layer_key, remembered_key


def test_circuits_page_runs_end_to_end_on_mobilenet(mobilenet):
    at = app_on("circuits")
    at.session_state["convvis_model"] = "mobilenet"
    at.session_state[remembered_key("circuits", "mobilenet")] = "conv_pw_2_relu"  # small: fast to visualize
    at.session_state["circuit_steps"] = 8
    at.session_state["circuit_top"] = 3
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    expected = circuit(mobilenet, "conv_pw_2_relu", 0)
    table = at.dataframe[0].value
    assert list(table["channel"]) == [c.index for c in expected.top(3)]
    assert list(table["sign"]) == [c.sign for c in expected.top(3)]
    assert at.get("status")[0].label.startswith("Feature visualizations: 4 image(s)")
    assert len(at.get("plotly_chart")) == 3

    at.radio(key="circuit_ranking").set_value("contribution").run()
    assert not at.exception and not at.error
    assert "contribution" in at.dataframe[0].value.columns

    at.selectbox(key=layer_key("circuits", "mobilenet")).select("conv1_relu").run()  # the image's channels: kernels grid
    assert not at.exception and not at.error
    assert any(heading.value == "Every kernel of conv1_relu" for heading in at.subheader)

    at.selectbox(key=layer_key("circuits", "mobilenet")).select("conv_pw_2_relu").run()
    first = int(at.dataframe[0].value["channel"][0])
    at.button(key=f"filters_{first}").click().run()  # the link opens the Filters page on the input layer
    assert not at.exception
    assert at.title[0].value == "Filters"
    assert at.selectbox(key=layer_key("filters", "mobilenet")).value == "conv_pw_1_relu"
