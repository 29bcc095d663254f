"""The command line prints what the core computes (run as a user would, in a subprocess)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from convvis_core.samples import load_sample


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "convvis_core", *args], capture_output=True, text=True,
                          timeout=300)


def test_predict_names_the_egyptian_cat_first(mobilenet, tmp_path):
    photo = tmp_path / "chelsea.png"
    load_sample("chelsea").save(photo)
    result = cli("predict", "mobilenet", str(photo), "--top", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("1. Egyptian cat")
    assert 0.5 < float(lines[0].split()[3]) <= 1.0


def test_models_and_layers_list_what_the_core_knows(mobilenet):
    models = cli("models")
    assert models.returncode == 0 and "mobilenet" in models.stdout and "(default)" in models.stdout
    assert "needs download" in models.stdout  # keras.applications entries say so
    layers = cli("layers", "mobilenet")
    assert layers.returncode == 0, layers.stderr
    row = next(line for line in layers.stdout.splitlines() if line.startswith("conv_pw_13_relu"))
    assert row.split()[-1] == "7×7×1024"


@pytest.mark.parametrize("args, message", [
    (("predict", "mobilenet", "/no/such/photo.jpg"), "No such image file"),
    (("predict", "no_such_model", "chelsea"), "Unknown model 'no_such_model'"),
    (("predict", "vgg16_hed", "chelsea"), "not class scores"),
])
def test_bad_input_is_a_one_line_error_and_exit_code_2(mobilenet, args, message):
    result = cli(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_filters_defaults_to_the_preset_for_the_models_input_size_and_reaches_every_filter(lenet, tmp_path):
    out = tmp_path / "grid.png"
    result = cli("filters", "lenet_mnist", "conv2_relu", "--filters", "0-3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "preset: pixels at model size" in result.stderr  # LeNet's 28×28 inputs
    rows = [line for line in result.stdout.splitlines() if line.startswith("filter ")]
    assert len(rows) == 4 and not [row for row in rows if "weak" in row or "dead" in row], rows
    assert out.stat().st_size > 0
