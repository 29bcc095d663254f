"""Streamlit caches over core calls: models once per server, results once per input."""

from __future__ import annotations

import hashlib
import io
import zipfile
from typing import Mapping

import streamlit as st
from PIL import Image

from convvis_core.config import MAX_LOADED_REGISTRY_MODELS, MAX_LOADED_UPLOADED_MODELS
from convvis_core.models import LoadedModel, load_model, load_uploaded_model, needs_conversion
from convvis_core.predictions import Prediction, top_k


@st.cache_resource(show_spinner=False, max_entries=MAX_LOADED_REGISTRY_MODELS)
def _registry_model(key: str) -> LoadedModel:
    return load_model(key)


@st.cache_resource(show_spinner=False, max_entries=MAX_LOADED_UPLOADED_MODELS)
def _uploaded_model(digest: str, file_name: str, _data: bytes) -> LoadedModel:
    return load_uploaded_model(_data, file_name)


def digest_of(data: bytes) -> str:
    """Content hash used as a cache key for uploads (so the bytes are hashed once, by us)."""
    return hashlib.sha256(data).hexdigest()


def image_key(image: Image.Image) -> str:
    """The one cache key of an image: its mode, size and pixels."""
    return digest_of(f"{image.mode}{image.size}".encode() + image.tobytes())


def model_key(loaded: LoadedModel) -> str:
    """The one cache key of a model as the pages use it: which model (registry name, or upload and
    labels digests) and how its pixels are preprocessed."""
    return f"{loaded.info.key}|{loaded.info.preprocessing}"


@st.cache_data(show_spinner=False, max_entries=32)
def cached_top5(model: str, image: str, fit: str, _loaded: LoadedModel, _image: Image.Image) -> list[Prediction]:
    """Top-5 once per (model key, image key, fit): pages rerun often while the image stays."""
    return top_k(_loaded, _image, k=5, fit=fit)


def zip_of_files(files: Mapping[str, bytes]) -> bytes:
    """A .zip of named files (PNG downloads of a grid or of several heatmaps)."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        for name, data in files.items():
            bundle.writestr(name, data)
    return archive.getvalue()


def registry_model(key: str) -> LoadedModel:
    """A registry model, shared by all sessions; the first conversion shows a status box."""
    if needs_conversion(key):
        with st.status(f"Converting **{key}** from the weights in its pip package (first use only)…",
                       expanded=True) as status:
            st.write("Reading the packaged weights and building the Keras model; it is then saved "
                     "in the cache folder so the next start is instant.")
            loaded = _registry_model(key)
            status.update(label=f"{loaded.info.display_name} is ready", state="complete", expanded=False)
        return loaded
    with st.spinner(f"Loading {key}…"):
        return _registry_model(key)


def uploaded_model(digest: str, file_name: str, data: bytes) -> LoadedModel:
    """A user's model file, validated and loaded once per content hash."""
    with st.spinner(f"Checking and loading {file_name}…"):
        return _uploaded_model(digest, file_name, data)
