"""Memory stays flat when the Activations and Heatmaps pages are rendered again and again, each time as a
new session (test_memory.py's measure: resident memory after a warm-up against the end)."""

from __future__ import annotations

import pytest

from app_session import app_on
from test_memory import assert_flat, resident_bytes

pytestmark = pytest.mark.slow  # many sessions: minutes, not seconds


def test_30_app_sessions_of_the_same_request_in_flat_memory(lenet):
    pages = ["pages/activations.py", "pages/heatmaps.py"]

    def visit(run: int) -> None:
        at = app_on(pages[run % 2], timeout=120)
        at.session_state["convvis_model"] = "lenet_mnist"
        at.session_state["convvis_image_source"] = "digit_4"
        at.run()
        assert not at.exception, [e.value for e in at.exception]

    for run in range(10):
        visit(run)
    warm = resident_bytes()
    for run in range(10, 30):
        visit(run)
    assert_flat(warm, resident_bytes(), "30 page renders")
