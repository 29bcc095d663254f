"""Screenshots of the running app, as a user sees it (Debian chromium, driven by Playwright).

Usage: ``python scripts/screenshots.py [--url http://localhost:8501] [--out docs/screenshots]``
with ``streamlit run app.py`` already serving. The Filters page is run on MobileNet's
conv_pw_3/8/13 so the README can show what the layers learned. The browser helpers are
``convvis_testing/browser.py``, shared with the end-to-end test.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: convvis_testing is not installed
from convvis_testing.browser import VIEWPORT, AppPage, launch  # noqa: E402


def run_filters(app: AppPage, url: str, layer: str, out: Path) -> None:
    app.open(f"{url}/filters")
    app.choose(app.main.get_by_role("combobox", name="Layer"), layer)
    app.click(app.main.get_by_role("button", name="Run on"), timeout_ms=600_000)
    app.main.get_by_text("strongest first").wait_for()
    app.screenshot(out / f"filters_{layer}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://localhost:8501")
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--pages", nargs="*", default=["home", "filters"])
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        app = AppPage(browser.new_page(viewport=VIEWPORT))
        if "home" in args.pages:
            app.open(args.url)
            app.main.get_by_text("Top-5 predictions").wait_for()
            app.screenshot(out / "home.png")
        if "filters" in args.pages:
            for layer in ("conv_pw_3_relu", "conv_pw_8_relu", "conv_pw_13_relu"):
                run_filters(app, args.url, layer, out)
        browser.close()


if __name__ == "__main__":
    main()
