"""Datasets by name, for the page's picker and the command line: built-in names, or a .zip / folder path."""

from __future__ import annotations

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


def open_dataset(spec: str) -> Dataset:
    """A built-in dataset by name, or the images in a ``.zip`` file or a folder at that path."""
    if spec in BUILTIN and not Path(spec).exists():
        return BUILTIN[spec]()
    path = Path(spec).expanduser()
    if path.is_dir():
        return folder_dataset(path)
    if path.is_file() and path.suffix.lower() == ".zip":
        with open(path, "rb") as file:
            return zip_dataset(file.read(MAX_ZIP_BYTES + 1), path.name)  # one byte over: refused as too large
    raise DatasetError(f"Unknown dataset '{spec}': use one of {', '.join(builtin_names())}, "
                       "or the path to a .zip of images or a folder of images.")
