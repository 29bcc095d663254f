"""Concepts: from "what pattern" to "what it means". Test whether a human concept (stripes, your own images) moves
a class (TCAV), discover the concepts a class is made of (CRAFT), or see which groups of channels fire together on
one image. One part runs at a time (each reads many images); the URL says which (``?part=``)."""

from __future__ import annotations

import streamlit as st

from convvis_ui import links
from convvis_ui.concept_views import discover_concepts, neuron_groups_on_an_image
from convvis_ui.page import start_page
from convvis_ui.tcav_views import test_a_concept

SECTIONS = {"tcav": ("Test a concept (TCAV)", test_a_concept),  # ?part= → its title, what draws it
            "craft": ("Discover a class's concepts (CRAFT)", discover_concepts),
            "groups": ("Neuron groups on one image", neuron_groups_on_an_image)}
PART = "concepts_part"  # the part picker's widget key


def main() -> None:
    start = start_page("Concepts", "Ask in human terms: does the model use stripes to say zebra? What parts is a class "
                       "made of? Which channels fire together? Every answer is measured on the model: a concept test "
                       "comes with a significance test against random directions, so a score random images reach too "
                       "is never shown as a finding.",
                       "layer with a spatial (4-D) output, so there is no layer to find concepts at")
    asked = st.query_params.get("part")
    links.consume(PART, asked if asked in SECTIONS else None)
    if st.session_state.get(PART) not in SECTIONS:
        st.session_state[PART] = "tcav"
    part = st.segmented_control("Part", list(SECTIONS), format_func=lambda name: SECTIONS[name][0], key=PART,
                                label_visibility="collapsed") or "tcav"
    links.reflect(part=None if part == "tcav" else part)
    links.written(PART, part)
    SECTIONS[part][1](start)


main()
