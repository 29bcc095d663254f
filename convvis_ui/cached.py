"""Streamlit caches over core calls: models once per server, results once per input, and what shows
them (encoded images, charts, tables) made once per content, for every session."""

from __future__ import annotations

import hashlib
import io
from typing import Any, Callable

import numpy as np
import streamlit as st
from PIL import Image

from convvis_core.counters import WorkCounter
from convvis_core.images import Fit
from convvis_core.models import LoadedModel, load_model, load_uploaded_model, needs_conversion
from convvis_core.predictions import Prediction, top_k

# Models kept loaded by the app, shared by all sessions.
MAX_LOADED_REGISTRY_MODELS = 6
MAX_LOADED_UPLOADED_MODELS = 4
# Images the app shows, kept encoded (about 50 kB each) so no rerun encodes them again
# (image_bytes), shared by all sessions, least recently used dropped first.
MAX_ENCODED_IMAGES = 512
# Charts and tables of cached results, kept as the messages Streamlit sends (shown_once),
# shared by all sessions, least recently used dropped first. Most are small; an Activations grid of an
# early MobileNet layer is up to 8 MB. One Activations view draws 18 (6 layers, 3 each).
MAX_SHOWN_ONCE = 64


@st.cache_resource(show_spinner=False, max_entries=MAX_LOADED_REGISTRY_MODELS)
def _registry_model(key: str) -> LoadedModel:
    return load_model(key)


@st.cache_resource(show_spinner=False, max_entries=MAX_LOADED_UPLOADED_MODELS)
def _uploaded_model(digest: str, file_name: str, _data: bytes) -> LoadedModel:
    return load_uploaded_model(_data, file_name)


def digest_of(data: bytes) -> str:
    """Content hash used as a cache key for uploads (so the bytes are hashed once, by us)."""
    return hashlib.sha256(data).hexdigest()


def image_key(image: Image.Image | np.ndarray) -> str:
    """The one cache key of an image: its pixels, with mode (or type) and size, so equal bytes of other
    shapes differ."""
    if isinstance(image, Image.Image):
        return digest_of(f"{image.mode}{image.size}".encode() + image.tobytes())
    return digest_of(f"{image.dtype}{image.shape}".encode() + np.ascontiguousarray(image).tobytes())


NO_IMAGE: Any = object()  # cached()'s image when the function takes none
COMPUTED = WorkCounter()  # calls cached() ran (not served from its cache), by the function's name
_STORES: dict[tuple[str, str | None, int], Callable] = {}


def _store(function: Callable, spinner: str | None, entries: int) -> Callable:
    """The ``st.cache_data`` store of one function: Streamlit keeps one per module, name and source, so
    the runner is renamed after the function (and its file: every page runs as ``__main__``)."""
    name = f"{function.__module__}.{function.__qualname__}@{function.__code__.co_filename}"
    store = _STORES.get((name, spinner, entries))
    if store is None:
        def run(model: str, image: str | None, settings: tuple, _function: Callable, _loaded: LoadedModel,
                _image: Any) -> Any:
            COMPUTED.add(_function.__name__)
            images = () if _image is NO_IMAGE else (_image,)
            return _function(_loaded, *images, **dict(settings))
        run.__module__, run.__qualname__ = function.__module__, name
        store = _STORES[(name, spinner, entries)] = st.cache_data(run, show_spinner=spinner or False,
                                                                  max_entries=entries)
    return store


def cached(function: Callable, loaded: LoadedModel, /, image: Any = NO_IMAGE, *, spinner: str | None = None,
           entries: int = 16, **settings: Any) -> Any:
    """``function(loaded, image, **settings)``, once per model, image and settings, for every session.

    The one way pages cache a result: its key is built here, never by hand, from the model's identity
    (``LoadedModel.identity``), the image's digest (``image_key``; ``None`` for no image) and every
    setting, which are keyword arguments, so none can be left out of the key. Omit ``image`` for a
    function that takes none. ``spinner`` is shown while it computes, not on a cache hit; the
    ``entries`` last results are kept (least recently used dropped first). ``function``
    must draw nothing (Streamlit replays what a cached function draws): status boxes and progress
    bars go around this call."""
    digest = None if image is NO_IMAGE or image is None else image_key(image)
    store = _store(function, spinner, entries)
    return store(loaded.identity, digest, tuple(sorted(settings.items())), function, loaded, image)


def top5(loaded: LoadedModel, image: Image.Image, fit: Fit) -> list[Prediction]:
    """Top-5 once per (model, image, fit), for every page: widgets rerun pages often."""
    return cached(top_k, loaded, image, k=5, fit=fit)


@st.cache_resource(show_spinner=False, max_entries=MAX_ENCODED_IMAGES)
def _encoded(digest: str, width: int | None, _image: Image.Image | np.ndarray) -> bytes:
    image = _image if isinstance(_image, Image.Image) else Image.fromarray(_image)
    if width is not None and image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG" if image.mode in ("RGBA", "LA", "P") else "JPEG", quality=100)
    return buffer.getvalue()


def image_bytes(image: Image.Image | np.ndarray, width: int | None = None) -> bytes:
    """An image (uint8 pixels) as ``st.image`` would encode it (JPEG at quality 100, PNG if it has
    alpha; no wider than ``width``, the pixel width it is shown at, if given), encoded once per
    content: st.image would encode it again at every rerun of every session."""
    return _encoded(image_key(image), width, image)


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


SHOWN = WorkCounter()  # drawings shown_once ran (not replayed), by the first part of their key ("grid", ...)


@st.cache_resource(show_spinner=False, max_entries=MAX_SHOWN_ONCE)
def _shown(key: tuple, _show: Callable[[], None]) -> None:
    SHOWN.add(str(key[0]))
    _show()


def shown_once(key: tuple, show: Callable[[], None]) -> None:
    """Run ``show()``, which draws static elements (charts, tables; no widgets) with ``st.*`` calls,
    once per ``key``, which must name everything they show; afterwards Streamlit replays the messages
    it recorded (its documented replay of elements in cached functions), in any session. A plotly
    chart of cached results is otherwise built and serialized to JSON again at every rerun (an
    Activations grid: megabytes). Call it inside ``with container:`` to draw into a container."""
    _shown(key, show)
