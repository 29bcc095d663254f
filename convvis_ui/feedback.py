"""Turning core exceptions into messages on the page, so a bad input never shows a traceback."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import streamlit as st

from convvis_core.errors import ConvVisError


@contextmanager
def user_errors(stop: bool = False) -> Iterator[None]:
    """Show a :class:`ConvVisError` as ``st.error`` (and optionally stop the page) instead of raising."""
    try:
        yield
    except ConvVisError as error:
        st.error(str(error), icon=":material/error:")
        if stop:
            st.stop()
