"""What every model source returns: a Keras model plus what the pages need to know about it."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Sequence

import keras

from convvis_core.errors import ModelError
from convvis_core.preprocessing import MODES


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
    preprocessing_why: str = "the recipe this model was trained with"  # shown next to the mode

    @property
    def is_classifier(self) -> bool:
        return self.class_names is not None

    @property
    def reads_digits(self) -> bool:
        """A 28×28 grayscale model (MNIST-like): digits are its natural samples and dataset."""
        return self.input_size == (28, 28) and self.channels == 1


@dataclass(frozen=True)
class LoadedModel:
    """A ready model: the Keras object and its description."""

    model: keras.Model
    info: ModelInfo

    def with_preprocessing(self, mode: str, why: str = "chosen by you") -> "LoadedModel":
        """The same model read with other pixels (a user's correction of an inferred mode)."""
        if mode not in MODES:
            raise ModelError(f"Unknown preprocessing {mode!r}; choose one of: {', '.join(MODES)}.")
        if mode == self.info.preprocessing:
            return self
        return LoadedModel(self.model, dataclasses.replace(self.info, preprocessing=mode, preprocessing_why=why))

    def with_labels(self, names: Sequence[str], source: str) -> "LoadedModel":
        """The same model with its classes named (from a labels file called ``source``); the model key
        changes with the names, so nothing cached under the old names is shown with the new."""
        if not self.info.is_classifier:
            raise ModelError(f"{self.info.display_name} has no class output, so it has no classes to name.")
        if len(names) != len(self.info.class_names):
            raise ModelError(f"'{source}' names {len(names)} classes, but {self.info.display_name} has "
                             f"{len(self.info.class_names)} outputs. Give one name per output, in output order.")
        digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:12]
        return LoadedModel(self.model, dataclasses.replace(self.info, class_names=tuple(names),
                                                           key=f"{self.info.key}+labels:{digest}"))


def name_unnamed_layers(model: keras.Model, names: dict[type, str]) -> keras.Model:
    """Give the layers keras.applications leaves unnamed (one per type in ``names``) fixed names.

    Keras numbers unnamed layers by a process-wide count ("input_layer_3" once three were built), and
    a converted model file must not depend on what its process built before it.
    """
    for layer in model.layers:
        if type(layer) in names:
            layer.name = names[type(layer)]
    return model
