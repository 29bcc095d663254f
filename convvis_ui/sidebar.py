"""The sidebar every page shares: pick a registry model or upload your own.

Streamlit forgets a widget's value when the user switches pages, so the choice lives under its
own session-state key and the widget is re-seeded from it on every page.
"""

from __future__ import annotations

import streamlit as st

from convvis_core.cache import not_saving
from convvis_core.labels import read_labels
from convvis_core.models import DEFAULT_MODEL, MODELS, LoadedModel
from convvis_core.models.heads import KINDS, csv_row, numbers
from convvis_core.preprocessing import MODES
from convvis_ui import links
from convvis_ui.cached import digest_of, registry_model, uploaded_model
from convvis_ui.feedback import user_errors

CHOICE = "convvis_model"  # registry key, or "upload:<digest>"
UPLOADS = "convvis_uploads"  # digest -> (file name, bytes)
PREPROCESSING = "convvis_upload_preprocessing"  # digest -> preprocessing mode
LABELS = "convvis_upload_labels"  # digest -> (labels file name, class names)
OUTPUT = "convvis_upload_output"  # digest -> (output index, kind or None): the head every page explains
HELD = "convvis_upload_held"  # digest -> {input name: (values, where they came from)}
_PICKER = "_convvis_model_picker"
_FROM_URL = "_convvis_model_from_url"  # the URL's model=, applied once (later the picker wins)
_LAST_UPLOAD = "_convvis_last_model_upload"


def _remember_choice() -> None:
    st.session_state[CHOICE] = st.session_state[_PICKER]


def model_label(option: str, uploads: dict) -> str:
    """A picker's label for a registry key or an upload (the Compare page's second picker uses it too)."""
    if option.startswith("upload:"):
        name, _ = uploads[option.removeprefix("upload:")]
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
    st.session_state.setdefault(LABELS, {})
    st.session_state.setdefault(OUTPUT, {})
    st.session_state.setdefault(HELD, {})
    unknown = _model_from_url()
    with st.sidebar:
        st.header("Model")
        with st.expander("Use your own model"):
            _accept_upload()
    options = list(MODELS) + [f"upload:{digest}" for digest in st.session_state[UPLOADS]]
    if st.session_state[CHOICE] not in options:
        st.session_state[CHOICE] = DEFAULT_MODEL
    st.session_state[_PICKER] = st.session_state[CHOICE]
    labels = {option: model_label(option, st.session_state[UPLOADS]) for option in options}  # read now, not when drawn
    choice = st.sidebar.selectbox("Model", options, key=_PICKER, format_func=labels.__getitem__,
                                  on_change=_remember_choice, label_visibility="collapsed")
    with user_errors(stop=True):
        if choice.startswith("upload:"):
            digest = choice.removeprefix("upload:")
            name, data = st.session_state[UPLOADS][digest]
            loaded = _own_model_settings(digest, uploaded_model(digest, name, data))
        else:
            loaded = registry_model(choice)
    info = loaded.info
    if unknown:
        st.sidebar.warning(f"The link names the model '{unknown}', which ConvVis does not know; showing "
                           f"{info.display_name} instead. Known: {', '.join(MODELS)}.", icon=":material/link_off:")
    shown = None if choice.startswith("upload:") else choice  # an upload has no URL
    links.reflect(model=shown)
    st.session_state[_FROM_URL] = shown  # the URL now says what is shown: not a request to follow
    st.sidebar.caption(info.description)
    st.sidebar.caption(f"Pixels: **{info.preprocessing}**, {MODES[info.preprocessing]} ({info.preprocessing_why})")
    if unsaved := not_saving():
        st.sidebar.warning(unsaved, icon=":material/save:")
    return loaded


def _model_from_url() -> str | None:
    """Select the model a URL names (``?model=lenet_mnist``), once per URL; returns an unknown name."""
    named = st.query_params.get("model")
    if named is None or st.session_state.get(_FROM_URL) == named:
        return None
    st.session_state[_FROM_URL] = named
    if named not in MODELS:
        return named
    st.session_state[CHOICE] = named
    return None


def _own_model_settings(digest: str, loaded: LoadedModel) -> LoadedModel:
    """An uploaded model with the user's choice of preprocessing (inferred by default) and class names."""
    modes = list(MODES)
    inferred = loaded.info.preprocessing
    mode = st.sidebar.selectbox(
        "Pixels this model expects", modes,
        index=modes.index(st.session_state[PREPROCESSING].get(digest, inferred)),
        format_func=lambda m: f"{m}: {MODES[m]}", key=f"_convvis_pre_{digest}",
        help=f"Inferred: {inferred}, because {loaded.info.preprocessing_why}. Every view and cached result "
             "follows this choice.",
    )
    st.session_state[PREPROCESSING][digest] = mode
    loaded = _held_inputs(digest, _chosen_output(digest, loaded.with_preprocessing(mode)))
    if loaded.info.output_info.kind not in ("classes", "segmentation"):
        return loaded
    file = st.sidebar.file_uploader(
        "Class names (optional)", type=["txt", "json"], key=f"_convvis_labels_{digest}",
        help="labels.txt with one name per line in output order, or a .json list, or Keras' class_indices "
             "dict ({\"cat\": 0, ...}).")
    if file is not None:
        with user_errors():
            names = read_labels(file.getvalue(), file.name)
            loaded.with_labels(names, file.name)  # a wrong count is refused before it is kept
            st.session_state[LABELS][digest] = (file.name, names)
    labelled = st.session_state[LABELS].get(digest)
    if labelled and len(labelled[1]) == loaded.info.output_info.units:  # another head may have other classes
        return loaded.with_labels(labelled[1], labelled[0])
    return loaded


def _chosen_output(digest: str, loaded: LoadedModel) -> LoadedModel:
    """The head every page explains, for a model with several outputs; and whether a linear vector
    output holds class scores or values (a regression, an embedding)."""
    outputs = loaded.info.outputs
    index, kind = st.session_state[OUTPUT].get(digest, (0, None))
    if len(outputs) > 1:
        index = st.sidebar.selectbox(
            "Output to explain", range(len(outputs)), index=index, key=f"_convvis_output_{digest}",
            format_func=lambda i: f"{outputs[i].name}: {KINDS.get(outputs[i].kind, outputs[i].kind)}",
            help="This model has several heads. Every page (predictions, heatmaps, top-k, units) explains the one "
                 "chosen here; Home shows all of them.")
    chosen = outputs[index] if outputs else loaded.info.output_info
    if chosen.ambiguous:
        kinds = ["classes", "values"]
        kind = st.sidebar.radio("This output holds", kinds, index=kinds.index(kind or chosen.kind),
                                format_func=lambda k: KINDS[k], key=f"_convvis_kind_{digest}_{index}",
                                help="A linear vector may be class logits or values (an embedding, several "
                                     "regressions). It decides what a heatmap can explain.")
    st.session_state[OUTPUT][digest] = (index, kind)
    with user_errors(stop=True):
        return loaded.with_output(index, kind) if outputs else loaded


def _held_inputs(digest: str, loaded: LoadedModel) -> LoadedModel:
    """The values a model's non-image inputs are held at: zeros, typed numbers, or a CSV row."""
    held = loaded.info.held_inputs
    if not held:
        return loaded
    image = next(info.name for info in loaded.info.inputs if info.is_image)
    kept = st.session_state[HELD].setdefault(digest, {})
    with st.sidebar.expander(f"Inputs held fixed ({len(held)})", expanded=False):
        st.caption(f"Explained: the image input **{image}**. The others are held at these values for every image.")
        for info in held:
            size = len(info.held)
            typed = st.text_input(f"{info.name} ({size} number{'s' * (size > 1)}, comma-separated)",
                                  value=", ".join(f"{v:g}" for v in kept.get(info.name, (info.held, ""))[0]),
                                  key=f"_convvis_held_{digest}_{info.name}")
            row = st.file_uploader(f"…or a CSV row for {info.name}", type=["csv", "txt"],
                                   key=f"_convvis_held_csv_{digest}_{info.name}",
                                   help="The first row of numbers in the file (a header line is skipped).")
            with user_errors():
                if row is not None:
                    values, source = csv_row(row.getvalue(), row.name), f"the first row of {row.name}"
                else:
                    values = numbers(typed, info.name)
                    source = "zeros" if not any(values) else "values you set"
                loaded.with_held_inputs({info.name: values}, source)  # refused here if the count is wrong
                kept[info.name] = (values, source)
    for name, (values, source) in kept.items():
        loaded = loaded.with_held_inputs({name: values}, source)
    st.sidebar.caption("Held: " + "; ".join(f"{info.name} = {_short(info.held)} ({info.held_from})"
                                              for info in loaded.info.held_inputs))
    return loaded


def _short(values: tuple[float, ...]) -> str:
    shown = ", ".join(f"{v:g}" for v in values[:4])
    return f"[{shown}{', …' if len(values) > 4 else ''}]"
