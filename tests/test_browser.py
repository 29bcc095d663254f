"""End to end in a real browser: ``streamlit run app.py`` on a free port, Debian's chromium driven
by Playwright through every page as a user would, each step checked on what the page shows.

Skipped when /usr/bin/chromium or Playwright is missing, unless ``CONVVIS_REQUIRE_BROWSER=1``
(CI sets it), which turns the skip into a failure. Screenshots of every step, and the server's
log, go to ``$CONVVIS_TEST_ARTIFACTS`` (default ``test-artifacts/browser``).
"""

from __future__ import annotations

import os
import re
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from convvis_core.samples import load_sample

try:
    from convvis_testing import browser
    from convvis_testing.browser import AppPage
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)  # the page renders what a run sent after the run's end
except ImportError as error:  # Playwright not installed
    browser = None
    MISSING_PLAYWRIGHT = f"Playwright is not importable ({error}); pip install -r requirements-dev.txt"

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = os.environ.get("CONVVIS_REQUIRE_BROWSER") == "1"
ARTIFACTS = Path(os.environ.get("CONVVIS_TEST_ARTIFACTS") or ROOT / "test-artifacts" / "browser")
MOBILENET = "MobileNet V1 (offline)"
LENET = "LeNet, MNIST digits (offline)"


def missing_browser() -> str | None:
    if browser is None:
        return MISSING_PLAYWRIGHT
    if not os.access(browser.CHROMIUM, os.X_OK):
        return f"{browser.CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.fixture(scope="module", autouse=True)
def browser_available() -> None:
    reason = missing_browser()
    if reason is None:
        return
    if REQUIRED:
        pytest.fail(f"CONVVIS_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(f"browser test skipped: {reason} (set CONVVIS_REQUIRE_BROWSER=1 to make this a failure)")


@dataclass
class Server:
    url: str
    fresh: bool = True  # no browser session has been opened on it yet


@pytest.fixture(scope="module")
def server(browser_available, cache_folder) -> Iterator[Server]:
    assert os.environ["CONVVIS_CACHE_DIR"] == cache_folder  # the app converts models into the tests' cache
    for old in [*ARTIFACTS.glob("*.png"), *ARTIFACTS.glob("server*.log")]:  # this run's files only
        old.unlink()
    with browser.serve(ARTIFACTS / "server.log") as served:
        yield Server(served.url)


@pytest.fixture(scope="module")
def chromium(browser_available):
    with sync_playwright() as playwright:
        launched = browser.launch(playwright)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def app(server, chromium) -> Iterator[AppPage]:
    """One user's tab, shared by the tour's steps in file order (the model, the upload and the
    page carry over as they do for a user; each step sets what it needs itself)."""
    context = chromium.new_context(viewport=browser.VIEWPORT)
    page = AppPage(context.new_page())
    server.fresh = False
    page.open(server.url)
    yield page
    context.close()


@contextmanager
def step(app: AppPage, name: str) -> Iterator[None]:
    """Screenshot the step (FAILED_<name>.png if it failed) and check the page shows no exception
    box or error message."""
    try:
        yield
        problems = app.problems()
        assert not problems, f"{name}: the page shows an error: {problems}"
    except BaseException:
        try:
            app.screenshot(ARTIFACTS / f"FAILED_{name}.png")
        except Exception:  # the browser itself is gone: the original error says more
            pass
        raise
    app.screenshot(ARTIFACTS / f"{name}.png")


def use_model(app: AppPage, display_name: str) -> None:
    app.choose(app.sidebar.get_by_role("combobox", name="Model", exact=True), display_name)


def top_prediction_is(app: AppPage, label: str) -> None:
    """The top bar of the home page's Top-5 chart is ``label`` (plotly draws bars bottom-up), and it shows."""
    app.page.wait_for_function(
        """label => {
            const chart = document.querySelector("[data-testid='stMain'] .js-plotly-plot");
            return Boolean(chart && chart.data && chart.data[0].y[chart.data[0].y.length - 1] === label);
        }""", arg=label, timeout=60_000)
    expect(app.main.get_by_text(label, exact=True)).to_be_visible()


def images_shown(app: AppPage, at_least: int) -> None:
    """Wait until at least ``at_least`` images of the main area have loaded (decoded, not broken)."""
    app.page.wait_for_function(
        """least => [...document.querySelectorAll("[data-testid='stMain'] [data-testid='stImage'] img")]
                    .filter(image => image.complete && image.naturalWidth > 0).length >= least""",
        arg=at_least, timeout=60_000)


def charts_shown(app: AppPage, at_least: int) -> None:
    app.page.wait_for_function(
        """least => document.querySelectorAll("[data-testid='stMain'] .js-plotly-plot").length >= least""",
        arg=at_least, timeout=60_000)


@pytest.mark.parametrize("path, title, control", [("filters", "Filters", "Layer"),
                                                  ("heatmaps", "Heatmaps", "Layer the map is computed at")])
def test_a_deep_link_opens_its_page_on_a_fresh_server(server, chromium, path, title, control):
    """/filters or /heatmaps typed into a new browser, as the first request a server gets: that page,
    not the home page, and no "Page not found" dialog (page files are named after their URL paths)."""
    with ExitStack() as stack:
        url = server.url if server.fresh else stack.enter_context(browser.serve(ARTIFACTS / f"server-{path}.log")).url
        server.fresh = False
        context = chromium.new_context(viewport=browser.VIEWPORT)
        stack.callback(context.close)
        app = AppPage(context.new_page())
        with step(app, f"00_deep_link_{path}"):
            app.open(f"{url}/{path}")
            app.main.get_by_role("heading", name=title, exact=True).wait_for()
            expect(app.main.get_by_role("combobox", name=control)).to_be_visible()
            for page in ("Home", "Filters", "Heatmaps", "Unit"):  # the same navigation as on any other visit
                expect(app.sidebar.get_by_role("link", name=page, exact=True)).to_be_visible()
            app.page.wait_for_timeout(1_000)  # the dialog, when Streamlit shows one, comes with the first run
            expect(app.page.get_by_role("dialog")).to_have_count(0)


def test_home_shows_the_default_model_and_its_top5(app):
    with step(app, "01_home_mobilenet"):
        app.main.get_by_role("heading", name="ConvVis", exact=True).wait_for()
        expect(app.sidebar.get_by_role("combobox", name="Model", exact=True)).to_have_value(MOBILENET)
        expect(app.main.get_by_role("heading", name=MOBILENET)).to_be_visible()
        expect(app.main.get_by_test_id("stMetricValue").get_by_text("224×224×3", exact=True)).to_be_visible()
        app.main.get_by_text("Top-5 predictions").wait_for()
        top_prediction_is(app, "Egyptian cat (285)")  # the default sample, Chelsea the cat
        expect(app.main.get_by_text("chelsea, as the model sees it (224×224)")).to_be_visible()


def test_switching_the_model_in_the_sidebar(app):
    with step(app, "02_home_lenet"):
        use_model(app, LENET)
        app.main.get_by_role("heading", name=LENET).wait_for()
        expect(app.main.get_by_test_id("stMetricValue").get_by_text("28×28×1", exact=True)).to_be_visible()
        app.choose(app.main.get_by_role("combobox", name="Image"), "MNIST digit 4")
        app.main.get_by_text("digit_4, as the model sees it (28×28)").wait_for()
        top_prediction_is(app, "4 (4)")


def test_an_uploaded_image_is_predicted(app, tmp_path):
    seven = tmp_path / "seven.png"
    load_sample("digit_7").save(seven)  # a held-out MNIST 7, as a user's PNG
    with step(app, "03_home_upload"):
        use_model(app, LENET)
        app.upload(seven)
        app.main.get_by_text("seven.png, as the model sees it (28×28)").wait_for()
        expect(app.main.get_by_role("combobox", name="Image")).to_have_value("Your upload")
        top_prediction_is(app, "7 (7)")


def test_filters_page_runs_a_visualization_and_shows_the_grid(app):
    with step(app, "04_filters"):
        use_model(app, LENET)
        app.go_to("Filters")
        expect(app.sidebar.get_by_role("combobox", name="Preset")).to_have_value("pixels at model size")
        app.choose(app.main.get_by_role("combobox", name="Layer"), "conv2_relu")
        app.fill(app.main.get_by_role("textbox", name="Indices and ranges"), "0-3")
        app.click(app.main.get_by_role("button", name="Run on 4 filters", exact=True))
        app.main.get_by_text("conv2_relu: 4 filter(s), strongest first").wait_for()
        app.main.get_by_text(re.compile(r"^Done: 4 image\(s\), \d from the cache$")).wait_for()
        images_shown(app, 5)  # 4 tiles and the enlarged one
        for index in range(4):
            expect(app.main.get_by_text(re.compile(rf"^#{index} · "))).to_have_count(1)  # filter index's tile
        expect(app.main.get_by_role("button", name="Download grid (PNG)")).to_be_visible()


def test_activations_page_shows_feature_maps(app):
    with step(app, "05_activations"):
        use_model(app, LENET)
        app.go_to("Activations")
        app.main.get_by_text("Progression through the network").wait_for()
        app.main.get_by_text(re.compile(r", as the model sees it \(28×28\)$")).wait_for()
        expect(app.main.get_by_role("heading", name="conv1_relu", exact=True)).to_be_visible()
        expect(app.main.get_by_text(re.compile(r"^Activation, 28×28, 20 channels · "))).to_be_visible()
        charts_shown(app, 4)  # per layer: all channels as one grid, and one channel large
        images_shown(app, 4)  # the input, the progression thumbnails, the overlays


def test_heatmaps_page_shows_heatmaps_and_their_scores(app):
    with step(app, "06_heatmaps"):
        use_model(app, LENET)
        app.go_to("Heatmaps")
        app.main.get_by_text("Which map to trust", exact=True).wait_for()
        explained = app.main.get_by_role("combobox", name=re.compile("^Explain class"))
        expect(explained).to_have_value(re.compile(r"^\d \(\d\)$"))  # starts at the top prediction
        for title in ("Grad-CAM", "Grad-CAM++", "Layer-CAM"):
            expect(app.main.get_by_role("heading", name=title, exact=True)).to_be_visible()
        expect(app.main.get_by_text("Deletion AUC ↓", exact=True)).to_have_count(3)
        app.main.get_by_text(re.compile(r"^3 heatmap\(s\) for ")).wait_for()
        charts_shown(app, 6)  # a map and its deletion/insertion curves per method


def test_top_k_page_scans_mnist_and_shows_the_examples(app):
    with step(app, "07_top_k"):
        use_model(app, LENET)
        app.go_to("Top k")
        expect(app.main.get_by_role("combobox", name="Dataset")).to_have_value("MNIST digits (5,000)")
        app.fill(app.main.get_by_role("spinbutton", name="Images to scan"), "240")
        results = app.main.get_by_text(re.compile(r"top 9 of 240 images$"))
        scan = app.main.get_by_role("button", name=re.compile(r"^Scan 240 images on "))
        scan.or_(results).first.wait_for()
        if scan.is_visible():  # not in the disk cache from an earlier run
            app.click(scan)
        results.wait_for()
        app.main.get_by_text(re.compile(r"^Bottom 9: the images #\d+ responds to least$")).wait_for()
        first = app.main.get_by_text(re.compile(r"^1\. #\d+ · digit \d · max "))
        expect(first).to_have_count(2)  # of the top list and of the bottom list
        images_shown(app, 18)
        charts_shown(app, 1)  # the histogram of the filter's maxima


def test_circuits_page_shows_a_filters_inputs(app):
    with step(app, "08_circuits"):
        use_model(app, LENET)
        app.go_to("Circuits")
        app.main.get_by_text(re.compile(r"^Strongest inputs from ")).wait_for()
        app.main.get_by_text(re.compile(r"^Feature visualizations: 7 image\(s\)")).wait_for()
        app.main.get_by_text(re.compile(r"^Top 6 of \d+ inputs by kernel-slice L2 norm$")).wait_for()
        assert app.main.get_by_text(re.compile("^(excitatory|inhibitory)$")).count() >= 6  # the inputs' badges
        images_shown(app, 7)  # the filter and its six strongest inputs, optimized
        charts_shown(app, 6)  # their kernels


def test_concepts_page_tests_drawn_stripes_against_a_digit(app):
    """Concepts on LeNet: the default drawn concept (stripes) against a digit, tested at a click, its verdict shown."""
    with step(app, "08_concepts_tcav"):
        use_model(app, LENET)
        app.go_to("Concepts")
        expect(app.main.get_by_role("combobox", name="Pattern")).to_have_value("stripes")
        app.click(app.main.get_by_role("button", name=re.compile(r"^Test the concept at 1 layer")))
        app.main.get_by_text(re.compile(r"^(Significant|Not significant|Not meaningful)")).first.wait_for()
        expect(app.main.get_by_text("CAV held-out accuracy", exact=True)).to_be_visible()
        charts_shown(app, 1)  # every run's score against the random directions'
        expect(app.main.get_by_role("button", name="Download scores (CSV)")).to_be_visible()


def test_an_uploaded_transfer_learning_model_is_explained_inside_its_base(app, mobilenet, tmp_path):
    """The model users bring most: an ImageNet base nested in a new classifier, Grad-CAM inside the base."""
    import keras
    from test_own_models import mobilenet_base

    inputs = keras.Input((224, 224, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(mobilenet_base(mobilenet)(inputs, training=False))
    keras.Model(inputs, keras.layers.Dense(5, activation="softmax", name="flowers")(pooled)).save(tmp_path / "flowers.keras")
    with step(app, "09_own_model_heatmaps"):
        app.sidebar.get_by_text("Use your own model").click()
        app.upload(tmp_path / "flowers.keras", within=app.sidebar)
        expect(app.sidebar.get_by_role("combobox", name="Model", exact=True)).to_have_value(re.compile("flowers.keras$"))
        expect(app.sidebar.get_by_text(re.compile(r"^Pixels: tf, "))).to_be_visible()  # inferred from the base
        app.go_to("Heatmaps")
        layer = app.main.get_by_role("combobox", name="Layer the map is computed at")
        app.choose(layer, "mobilenet_1.00_224/conv_pw_11_relu")
        expect(layer).to_have_value(re.compile("^mobilenet_1.00_224/conv_pw_11_relu"))
        app.main.get_by_text(re.compile(r"^3 heatmap\(s\) for ")).wait_for()
        for title in ("Grad-CAM", "Grad-CAM++", "Layer-CAM"):
            expect(app.main.get_by_role("heading", name=title, exact=True)).to_be_visible()
        expect(app.main.get_by_text("Deletion AUC ↓", exact=True)).to_have_count(3)
        charts_shown(app, 6)


def test_an_uploaded_segmentation_model_is_explained_for_a_class_over_a_region(app, tmp_path):
    """A tiny U-Net trained here on squares and discs: uploaded with its class names, a picture of both
    shapes, the class 'square' over the pixels the model predicts as square: its mask, heatmaps and scores."""
    import keras
    from PIL import Image
    from test_model_kinds import picture, shape_pictures, unet_model

    keras.utils.set_random_seed(1)
    pixels, labels = shape_pictures(800, seed=2)
    model = unet_model()
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(pixels, labels, epochs=8, batch_size=32, verbose=0)
    model.save(tmp_path / "unet.keras")
    (tmp_path / "shapes.txt").write_text("background\nsquare\ndisc\n")
    picture(shape_pictures(1, seed=3)[0][0]).resize((128, 128), Image.NEAREST).save(tmp_path / "shapes.png")
    with step(app, "10_segmentation_heatmaps"):
        app.sidebar.get_by_text("Use your own model").click()
        app.upload(tmp_path / "unet.keras", within=app.sidebar)
        expect(app.sidebar.get_by_role("combobox", name="Model", exact=True)).to_have_value(re.compile("unet.keras$"))
        expect(app.sidebar.get_by_text(re.compile(r"a per-pixel class map \(segmentation\)"))).to_be_visible()
        with app.rerun():
            app.sidebar.get_by_test_id("stFileUploaderDropzoneInput").nth(1).set_input_files(str(tmp_path / "shapes.txt"))
        app.go_to("Heatmaps")
        app.upload(tmp_path / "shapes.png")
        app.choose(app.main.get_by_role("combobox", name="Explain class"), "square")
        with app.rerun():
            app.main.get_by_text("where the model predicts this class", exact=True).click()
        app.main.get_by_text(re.compile(r"^3 heatmap\(s\) for square \(class 1\) over the pixels predicted as square")).wait_for()
        app.main.get_by_text(re.compile(r"^\*?\*?Score\*?\*? in the curves below|^Score in the curves below")).wait_for()
        expect(app.main.get_by_text("region's mean probability", exact=False).first).to_be_visible()
        expect(app.main.get_by_text(re.compile(r"^Predicted mask · explained region outlined"))).to_be_visible()
        for title in ("Grad-CAM", "Grad-CAM++", "Layer-CAM"):
            expect(app.main.get_by_role("heading", name=title, exact=True)).to_be_visible()
        expect(app.main.get_by_text("Deletion AUC ↓", exact=True)).to_have_count(3)
        expect(app.main.get_by_test_id("stMetricLabel").filter(has_text="ROAD ↑")).to_have_count(3)
        app.main.get_by_text("Which map to trust", exact=True).wait_for()
        charts_shown(app, 6)


def test_a_unit_page_opens_from_its_url_links_onward_and_back(chromium):
    """A lecturer's bookmark of one filter, as a server's first request: every section, no dialog; a
    circuit input's link opens that filter's page, the back button returns, a wrong URL is explained."""
    unit = "unit?model=lenet_mnist&layer=conv2_relu&filter=3"
    with ExitStack() as stack:
        url = stack.enter_context(browser.serve(ARTIFACTS / "server-unit.log")).url
        context = chromium.new_context(viewport=browser.VIEWPORT)
        stack.callback(context.close)
        app = AppPage(context.new_page())
        with step(app, "10_unit_first_request"):
            app.open(f"{url}/{unit}")
            app.main.get_by_role("heading", name="conv2_relu · filter 3").wait_for()
            for section in ("Circuit in: what drives it", "Circuit out: what it drives", "Where it fires on your image",
                            "Dataset examples"):
                expect(app.main.get_by_role("heading", name=section)).to_be_visible()
            expect(app.page.get_by_role("dialog")).to_have_count(0)
            expect(app.sidebar.get_by_role("combobox", name="Model", exact=True)).to_have_value(LENET)
            images_shown(app, 1 + 6 + 2)  # its picture, six inputs' pictures, its map and its Grad-CAM
        with step(app, "11_unit_follow_an_input"):
            first = app.main.get_by_role("link", name=re.compile(r"^pool1 #\d+$")).first
            index = first.inner_text().split("#")[1]
            with app.rerun():
                first.click()
            app.main.get_by_role("heading", name=f"pool1 · filter {index}").wait_for()
            assert f"filter={index}" in app.page.url and "layer=pool1" in app.page.url
        with step(app, "12_unit_back"):
            with app.rerun():
                app.page.go_back()
            app.main.get_by_role("heading", name="conv2_relu · filter 3").wait_for()
        with step(app, "13_unit_cached_again"):
            started = time.perf_counter()
            app.open(f"{url}/{unit}")
            app.main.get_by_role("heading", name="conv2_relu · filter 3").wait_for()
            images_shown(app, 1 + 6 + 2)
            seconds = time.perf_counter() - started
            (ARTIFACTS / "unit-page-timing.txt").write_text(f"cached unit page, new session: {seconds:.2f} s\n")
        with step(app, "14_unit_bad_url"):
            app.open(f"{url}/unit?model=lenet_mnist&layer=conv9&filter=9999")
            expect(app.main.get_by_text("LeNet, MNIST digits (offline) has no layer 'conv9' with filters; showing "
                                        "pool2 instead")).to_be_visible()
            expect(app.main.get_by_text("so there is no filter '9999'; showing #49 instead")).to_be_visible()
            app.main.get_by_role("heading", name="pool2 · filter 49").wait_for()  # the default layer, its last filter
            app.open(f"{url}/unit?model=no_such_model&layer=conv2_relu&filter=9999")
            expect(app.sidebar.get_by_text("The link names the model 'no_such_model'")).to_be_visible()


def test_the_static_export_opens_from_a_folder_without_a_server(chromium, lenet, tmp_path):
    """The lecture-hall case: the exported site from file://, index → layer → unit, every picture loads."""
    from test_export import exported_site

    site = exported_site(lenet, tmp_path / "site").folder
    context = chromium.new_context(viewport=browser.VIEWPORT)
    page = context.new_page()
    try:
        page.goto((site / "index.html").as_uri())
        page.get_by_role("link", name="conv2_relu").click()
        page.get_by_role("heading", name="conv2_relu").wait_for()
        page.get_by_role("link", name=re.compile(r"(^|\s)#2$")).click()  # the picture (alt text) and its number
        page.get_by_role("heading", name="conv2_relu · filter 2").wait_for()
        images = page.locator("img")
        assert images.count() >= 1 + 6 + 6  # its picture, top and bottom examples with crops, inputs
        broken = page.evaluate("() => [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))"
                               ".map(i => i.getAttribute('src'))")
        assert broken == []
        page.screenshot(path=str(ARTIFACTS / "15_export_unit.png"), full_page=True)
    finally:
        context.close()
