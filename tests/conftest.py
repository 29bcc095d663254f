"""Shared fixtures: a private cache folder for the whole run, and the real models, loaded once."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_CACHE = tempfile.mkdtemp(prefix="convvis-test-cache-")
os.environ["CONVVIS_CACHE_DIR"] = _CACHE  # conversions run for real, from the package weights
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def cache_folder() -> str:
    return _CACHE


@pytest.fixture(scope="session")
def mobilenet():
    from convvis_core.models import load_model

    return load_model("mobilenet")


@pytest.fixture(scope="session")
def efficientnet():
    from convvis_core.models import load_model

    return load_model("efficientnet_lite0")


@pytest.fixture(scope="session")
def lenet():
    from convvis_core.models import load_model

    return load_model("lenet_mnist")


_BIG_MODELS = {"mobilenet", "efficientnet"}


def pytest_collection_modifyitems(config, items):
    """Tiers: ``slow`` for every test that loads a big real model (or says so itself), ``browser`` for
    the real-browser tests; ``python -m pytest -m "not slow and not browser"`` is the quick tier."""
    for item in items:
        if _BIG_MODELS & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        if item.path.name == "test_browser.py":
            item.add_marker(pytest.mark.browser)

