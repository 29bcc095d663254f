"""The Unit page on LeNet shows different pictures of its filter."""

from __future__ import annotations

from app_session import app_on


def test_unit_page_shows_different_pictures_of_its_filter(lenet, tmp_path, monkeypatch):
    DIVERSE_COUNT, DIVERSE_RUN = "unit_diverse_count", "unit_diverse_run"  # pages.unit's widget keys
    monkeypatch.setenv("CONVVIS_CACHE_DIR", str(tmp_path))
    at = app_on("unit")
    at.session_state["convvis_model"] = "lenet_mnist"
    at.run()
    assert not at.exception, at.exception
    at.number_input(key=DIVERSE_COUNT).set_value(2).run()
    at.button(key=DIVERSE_RUN).click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert "Different pictures of this filter" in [s.value for s in at.subheader]
