"""Streamlit pieces shared by every page: the sidebar model picker, the image picker, caching.

The core (``convvis_core``) knows nothing of Streamlit; this package is the thin layer between.
Importing it (every page does) stops Streamlit from resetting Keras after each script run
(:mod:`convvis_ui.keras_state`).
"""

from convvis_ui.keras_state import keep_keras_state

keep_keras_state()
