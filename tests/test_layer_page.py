"""The Layer page: the layer the user picks is the one shown and written into the URL, from the first change on
(the page writes its layer into the URL, and reading it back must not undo the user's next choice)."""

from __future__ import annotations

from app_session import app_on
from convvis_ui.pickers import layer_key


def test_the_first_layer_the_user_picks_is_kept_and_written_into_the_url(lenet):
    at = app_on("layer")
    at.query_params["model"] = "lenet_mnist"
    at.run()
    key = layer_key("layer", "lenet_mnist")
    assert at.selectbox(key=key).value == dict(at.query_params)["layer"] == "pool2"  # the default, written
    for chosen in ("conv1_relu", "conv2"):  # the first change and the next
        at.selectbox(key=key).set_value(chosen).run()
        assert not at.exception, at.exception
        assert at.selectbox(key=key).value == chosen
        assert dict(at.query_params)["layer"] == chosen
