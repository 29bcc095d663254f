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
