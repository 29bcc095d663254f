"""What every model source returns: a Keras model plus what the pages need to know about it."""

from __future__ import annotations

from dataclasses import dataclass, field

import keras


@dataclass(frozen=True)
class ModelInfo:
    """Facts about a model that pages and the CLI show or rely on."""

    key: str  # registry name, or "upload:<file name>"
    display_name: str
    description: str  # one line: what it was trained on
    input_size: tuple[int, int]  # (height, width)
    channels: int  # 1 (grayscale) or 3 (RGB)
    preprocessing: str  # a mode of convvis_core.preprocessing
    class_names: tuple[str, ...] | None = field(default=None, repr=False)
    offline: bool = True  # works with no network

    @property
    def is_classifier(self) -> bool:
        return self.class_names is not None


@dataclass(frozen=True)
class LoadedModel:
    """A ready model: the Keras object and its description."""

    model: keras.Model
    info: ModelInfo
