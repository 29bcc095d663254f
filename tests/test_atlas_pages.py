"""The pages after an atlas job: the Filters page on a read-only cache computes without saving, and
after the issue's own command on MobileNet (8 filters a layer where it asked 32: the same path, a third
of the time) the Filters and Top k pages answer from the atlas's cache."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from app_session import app_on
from convvis_core.atlas import AtlasRequest, run_atlas
from convvis_core.cache import not_saving, unwritable
from test_atlas import CLI, ROOT, cli_env, entries

pytestmark = pytest.mark.slow  # real jobs, subprocesses and pages: minutes, not seconds


def run_filters_page(model: str, layer: str, spec: str, preset: str = "quick preview") -> AppTest:
    """The Filters page after choosing ``preset`` (the atlas runs' here) and pressing Run on ``spec`` filters of ``layer``."""
    at = app_on("filters", timeout=600)
    at.session_state["convvis_model"] = model
    at.session_state[f"layer_{model}"] = layer
    at.session_state[f"filters_spec_{layer}"] = spec
    at.run()
    next(box for box in at.sidebar.selectbox if box.label == "Preset").select(preset).run()
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` and all in it unwritable, for root too (the immutable attribute), restored afterwards."""
    paths = [folder, *folder.rglob("*")]
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", *map(str, paths)], check=True)
    else:
        for path in paths:
            path.chmod(path.stat().st_mode & ~0o222)
    try:
        assert unwritable(folder) is not None, "could not make the folder read-only"
        yield
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", *map(str, paths)], check=True)
        else:
            for path in paths:
                path.chmod(path.stat().st_mode | 0o200)


def test_a_read_only_cache_stops_the_job_and_the_app_computes_without_saving(lenet, tmp_path, monkeypatch):
    run_atlas(AtlasRequest("lenet_mnist", ("conv1",), "0-1", "quick preview"), folder=tmp_path)  # as the page's
    before = entries(tmp_path)
    with read_only(tmp_path):
        stopped = subprocess.run(CLI, env=cli_env(tmp_path), cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert stopped.returncode == 2
        assert f"The cache folder {tmp_path} cannot be written" in stopped.stderr and "stops" in stopped.stderr

        monkeypatch.setenv("CONVVIS_CACHE_DIR", str(tmp_path))
        at = run_filters_page("lenet_mnist", "conv1", "0-3")
        assert [status.label for status in at.get("status")] == ["Done: 4 image(s), 2 from the cache"]
        assert any("Results are not being saved" in warning.value for warning in at.sidebar.warning)
        assert at.subheader[0].value == "conv1: 4 filter(s), strongest first"
    assert sorted(entries(tmp_path)) == sorted(before)  # nothing was written
    monkeypatch.setenv("CONVVIS_CACHE_DIR", str(tmp_path / "another"))  # the failed folder's caches are not this one's
    assert not_saving() is None
    assert not run_filters_page("lenet_mnist", "conv1", "0-1").sidebar.warning


def test_the_issue_atlas_runs_with_a_progress_bar_and_the_pages_answer_from_it(mobilenet, cache_folder, tmp_path,
                                                                               monkeypatch):
    (tmp_path / "models").symlink_to(Path(cache_folder) / "models")  # the converted MobileNet, not again
    result = subprocess.run(
        [sys.executable, "-m", "convvis_core", "atlas", "mobilenet", "--layers", "conv_pw_3_relu", "conv_pw_8_relu",
         "conv_pw_13_relu", "--filters", "0-7", "--preset", "quick preview", "--dataset", "gallery"],
        env={**cli_env(tmp_path), "COLUMNS": "120"}, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stderr
    assert "filters" in result.stderr and "24/24" in result.stderr and "images" in result.stderr
    assert "filters: 24 in 3 layer(s): 24 computed, 0 from the cache" in result.stdout
    monkeypatch.setenv("CONVVIS_CACHE_DIR", str(tmp_path))

    filters_page = run_filters_page("mobilenet", "conv_pw_8_relu", "0-7")
    assert [status.label for status in filters_page.get("status")] == ["Done: 8 image(s), 8 from the cache"]

    topk_page = app_on("top_k", timeout=600)
    topk_page.session_state["topk_layer_mobilenet"] = "conv_pw_13_relu"
    topk_page.run()
    assert not topk_page.exception and not topk_page.error
    assert not [button for button in topk_page.button if button.label.startswith("Scan")]
    assert not topk_page.get("status")  # no scan ran
    assert topk_page.subheader[0].value.startswith("conv_pw_13_relu #") and "images" in topk_page.subheader[0].value
