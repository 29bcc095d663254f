"""The static export: a self-contained site whose every link and picture resolves on disk."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from convvis_core.datasets.catalog import open_dataset
from convvis_core.presentation.site import export_site, slug
from convvis_core.featureviz import PRESETS, visualize_filters
from convvis_core.topk import scan

SETTINGS = PRESETS["keras.io example"].replace(steps=8, size=28)


def exported_site(lenet, folder: Path):
    """LeNet's two conv layers: four pictures each computed (as an atlas would), conv2 scanned on MNIST."""
    for layer in ("conv1_relu", "conv2_relu"):
        visualize_filters(lenet, layer, range(4), SETTINGS)
    mnist = open_dataset("mnist")
    scan(lenet, mnist, "conv2_relu", 100)
    return export_site(lenet, ["conv1_relu", "conv2_relu"], folder, SETTINGS, mnist, 100, examples=3)


def references(page: Path) -> list[str]:
    return re.findall(r"(?:href|src)='([^']+)'", page.read_text(encoding="utf-8"))


def test_every_link_and_picture_of_the_export_resolves_on_disk(lenet, tmp_path):
    summary = exported_site(lenet, tmp_path / "site")
    assert (summary.layers, summary.units, summary.pictures, summary.with_examples) == (2, 20 + 50, 8, 50)
    pages = list((tmp_path / "site").rglob("*.html"))
    assert len(pages) == 1 + 2 + 70
    for page in pages:
        for target in references(page):
            assert not target.startswith(("http:", "https:", "/")), f"{page}: {target} is not relative"
            assert (page.parent / target).resolve().is_file(), f"{page.name}: {target} is missing"
    unit = (tmp_path / "site" / "units" / slug("conv2_relu") / "2.html").read_text(encoding="utf-8")
    assert "Circuit in: what drives it" in unit and "pool1 #" in unit and "Dataset examples" in unit
    assert unit.count("-crop.png") == 6  # top 3 and bottom 3, each with its receptive-field crop
    missing = (tmp_path / "site" / "layers" / f"{slug('conv2_relu')}.html").read_text(encoding="utf-8")
    assert missing.count("not computed") == 50 - 4  # the filters no atlas computed are placeholders


@pytest.mark.slow  # a subprocess: TensorFlow's import alone takes seconds
def test_the_atlas_command_exports_what_it_computed(tmp_path):
    command = [sys.executable, "-m", "convvis_core", "atlas", "lenet_mnist", "--layers", "conv2_relu", "--filters",
               "0-1", "--preset", "keras.io example", "--steps", "4", "--size", "28", "--dataset", "mnist",
               "--images", "64", "--export", str(tmp_path / "site")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "CONVVIS_CACHE_DIR": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    assert "exported 50 unit pages of 1 layers (2 with pictures, 50 with dataset examples)" in result.stdout
    assert (tmp_path / "site" / "units" / "conv2_relu" / "1.html").is_file()
