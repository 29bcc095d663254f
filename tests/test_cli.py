"""The command line prints what the core computes (run as a user would, in a subprocess)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from convvis_core import quiet
from convvis_core.samples import load_sample

ROOT = Path(__file__).resolve().parents[1]

TENSORFLOW_CHATTER = re.compile(r"absl::InitializeLog|port\.cc|cudart_stub|oneDNN|cpu_feature_guard|^[IWEF]\d{4} ")


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "convvis_core", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_predict_names_the_egyptian_cat_first(mobilenet, tmp_path):
    photo = tmp_path / "chelsea.png"
    load_sample("chelsea").save(photo)
    result = cli("predict", "mobilenet", str(photo), "--top", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("1. Egyptian cat")
    assert 0.5 < float(lines[0].split()[3]) <= 1.0


def test_the_command_line_starts_without_tensorflows_log_lines(mobilenet):
    """TensorFlow's C++ libraries log before absl is initialized, which TF_CPP_MIN_LOG_LEVEL does not govern:
    run as a user would, without that variable, stderr holds only ConvVis's own lines."""
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    result = cli("predict", "mobilenet", "chelsea", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1. Egyptian cat")
    lines = result.stderr.splitlines()
    assert not [line for line in lines if TENSORFLOW_CHATTER.search(line)], result.stderr
    assert [line for line in lines if not line.startswith(("preprocessing: ", "Converting ", "Loading "))] == []
    assert lines[-1].startswith("preprocessing: tf ")


def test_a_failing_tensorflow_import_shows_all_it_printed(tmp_path):
    """The import's stderr is held only to drop log records: a broken install still says everything."""
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text(
        "import os\n"
        "os.write(2, b'I0000 00:00:1796630361.247836    5418 port.cc:153] oneDNN custom operations are on.\\n')\n"
        "raise ImportError('libtensorflow_framework.so.2: cannot open shared object file')\n")
    result = subprocess.run([sys.executable, "-c", "import convvis_core"], capture_output=True, text=True, timeout=60,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 1
    assert "port.cc:153] oneDNN custom operations are on." in result.stderr
    assert result.stderr.rstrip().endswith("ImportError: libtensorflow_framework.so.2: cannot open shared object file")


def test_only_the_records_the_log_level_holds_back_are_dropped():
    info = "I0000 00:00:1796630361.247836    5418 port.cc:153] oneDNN custom operations are on.\n"
    error = "E0000 00:00:1796630867.031609   11830 cuda_platform.cc:52] failed call to cuInit\n"
    warning = "/venv/tensorflow/__init__.py:4: UserWarning: a Python warning while importing\n"
    text = quiet.NOT_INITIALIZED + "\n" + info + error + warning
    assert quiet.without_held_records(text, 0) == text
    assert quiet.without_held_records(text, 1) == error + warning
    assert quiet.without_held_records(text, 3) == warning


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
