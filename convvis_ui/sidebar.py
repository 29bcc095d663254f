"""The sidebar every page shares: pick a registry model or upload your own.

Streamlit forgets a widget's value when the user switches pages, so the choice lives under its
own session-state key and the widget is re-seeded from it on every page.
"""

from __future__ import annotations

import dataclasses

import streamlit as st

from convvis_core.models import DEFAULT_MODEL, MODELS, LoadedModel
from convvis_core.preprocessing import MODES
from convvis_ui.cached import digest_of, registry_model, uploaded_model
from convvis_ui.feedback import user_errors

CHOICE = "convvis_model"  # registry key, or "upload:<digest>"
UPLOADS = "convvis_uploads"  # digest -> (file name, bytes)
PREPROCESSING = "convvis_upload_preprocessing"  # digest -> preprocessing mode
_PICKER = "_convvis_model_picker"
_LAST_UPLOAD = "_convvis_last_model_upload"


def _remember_choice() -> None:
    st.session_state[CHOICE] = st.session_state[_PICKER]


def _label(option: str) -> str:
    if option.startswith("upload:"):
        name, _ = st.session_state[UPLOADS][option.removeprefix("upload:")]
        return f"📁 {name}"
    info = MODELS[option].info
    return info.display_name if info.offline else f"{info.display_name} (needs download)"


def _accept_upload() -> None:
    """Validate a newly uploaded model file; select it if it loads, explain why not otherwise."""
    file = st.file_uploader(
        "Upload a Keras model (.keras or .h5)", type=["keras", "h5", "hdf5"], key="_convvis_model_file",
        help="Saved with model.save(). Models carrying code (Lambda layers, custom classes) are refused: "
             "ConvVis never runs code from an upload.",
    )
    if file is None or st.session_state.get(_LAST_UPLOAD) == file.file_id:
        return
    st.session_state[_LAST_UPLOAD] = file.file_id
    data = file.getvalue()
    digest = digest_of(data)
    with user_errors():
        uploaded_model(digest, file.name, data)
        st.session_state[UPLOADS][digest] = (file.name, data)
        st.session_state[CHOICE] = f"upload:{digest}"


def model_sidebar() -> LoadedModel:
    """Render the model picker and return the chosen, loaded model (stops the page if it can't load)."""
    st.session_state.setdefault(CHOICE, DEFAULT_MODEL)
    st.session_state.setdefault(UPLOADS, {})
    st.session_state.setdefault(PREPROCESSING, {})
    with st.sidebar:
        st.header("Model")
        with st.expander("Use your own model"):
            _accept_upload()
    options = list(MODELS) + [f"upload:{digest}" for digest in st.session_state[UPLOADS]]
    if st.session_state[CHOICE] not in options:
        st.session_state[CHOICE] = DEFAULT_MODEL
    st.session_state[_PICKER] = st.session_state[CHOICE]
    choice = st.sidebar.selectbox("Model", options, key=_PICKER, format_func=_label,
                                  on_change=_remember_choice, label_visibility="collapsed")
    with user_errors(stop=True):
        if choice.startswith("upload:"):
            digest = choice.removeprefix("upload:")
            name, data = st.session_state[UPLOADS][digest]
            loaded = uploaded_model(digest, name, data)
            modes = list(MODES)
            mode = st.sidebar.selectbox(
                "Preprocessing this model expects", modes,
                index=modes.index(st.session_state[PREPROCESSING].get(digest, loaded.info.preprocessing)),
                format_func=lambda m: f"{m}: {MODES[m]}", key=f"_convvis_pre_{digest}",
            )
            st.session_state[PREPROCESSING][digest] = mode
            loaded = LoadedModel(loaded.model, dataclasses.replace(loaded.info, preprocessing=mode))
        else:
            loaded = registry_model(choice)
    st.sidebar.caption(loaded.info.description)
    return loaded
