"""The dataset picker of the pages that run a model over many images (Top k, Compare): the built-in
sets, the user's uploaded .zip of images (validated once, kept for every page), or a folder the
operator allows; and what an archive or folder held that is not read."""

from __future__ import annotations

import streamlit as st

from convvis_core.config import MAX_ZIP_BYTES, dataset_dirs
from convvis_core.datasets.base import Dataset, EncodedDataset
from convvis_core.datasets.catalog import builtin_names
from convvis_core.datasets.files import folder_dataset, zip_dataset
from convvis_ui.cached import digest_of
from convvis_ui.feedback import user_errors
from convvis_ui.shared_views import builtin_dataset

UPLOADED_ZIP = "convvis_uploaded_zip"  # (digest, file name, bytes) of the last .zip that held images
LAST_ZIP_FILE = "_convvis_last_zip"  # the uploader's file id, so a file is checked once
_KEY_PREFIX = {"top_k": "topk", "compare": "compare"}
LABELS = {"gallery": "Photo gallery", "mnist": "MNIST digits (5,000)", "fashion-mnist": "Fashion-MNIST (10,000)",
          "upload": "Your .zip of images (upload)"}


@st.cache_resource(show_spinner="Checking every file in the archive…", max_entries=4)
def uploaded_dataset(digest: str, file_name: str, _data: bytes) -> EncodedDataset:
    return zip_dataset(_data, file_name)


@st.cache_resource(show_spinner="Checking every file in the folder…", max_entries=4, ttl=600)
def server_folder(path: str) -> EncodedDataset:
    return folder_dataset(path)


def dataset_label(option: str) -> str:
    return f"📁 {option.removeprefix('folder:')}" if option.startswith("folder:") else LABELS[option]


def pick_dataset(page: str, model_name: str, digits_model: bool, label: str = "Dataset") -> Dataset:
    """``page``'s dataset picker (per model, starting at MNIST for digit models and the photos
    otherwise): built-in sets, an uploaded .zip (one for every page: uploaded once, used everywhere),
    or a folder the operator allows."""
    options = builtin_names() + ["upload"] + [f"folder:{path}" for path in dataset_dirs()]
    choice = st.selectbox(label, options, index=options.index("mnist" if digits_model else "gallery"),
                          format_func=dataset_label, key=dataset_key(page, model_name))
    with user_errors(stop=True):
        if choice.startswith("folder:"):
            return server_folder(choice.removeprefix("folder:"))
        if choice != "upload":
            return builtin_dataset(choice)
        file = st.file_uploader("A .zip of images", type=["zip"], key=f"{_KEY_PREFIX[page]}_zip_file",
                                help=f"Up to {MAX_ZIP_BYTES // 2**20} MB. Read in memory, never extracted; files "
                                     "with unsafe paths, links, nested archives or non-images are skipped.")
        if file is not None and st.session_state.get(LAST_ZIP_FILE) != file.file_id:
            st.session_state[LAST_ZIP_FILE] = file.file_id
            data = file.getvalue()
            digest = digest_of(data)
            with user_errors():  # a refused archive is explained; the last good one stays in use
                uploaded_dataset(digest, file.name, data)  # validate before accepting
                st.session_state[UPLOADED_ZIP] = (digest, file.name, data)
        if UPLOADED_ZIP not in st.session_state:
            st.info("Upload a .zip of PNG, JPEG, GIF, BMP, TIFF or WebP images.")
            st.stop()
        return uploaded_dataset(*st.session_state[UPLOADED_ZIP])


def report_skipped(dataset: Dataset) -> None:
    """What the archive or folder held that is not scanned, by reason, with the names."""
    if dataset.skipped:
        counts = ", ".join(f"{len(names)} {reason}" for reason, names in dataset.skipped.items())
        with st.expander(f"{dataset.skipped_count} file(s) skipped: {counts}", icon=":material/warning:"):
            for reason, names in dataset.skipped.items():
                st.markdown(f"**{reason}**: " + ", ".join(f"`{name}`" for name in names[:50])
                            + (" …" if len(names) > 50 else ""))


def dataset_key(page: str, model_name: str) -> str:
    """The session-state key of ``page``'s dataset widget for the model whose ``info.key`` is ``model_name``."""
    return f"{_KEY_PREFIX[page]}_dataset_{model_name}"
