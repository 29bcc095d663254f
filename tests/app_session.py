"""A Streamlit test session of the whole app, opened on one page (tests and the bad-input corpus)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


def app_on(page: str, timeout: float = 300) -> AppTest:
    """The app (app.py, its navigation) opened on ``page`` ("filters", or "app.py" for home), as a user
    reaches it, so the page's links to other pages resolve; ``.run()`` runs the page."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    return at if page == "app.py" else at.switch_page(f"pages/{Path(page).stem}.py")
