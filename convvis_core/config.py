"""Where ConvVis keeps its files, and the limits it enforces, in one place."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "CONVVIS_CACHE_DIR"

# Largest image, in pixels, that is decoded at all (Pillow's bomb guard is set to this too).
MAX_IMAGE_PIXELS = 40_000_000
# Largest uploaded model file, in bytes.
MAX_MODEL_BYTES = 300 * 1024 * 1024
# Result caches on disk (feature visualizations, ...): least recently used files go first.
MAX_CACHE_BYTES = 2 * 1024**3
# Feature visualization: most filters, steps and pixels one request may ask for.
MAX_FILTERS_PER_REQUEST = 1024
MAX_STEPS = 2048
MAX_IMAGE_SIDE = 512
# Top-k dataset examples: most images one scan reads, and how many top/bottom examples are kept per
# channel (any k up to this is then served from the stored index).
MAX_SCAN_IMAGES = 20_000
TOPK_KEPT = 32
# Uploaded .zip of images: archive size, members, and bytes per member and in all once expanded.
MAX_ZIP_BYTES = 200 * 1024 * 1024
MAX_ZIP_MEMBERS = 20_000
MAX_ZIP_MEMBER_BYTES = 20 * 1024 * 1024
MAX_ZIP_EXPANDED_BYTES = 1024 * 1024 * 1024
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
    """Where converted models are saved as ``.keras`` files."""
    path = cache_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path
