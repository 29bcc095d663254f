"""The second model of a comparison ("other"): a picker of registry models and the session's uploads,
next to the sidebar's model, and named in the URL (``?other=lenet_mnist``) like the sidebar's ``model=``.

Uploads are the sidebar's (``sidebar.UPLOADS``): a model uploaded there can be either side. Models are
loaded through the same shared caches as the sidebar's, so a model used on both sides is loaded once.
"""

from __future__ import annotations

import streamlit as st

from convvis_core.models import MODELS, LoadedModel
from convvis_ui import links
from convvis_ui.cached import registry_model, uploaded_model
from convvis_ui.feedback import user_errors
from convvis_ui.sidebar import UPLOADS, model_label

OTHER = "convvis_other_model"  # registry key or "upload:<digest>", kept across pages
_PICKER = "_convvis_other_picker"
_FROM_URL = "_convvis_other_from_url"


def other_model_picker(default: str, container=st) -> LoadedModel:
    """Pick and load the second model; the URL's ``other=`` is applied once per URL, then the picker wins."""
    uploads = st.session_state.setdefault(UPLOADS, {})
    named = st.query_params.get("other")
    if named is not None and st.session_state.get(_FROM_URL) != named:
        st.session_state[_FROM_URL] = named
        if named in MODELS:
            st.session_state[OTHER] = named
        else:
            container.warning(f"The link names the model '{named}', which ConvVis does not know. "
                              f"Known: {', '.join(MODELS)}.", icon=":material/link_off:")
    options = list(MODELS) + [f"upload:{digest}" for digest in uploads]
    if st.session_state.get(OTHER) not in options:
        st.session_state[OTHER] = default if default in options else options[0]
    st.session_state[_PICKER] = st.session_state[OTHER]
    labels = {option: model_label(option, uploads) for option in options}
    choice = container.selectbox("Compare with (model B)", options, key=_PICKER, format_func=labels.__getitem__,
                                 on_change=lambda: st.session_state.update({OTHER: st.session_state[_PICKER]}),
                                 help="A registry model, or a model uploaded in the sidebar ('Use your own model').")
    with user_errors(stop=True):
        if choice.startswith("upload:"):
            name, data = uploads[choice.removeprefix("upload:")]
            loaded = uploaded_model(choice.removeprefix("upload:"), name, data)
        else:
            loaded = registry_model(choice)
    shown = None if choice.startswith("upload:") else choice  # an upload has no URL
    links.reflect(other=shown)
    st.session_state[_FROM_URL] = shown
    return loaded
