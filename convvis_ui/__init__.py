"""Streamlit pieces shared by every page: the sidebar model picker, the image picker, caching.

The core (``convvis_core``) knows nothing of Streamlit; this package is the thin layer between.
"""
