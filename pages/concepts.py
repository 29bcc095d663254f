"""Concepts: from "what pattern" to "what it means". Test whether a human concept (stripes, your own images) moves
a class (TCAV); each part of the page is one section of ``SECTIONS``."""

from __future__ import annotations

import streamlit as st

from convvis_ui.page import start_page
from convvis_ui.tcav_views import test_a_concept

SECTIONS = {"Test a concept (TCAV)": test_a_concept}  # tab title → what draws it, given the page's start


def main() -> None:
    start = start_page("Concepts", "Ask in human terms: does the model use stripes to say zebra? A concept is a set "
                       "of images (a pattern ConvVis draws, or your own); each answer comes with a significance test "
                       "against random directions, so a score random images reach too is never shown as a finding.",
                       "layer with a spatial (4-D) output, so there is no layer to test a concept at")
    for tab, section in zip(st.tabs(list(SECTIONS)), SECTIONS.values()):
        with tab:
            section(start)


main()
