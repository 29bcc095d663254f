"""The image picker pages share: a bundled sample or the user's own upload, kept across pages."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from PIL import Image

from convvis_core.images import FITS, Fit, open_image
from convvis_core.models import ModelInfo
from convvis_core.samples import SAMPLES, load_sample, sample_names
from convvis_ui.feedback import user_errors

IMAGE_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp"]
UPLOADED = "convvis_image_upload"  # (file name, bytes) of the last good upload, shared by pages
SOURCE = "convvis_image_source"  # "upload" or a sample name
FIT = "convvis_fit"
_LAST_FILE = "_convvis_last_image_file"


@dataclass(frozen=True)
class ChosenImage:
    image: Image.Image
    label: str  # what to call it in captions and file names
    fit: Fit


@st.cache_data(show_spinner=False, max_entries=64)
def _decode(data: bytes, file_name: str) -> Image.Image:
    return open_image(data, name=file_name)


def _sample_label(name: str) -> str:
    return "Your upload" if name == "upload" else SAMPLES[name].title


def image_picker(info: ModelInfo, key: str = "image") -> ChosenImage:
    """Sample gallery + uploader; an upload that fails to decode is explained and the last good one kept."""
    options = sample_names(grayscale_digits=info.reads_digits)
    file = st.file_uploader("Upload an image", type=IMAGE_TYPES, key=f"_convvis_{key}_file",
                            help="PNG, JPEG, GIF, BMP, TIFF or WebP; it is resized to the model's input.")
    if file is not None and st.session_state.get(_LAST_FILE) != file.file_id:
        st.session_state[_LAST_FILE] = file.file_id
        with user_errors():
            data = file.getvalue()
            _decode(data, file.name)  # validate before accepting
            st.session_state[UPLOADED] = (file.name, data)
            st.session_state[SOURCE] = "upload"
            st.session_state[f"_convvis_{key}_source"] = "upload"
    if UPLOADED in st.session_state:
        options = ["upload"] + options
    current = st.session_state.get(SOURCE)
    if current not in options:
        current = options[0]
    source = st.selectbox("Image", options, index=options.index(current), format_func=_sample_label,
                          key=f"_convvis_{key}_source")
    st.session_state[SOURCE] = source
    fit = st.radio("Fit to the model's input", FITS, horizontal=True, key=f"_convvis_{key}_fit",
                   index=FITS.index(st.session_state.get(FIT, "stretch")),
                   help="stretch: resize to the input size (as keras load_img); crop: centre-crop to "
                        "the input's aspect first; pad: letterbox with black.")
    st.session_state[FIT] = fit
    if source == "upload":
        name, data = st.session_state[UPLOADED]
        return ChosenImage(_decode(data, name), name, fit)
    return ChosenImage(load_sample(source), source, fit)


def reference_picker(info: ModelInfo, key: str) -> ChosenImage:
    """A second image (a sample or an upload) that leaves the page's shared image choice alone: the
    reference an embedding is compared with."""
    options = sample_names(grayscale_digits=info.reads_digits)
    file = st.file_uploader("Reference image (upload)", type=IMAGE_TYPES, key=f"_convvis_{key}_file")
    source = st.selectbox("…or a sample as the reference", options, key=f"_convvis_{key}_source",
                          format_func=_sample_label, disabled=file is not None)
    fit = st.session_state.get(FIT, "stretch")
    if file is not None:
        with user_errors(stop=True):
            return ChosenImage(_decode(file.getvalue(), file.name), file.name, fit)
    return ChosenImage(load_sample(source), SAMPLES[source].title, fit)
