"""Tools that drive the ConvVis app from outside, for its tests, benchmarks and scripts.

``browser``: Debian's chromium through Playwright against ``streamlit run app.py``, used by
``tests/test_browser.py``, ``bench/serve_cost.py`` and ``scripts/screenshots.py``. Not installed
with the app (pyproject.toml's packages leave it out): it needs Playwright, a dev requirement, and
the app never imports it (an import-linter contract in pyproject.toml). It is imported from the
repository root, which pytest (``pythonpath`` in pytest.ini) and the bench and script files put on
``sys.path``.

``camera``: the cat photo as Chromium's fake camera, for ``tests/test_live_page.py`` and ``bench/live_fps.py``.

``models``: LeNet copies fine-tuned in seconds with chosen layers frozen, and one-convolution models, for
``tests/test_compare.py`` and ``tests/test_atlas_compare.py``.
"""
