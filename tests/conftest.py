"""Shared fixtures: a private cache folder for the whole run, the real models, loaded once, and the small
models trained here that core and page tests share, trained once."""

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


@pytest.fixture(scope="session")
def two_heads(tmp_path_factory):
    """test_model_kinds' two-head model trained a few epochs, saved as .keras and loaded back as a user's
    file; once a run, for its tests and the Heatmaps page's."""
    import keras

    from convvis_core.models.uploaded import load_model_file
    from test_model_kinds import square_pictures, two_head_model

    keras.utils.set_random_seed(0)
    pixels, there, column, _ = square_pictures(1500, seed=0)
    model = two_head_model()
    model.compile(keras.optimizers.Adam(1e-3), ["sparse_categorical_crossentropy", "mse"])
    model.fit(pixels, [there, column], epochs=5, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("two_heads") / "two_heads.keras"
    model.save(path)
    return model, path, load_model_file(path)


@pytest.fixture(scope="session")
def unet(tmp_path_factory):
    """test_model_kinds' U-Net trained on its shapes, saved and loaded back; once a run, as ``two_heads``."""
    import keras

    from convvis_core.models.uploaded import load_model_file
    from test_model_kinds import shape_pictures, unet_model

    keras.utils.set_random_seed(1)
    pixels, labels = shape_pictures(800, seed=2)
    model = unet_model()
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(pixels, labels, epochs=8, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("unet") / "unet.keras"
    model.save(path)
    return model, path, load_model_file(path)


@pytest.fixture(scope="session")
def inverted_tuned(lenet):
    """LeNet fine-tuned on inverted digits (black on white), as test_compare's tests and the Compare page
    use it; once a run."""
    from convvis_core.datasets.packaged import mnist_dataset
    from convvis_testing.models import copy_model, fine_tune

    digits = mnist_dataset()
    tuned = copy_model(lenet, "inverted")
    fine_tune(tuned, 255 - digits.images[:2000], digits.labels[:2000], (), epochs=2)  # white on black → black on white
    return tuned


_BIG_MODELS = {"mobilenet", "efficientnet"}


def pytest_collection_modifyitems(config, items):
    """Tiers: ``slow`` for every test that loads a big real model (or says so itself), ``browser`` for
    the real-browser tests; ``python -m pytest -m "not slow and not browser"`` is the quick tier."""
    for item in items:
        if _BIG_MODELS & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        if item.path.name == "test_browser.py":
            item.add_marker(pytest.mark.browser)

