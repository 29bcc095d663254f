"""Datasets by name, for the page's picker and the command line: built-in names, or a .zip / folder path."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from convvis_core.config import MAX_ZIP_BYTES
from convvis_core.datasets.base import Dataset, DatasetError
from convvis_core.datasets.files import folder_dataset, zip_dataset
from convvis_core.datasets.packaged import (fashion_mnist_available, fashion_mnist_dataset, gallery_dataset,
                                            mnist_dataset)

BUILTIN: dict[str, Callable[[], Dataset]] = {
    "gallery": gallery_dataset,
    "mnist": mnist_dataset,
    "fashion-mnist": fashion_mnist_dataset,
}


def builtin_names() -> list[str]:
    """The built-in datasets installed here (Fashion-MNIST only where its Debian package is)."""
    return [name for name in BUILTIN if name != "fashion-mnist" or fashion_mnist_available()]


def open_dataset(spec: str, any_size: bool = False) -> Dataset:
    """A built-in dataset by name, or the images in a ``.zip`` file or a folder at that path. With
    ``any_size`` (a batch job over the operator's own files) a folder or ``.zip`` has no limit on its
    files or total size (only on each image's), and a ``.zip`` is read from disk member by member."""
    if spec in BUILTIN and not Path(spec).exists():
        return BUILTIN[spec]()
    path = Path(spec).expanduser()
    if path.is_dir():
        return folder_dataset(path, **({"max_members": sys.maxsize, "max_total_bytes": sys.maxsize} if any_size else {}))
    if path.is_file() and path.suffix.lower() == ".zip":
        if any_size:
            return zip_dataset(path.resolve(), path.name, max_bytes=sys.maxsize, max_members=sys.maxsize,
                               max_expanded_bytes=sys.maxsize)
        with open(path, "rb") as file:
            return zip_dataset(file.read(MAX_ZIP_BYTES + 1), path.name)  # one byte over: refused as too large
    raise DatasetError(f"Unknown dataset '{spec}': use one of {', '.join(builtin_names())}, "
                       "or the path to a .zip of images or a folder of images.")
