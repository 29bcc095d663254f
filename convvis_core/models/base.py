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


def name_unnamed_layers(model: keras.Model, names: dict[type, str]) -> keras.Model:
    """Give the layers keras.applications leaves unnamed (one per type in ``names``) fixed names.

    Keras numbers unnamed layers by a process-wide count ("input_layer_3" once three were built), and
    a converted model file must not depend on what its process built before it.
    """
    for layer in model.layers:
        if type(layer) in names:
            layer.name = names[type(layer)]
    return model
