"""keras.applications models with ImageNet weights: they need the network once (or Keras' cache)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import keras

from convvis_core.errors import ModelUnavailableError

OFFLINE_ALTERNATIVES = "mobilenet (the default), efficientnet_lite0, vgg16_hed or lenet_mnist"


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights (``$KERAS_HOME/models`` or ``~/.keras/models``)."""
    import os

    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"


def imagenet_builder(constructor: Callable[..., keras.Model], display_name: str) -> Callable[[], keras.Model]:
    """A builder that loads the ImageNet weights, turning a failed download into a clear message."""

    def build() -> keras.Model:
        try:
            return constructor(weights="imagenet")
        except Exception as error:  # Keras raises a bare Exception for a failed fetch
            raise ModelUnavailableError(
                f"{display_name} needs its ImageNet weights, which Keras downloads on first use into "
                f"{keras_cache_dir()}, and they could not be fetched here ({error}). Connect to the "
                f"internet once, copy the weights file into that folder, or pick an offline model: "
                f"{OFFLINE_ALTERNATIVES}."
            ) from error

    return build
