"""Streamlit's after-run cleanup, which ConvVis replaces (``convvis_ui/keras_state.py``): the function
replaced must still be the one reviewed, still be called after every script run, and be replaced
once ``convvis_ui`` is imported; the replacement still does the rest of Streamlit's cleanup. That a
session finishing never disturbs another session's computation is tested in test_concurrency.py."""

from __future__ import annotations

import ast
import hashlib
import inspect

import matplotlib.pyplot as plt
from streamlit.runtime.scriptrunner import script_runner

import convvis_ui  # noqa: F401  (replaces the cleanup, as every page's import does)
from convvis_ui.keras_state import STREAMLIT_HOOK, cleanup_without_clearing_keras

# Streamlit 1.67's _clean_problem_modules: keras.backend.clear_session(), then plt.close("all").
REVIEWED_SHA256 = "49d56731add163174c2f784c87d4aa3d759375b0af5b8a732bf916301ea2cce5"


def streamlit_source(function: str) -> str:
    """A function's source as script_runner.py defines it (the file, not the patched module)."""
    source = inspect.getsource(script_runner)
    found = [node for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.FunctionDef) and node.name == function]
    assert found, f"streamlit/runtime/scriptrunner/script_runner.py has no {function}() any more"
    return ast.get_source_segment(source, found[0])


def test_streamlits_cleanup_is_the_one_reviewed():
    digest = hashlib.sha256(streamlit_source(STREAMLIT_HOOK).encode()).hexdigest()
    assert digest == REVIEWED_SHA256, (
        f"Streamlit changed {STREAMLIT_HOOK}(): read it, make convvis_ui/keras_state.py do what it now does "
        "less keras.backend.clear_session() (or drop the module if Streamlit no longer clears Keras), then "
        f"update REVIEWED_SHA256 to {digest}")


def test_streamlit_calls_the_cleanup_after_every_script_run():
    assert f"_log_if_error({STREAMLIT_HOOK})" in streamlit_source("_run_script")


def test_importing_convvis_ui_replaces_the_cleanup():
    assert getattr(script_runner, STREAMLIT_HOOK) is cleanup_without_clearing_keras


def test_the_replacement_still_closes_matplotlib_figures():
    plt.figure()
    cleanup_without_clearing_keras()
    assert plt.get_fignums() == []
