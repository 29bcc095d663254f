"""Where ConvVis keeps its files, and the limits it enforces, in one place."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "CONVVIS_CACHE_DIR"

# Every limit ConvVis enforces is defined here, and checked where the input enters (see each comment);
# the sizes of the app's Streamlit caches are in convvis_ui/cached.py.

# Uploads, in MB: Streamlit refuses a larger file before any of our code runs. It is set in
# .streamlit/config.toml ([server] maxUploadSize) and must equal this (a test checks); model files and
# image archives share it, so no core limit sits above what the uploader lets through.
MAX_UPLOAD_MB = 200
# Largest image, in pixels, that is decoded at all (images.open_image; Pillow's bomb guard is set to this
# too, in images.py, for any other Image.open).
MAX_IMAGE_PIXELS = 40_000_000
# Largest uploaded model file, in bytes (models.uploaded.load_uploaded_model).
MAX_MODEL_BYTES = MAX_UPLOAD_MB * 1024 * 1024
# Result caches (feature visualizations, top-k indexes), each: files on disk, least recently used
# deleted first past MAX_CACHE_BYTES (checked every CACHE_EVICT_EVERY writes); and an in-memory layer
# in front, least recently used dropped first past either of its limits.
MAX_CACHE_BYTES = 2 * 1024**3
CACHE_EVICT_EVERY = 32
MAX_CACHE_MEMORY_BYTES = 256 * 1024**2
MAX_CACHE_MEMORY_ENTRIES = 512
# Feature visualization: most filters, steps and pixels one request may ask for (featureviz.render).
MAX_FILTERS_PER_REQUEST = 1024
MAX_STEPS = 2048
MAX_IMAGE_SIDE = 512
# Top-k dataset examples: most images one scan reads, and how many top/bottom examples are kept per
# channel (any k up to this is then served from the stored index) (topk.scan).
MAX_SCAN_IMAGES = 20_000
TOPK_KEPT = 32
# Concepts (CRAFT, neuron groups): most crops and images one request reads, most concepts or groups
# (concepts.craft, concepts.groups).
MAX_CONCEPT_CROPS = 4096
MAX_CONCEPT_IMAGES = 512
MAX_CONCEPTS = 64
# Uploaded .zip of images: archive size, members, and bytes per member and in all once expanded
# (datasets.files.zip_dataset; a server folder has the same member limits).
MAX_ZIP_BYTES = MAX_UPLOAD_MB * 1024 * 1024
MAX_ZIP_MEMBERS = 20_000
MAX_ZIP_MEMBER_BYTES = 20 * 1024 * 1024
MAX_ZIP_EXPANDED_BYTES = 1024 * 1024 * 1024
# Objects kept in memory per loaded model, shared by all sessions, oldest dropped first: traced
# feature-visualization renderers (each holds its variables and traced step), sub-models reaching a
# set of layers, heatmap probes (each a sub-model with its traced passes), and Top-k reducers (each the
# traced pass that reduces one layer's maps to per-channel maxima and means).
MAX_RENDERERS_PER_MODEL = 4
MAX_FEATURE_MODELS_PER_MODEL = 32
MAX_PROBES_PER_MODEL = 16
MAX_REDUCERS_PER_MODEL = 16
# Fashion-MNIST, where the Debian package dataset-fashion-mnist is installed.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
# Folders on the server the Top-k page may scan: off unless the operator lists them here.
DATASET_DIRS_ENV = "CONVVIS_DATASET_DIRS"


def dataset_dirs() -> list[Path]:
    """The folders the operator allows the app to scan (``$CONVVIS_DATASET_DIRS``, separated by
    ``os.pathsep``); none by default, so a public server never exposes its disk."""
    value = os.environ.get(DATASET_DIRS_ENV, "")
    return [Path(part).expanduser().resolve() for part in value.split(os.pathsep) if part.strip()]


def cache_dir() -> Path:
    """The user cache folder (``$CONVVIS_CACHE_DIR`` or ``~/.cache/convvis``), created on demand."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "convvis"
    )
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    """Where converted models are saved as ``.keras`` files (created when the cache folder can be written)."""
    path = cache_dir() / "models"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:  # read-only or full: models are converted in memory, every time
        pass
    return path
