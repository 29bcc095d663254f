"""Screenshots of the running app, as a user sees it (Debian chromium, driven by Playwright).

Usage: ``python scripts/screenshots.py [--url http://localhost:8501] [--out docs/screenshots] [--pages ...]``
with ``streamlit run app.py`` already serving. One picture per page for the README and docs/pages.md, each
on a small, quick setting (the default MobileNet on the bundled cat photo, or LeNet on MNIST), saved as
JPEG (``home.jpg``, ``activations.jpg``, ...); a page that shows an error is not saved but kept as
``<name>.error.png`` to look at. ``filters`` runs the Filters page on MobileNet's conv_pw_3/8/13 and keeps
full PNGs, from which the picture of what the layers learned (docs/feature-visualization.md) was cut.
``live`` plays the cat photo as Chromium's fake camera (``convvis_testing/camera.py``). The browser
helpers are ``convvis_testing/browser.py``, shared with the end-to-end test.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import Browser, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: convvis_testing is not installed
from convvis_testing.browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, AppPage, launch  # noqa: E402

PAGES = ("home", "filters", "activations", "heatmaps", "top_k", "circuits", "compare", "concepts", "live")
LENET = "LeNet, MNIST digits (offline)"
MAX_HEIGHT = 2000  # px of the page kept, from the top: enough to show what a page is for
WIDTH = 1050  # px of the saved picture (the window is 1400 wide), as the earlier screenshots in docs/screenshots/
JPEG_QUALITY = 80


def save_jpeg(app: AppPage, path: Path, max_height: int = MAX_HEIGHT) -> None:
    """The page as JPEG: the blank space below its content cut off, at most ``max_height`` px of the window
    kept, scaled to ``WIDTH``. Refuses a page that shows an error."""
    if problems := app.problems():
        app.screenshot(path.with_suffix(".error.png"))  # to look at, not to publish
        raise RuntimeError(f"{path.name}: the page shows an error (see {path.with_suffix('.error.png')}):\n"
                           + "\n".join(problems))
    app.page.evaluate("""() => {  // Streamlit scrolls inside its main container: back to the page's top
        for (const box of document.querySelectorAll("[data-testid='stMain'], [data-testid='stAppViewContainer']"))
            box.scrollTo(0, 0);
    }""")
    png = Path(tempfile.mkstemp(suffix=".png")[1])
    try:
        app.screenshot(png)
        picture = Image.open(png).convert("RGB")
        picture.load()
    finally:
        png.unlink()
    main_area = np.asarray(picture.convert("L"))[:, 340:-20]  # right of the sidebar and its edge
    rows = np.flatnonzero((main_area < 250).any(axis=1))
    bottom = min(int(rows[-1]) + 40 if len(rows) else picture.height, max_height, picture.height)
    picture = picture.crop((0, 0, picture.width, bottom))
    picture = picture.resize((WIDTH, round(bottom * WIDTH / picture.width)), Image.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    path.write_bytes(buffer.getvalue())
    print(f"{path}: {picture.width}×{picture.height}, {len(buffer.getvalue()) // 1024} KB")


def run_filters(app: AppPage, url: str, layer: str, out: Path) -> None:
    app.open(f"{url}/filters")
    app.choose(app.main.get_by_role("combobox", name="Layer"), layer)
    app.click(app.main.get_by_role("button", name="Run on"), timeout_ms=600_000)
    app.main.get_by_text("strongest first").wait_for()
    app.screenshot(out / f"filters_{layer}.png")


def home(app: AppPage, url: str, out: Path) -> None:
    app.open(url)
    app.main.get_by_text("Top-5 predictions").wait_for()
    save_jpeg(app, out / "home.jpg")


def activations(app: AppPage, url: str, out: Path) -> None:
    app.open(f"{url}/activations?model=mobilenet")
    app.main.get_by_text("Progression through the network").wait_for()
    charts_shown(app, 2)
    save_jpeg(app, out / "activations.jpg", max_height=1900)


def heatmaps(app: AppPage, url: str, out: Path) -> None:
    app.open(f"{url}/heatmaps?model=mobilenet")
    app.main.get_by_text("Which map to trust", exact=True).wait_for()
    app.main.get_by_text(re.compile(r"^3 heatmap\(s\) for ")).wait_for()
    charts_shown(app, 6)
    save_jpeg(app, out / "heatmaps.jpg", max_height=2250)  # down to "Which map to trust"


def top_k(app: AppPage, url: str, out: Path) -> None:
    app.open(f"{url}/top_k?model=lenet_mnist&layer=conv2_relu&filter=3")
    results = app.main.get_by_text(re.compile(r"top 9 of [\d,]+ images$"))
    scan = app.main.get_by_role("button", name=re.compile(r"^Scan [\d,]+ images on "))
    scan.or_(results).first.wait_for()
    if scan.is_visible():  # not in the disk cache yet
        app.click(scan)
    results.wait_for()
    app.main.get_by_text(re.compile(r"^Bottom 9: the images #\d+ responds to least$")).wait_for()
    charts_shown(app, 1)
    save_jpeg(app, out / "top_k.jpg")


def circuits(app: AppPage, url: str, out: Path) -> None:
    app.open(f"{url}/circuits?model=mobilenet&layer=conv_pw_8_relu&filter=3")
    app.main.get_by_text(re.compile(r"^Strongest inputs from ")).wait_for()
    app.main.get_by_text(re.compile(r"^Feature visualizations: 7 image\(s\)")).wait_for(timeout=300_000)
    charts_shown(app, 6)
    save_jpeg(app, out / "circuits.jpg")


def concepts(app: AppPage, url: str, out: Path) -> None:
    """LeNet: drawn stripes tested against the digit 1 (TCAV), then a digit's concepts (CRAFT), each its own picture."""
    app.open(f"{url}/concepts?model=lenet_mnist&class=1&concept=stripes")
    app.click(app.main.get_by_role("button", name=re.compile(r"^Test the concept at ")), timeout_ms=300_000)
    app.main.get_by_text("TCAV score").first.wait_for()
    charts_shown(app, 1)
    save_jpeg(app, out / "concepts.jpg")
    app.open(f"{url}/concepts?model=lenet_mnist&part=craft&class=3")
    app.main.get_by_text(re.compile(r"^\d+ concepts of ")).wait_for(timeout=300_000)
    images_shown(app, 12)
    save_jpeg(app, out / "concepts_craft.jpg")


def compare(app: AppPage, url: str, out: Path) -> None:
    """LeNet against a copy fine-tuned here in seconds on inverted digits (black on white), uploaded in the
    sidebar as a user would; MNIST digits, both models' pictures of the filters that changed most."""
    from convvis_core.datasets.packaged import mnist_dataset
    from convvis_core.models import load_model
    from convvis_testing.models import copy_model, fine_tune

    digits = mnist_dataset()
    tuned = copy_model(load_model("lenet_mnist"), "inverted")
    fine_tune(tuned, 255 - digits.images[:2000], digits.labels[:2000], (), epochs=2)
    with tempfile.TemporaryDirectory(prefix="convvis-screenshots-") as folder:
        path = Path(folder) / "lenet_inverted.keras"
        tuned.model.save(path)
        app.open(f"{url}/compare?model=lenet_mnist")
        app.sidebar.get_by_text("Use your own model").click()
        app.upload(path, within=app.sidebar)
    app.choose(app.sidebar.get_by_role("combobox", name="Model", exact=True), LENET)  # A: the original again
    app.choose(app.main.get_by_role("combobox", name="Compare with (model B)"), "📁 lenet_inverted.keras")
    app.sidebar.get_by_text("Use your own model").click()  # folded again, as before the upload
    app.click(app.main.get_by_role("button", name="Compare", exact=True))
    app.main.get_by_text("Layer similarity (linear CKA)").wait_for()
    app.choose(app.main.get_by_role("combobox", name="Layer", exact=True), "conv2")  # richer pictures than conv1's
    # B, trained on inverted digits, holds no positive evidence for A's class at pool2: the maps are shown
    # where both have one, as tests/test_compare.py does.
    app.choose(app.main.get_by_role("combobox", name="Grad-CAM layer (in both models)"), "conv2_relu")
    # All pairs adds the layer × layer matrix (from the disk cache when an earlier run made it).
    app.click(app.main.get_by_text("All pairs (layer × layer matrix)"))
    app.main.get_by_text(re.compile(r"^Compared over [\d,]+ images( \(cached\))?$")).wait_for()
    charts_shown(app, 1)
    images_shown(app, 8)
    save_jpeg(app, out / "compare.jpg")


def live(browser: Browser, url: str, out: Path) -> None:
    """The Live page with the cat photo as the camera, Grad-CAM at conv_pw_13_relu, a few seconds in."""
    page = browser.new_page(viewport={"width": VIEWPORT["width"], "height": 1400})
    app = AppPage(page)
    app.open(f"{url}/live?model=mobilenet&layer=conv_pw_13_relu&method=gradcam")
    component = page.frame_locator("iframe[title*='webrtc']")
    component.get_by_role("button", name="Start").click()
    app.main.get_by_text("frames/s reached").wait_for(timeout=120_000)
    page.wait_for_timeout(5_000)  # a few seconds of video: the numbers settle
    save_jpeg(app, out / "live.jpg")


def charts_shown(app: AppPage, at_least: int) -> None:
    app.page.wait_for_function(
        """least => document.querySelectorAll("[data-testid='stMain'] .js-plotly-plot").length >= least""",
        arg=at_least, timeout=120_000)


def images_shown(app: AppPage, at_least: int) -> None:
    app.page.wait_for_function(
        """least => [...document.querySelectorAll("[data-testid='stMain'] img")]
                       .filter(image => image.complete).length >= least""",
        arg=at_least, timeout=120_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://localhost:8501")
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--pages", nargs="*", default=list(PAGES), choices=PAGES)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    by_page = {"home": home, "activations": activations, "heatmaps": heatmaps, "top_k": top_k,
               "circuits": circuits, "compare": compare, "concepts": concepts}
    with sync_playwright() as playwright:
        browser = launch(playwright)
        for name in args.pages:
            if name == "filters":
                app = AppPage(browser.new_page(viewport=VIEWPORT))
                for layer in ("conv_pw_3_relu", "conv_pw_8_relu", "conv_pw_13_relu"):
                    run_filters(app, args.url, layer, out)
            elif name == "live":
                from convvis_testing.camera import fake_camera_args, fake_camera_file

                with tempfile.TemporaryDirectory(prefix="convvis-screenshots-") as folder:
                    video = Path(folder) / "cat.y4m"
                    fake_camera_file(video)
                    camera = playwright.chromium.launch(executable_path=CHROMIUM,
                                                        args=CHROMIUM_ARGS + fake_camera_args(video))
                    live(camera, args.url, out)
                    camera.close()
            else:
                context = browser.new_context(viewport=VIEWPORT)  # a session of its own per page
                by_page[name](AppPage(context.new_page()), args.url, out)
                context.close()
        browser.close()


if __name__ == "__main__":
    main()
