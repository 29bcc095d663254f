"""Screenshots of the running app, as a user sees it (Debian chromium, driven by Playwright).

Usage: ``python scripts/screenshots.py [--url http://localhost:8501] [--out docs/screenshots]``
with ``streamlit run app.py`` already serving. The Filters page is run on MobileNet's
conv_pw_3/8/13 so the README can show what the layers learned.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def wait_idle(page: Page, timeout_ms: int = 600_000) -> None:
    """Until Streamlit stops running the script (its status widget disappears)."""
    page.wait_for_timeout(1500)
    page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=timeout_ms)
    page.wait_for_timeout(1000)


def run_filters(page: Page, url: str, layer: str, out: Path) -> None:
    page.goto(f"{url}/filters")
    wait_idle(page)
    page.get_by_label("Layer").click()
    page.keyboard.type(layer + " ")
    page.keyboard.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Run on").click()
    page.get_by_text("strongest first").wait_for(timeout=600_000)
    wait_idle(page)
    page.screenshot(path=str(out / f"filters_{layer}.png"), full_page=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://localhost:8501")
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--pages", nargs="*", default=["home", "filters"])
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        if "home" in args.pages:
            page.goto(args.url)
            page.get_by_text("Top-5 predictions").wait_for(timeout=300_000)
            wait_idle(page)
            page.screenshot(path=str(out / "home.png"), full_page=True)
        if "filters" in args.pages:
            for layer in ("conv_pw_3_relu", "conv_pw_8_relu", "conv_pw_13_relu"):
                run_filters(page, args.url, layer, out)
        browser.close()


if __name__ == "__main__":
    main()
