"""Keep Keras' global state across Streamlit script runs.

Streamlit's script runner calls ``keras.backend.clear_session()`` after every script run of every
session (``_clean_problem_modules`` in ``streamlit/runtime/scriptrunner/script_runner.py``, 1.67).
In Keras 3 that swaps out the global state of every thread at once (layer-name counters, name-scope
stack, dtype policy, stateless and symbolic scopes) while other sessions are building or running
models in their own threads, clears TensorFlow's kernel cache, and runs ``gc.collect()`` over a heap
full of TensorFlow objects: a fraction of a second of server CPU per click. ConvVis shares its
models and what it builds from them between sessions on purpose, so it has nothing to clear.

Streamlit has no option for this, so :func:`keep_keras_state` swaps that function for one doing
the rest of what it does (closing matplotlib's figures). ``tests/test_keras_state.py`` fails when a
Streamlit upgrade changes the function, so the replacement is reviewed again then.
"""

from __future__ import annotations

import sys

from streamlit.runtime.scriptrunner import script_runner

STREAMLIT_HOOK = "_clean_problem_modules"  # looked up in script_runner's module at every run's end


def cleanup_without_clearing_keras() -> None:
    """Streamlit's cleanup after a script run, less ``keras.backend.clear_session()``."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


def keep_keras_state() -> None:
    """Make Streamlit's script runner stop resetting Keras after each run (idempotent)."""
    setattr(script_runner, STREAMLIT_HOOK, cleanup_without_clearing_keras)
