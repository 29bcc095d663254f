"""ConvVis: the entry point (``streamlit run app.py``): the navigation over the pages in ``pages/``.

Each page file is named after its URL path (``pages/heatmaps.py`` is ``/heatmaps``): when a server's
first request is a deep link, Streamlit 1.67 runs that session in its older ``pages/``-folder mode,
which finds pages by file name only. Titles, icons and order are ``convvis_ui.links.PAGES``; the
sidebar's navigation is drawn by ``convvis_ui.page`` in both modes, so it looks the same in each.
"""

from __future__ import annotations

import streamlit as st

from convvis_ui.links import HOME, PAGES

st.navigation([st.Page(str(page.file), title=page.title, icon=page.icon, url_path=page.url_path,
                       default=page is HOME) for page in (HOME, *PAGES)], position="hidden").run()
