"""The bad-input corpus (tests/bad_inputs/corpus.py): every case through the core and through its page.

Core: the specific ConvVisError whose message says what is wrong and what to do, or a valid result.
Page: one AppTest session per page takes its cases one after another, as one user would, so each
case also shows that the session goes on: the message is an error box, never a traceback, and the
previous result stays (or the next good input works). Code in an uploaded model never runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import keras
import numpy as np
import pytest

from bad_inputs.corpus import CASES, Pages, code_ran, run_core

ROOT = Path(__file__).resolve().parents[1]
by_name = pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # the 45 MP case warns first


@pytest.fixture(autouse=True)
def no_uploaded_code_runs():
    """Code in an uploaded model (a Lambda, a custom layer) would leave a marker file: checked after every case."""
    yield
    assert not code_ran(), "code carried by an uploaded model file was executed"


@by_name
def test_the_core_refuses_with_a_clear_message_or_works(case, lenet):
    if case.works:
        result = run_core(case, lenet)
        if case.check:
            case.check(result)
        if case.skipped:  # the hostile member is left out and named; the good image is kept
            assert result.names == ["good.png"] and list(result.skipped) == [case.skipped]
    else:
        with pytest.raises(case.error, match=case.message) as raised:
            run_core(case, lenet)
        assert type(raised.value) is case.error  # the specific class, not only a parent of it


@pytest.fixture(scope="module")
def pages(lenet, cache_folder):
    """The page sessions, shared by the cases so each session takes them one after another."""
    return Pages()


@by_name
def test_the_page_shows_the_message_and_goes_on(case, pages):
    outcome = pages.submit(case)
    assert not outcome.exceptions, outcome.exceptions
    if case.page_message:
        assert any(re.search(case.page_message, error) for error in outcome.errors), outcome.errors
    else:
        assert not outcome.errors, outcome.errors
    assert outcome.went_on, outcome.shown
    if case.skipped:  # the page lists what it left out
        assert f"1 {case.skipped}" in outcome.shown, outcome.shown


@pytest.mark.parametrize("case", [case for case in CASES if case.carries_code], ids=lambda case: case.name)
def test_the_marker_proof_is_real_keras_unsafe_mode_would_run_the_code(case, tmp_path):
    """What ConvVis refuses, Keras itself would execute once told to (safe_mode=False), marker and all."""
    path = tmp_path / case.file_name
    path.write_bytes(case.data())
    model = keras.models.load_model(path, compile=False, safe_mode=False)
    model(np.zeros((1, *model.inputs[0].shape[1:]), np.float32))
    assert code_ran()


def test_the_docs_table_has_every_case():
    text = (ROOT / "docs" / "bad-inputs.md").read_text(encoding="utf-8")
    assert [case.name for case in CASES if f"`{case.name}`" not in text] == []
