"""What every model source returns: a Keras model plus what the pages need to know about it."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import weakref
from dataclasses import dataclass, field
from typing import Sequence

import keras

from convvis_core.errors import ModelError
from convvis_core.models.heads import InputInfo, OutputInfo, describe_inputs, held_values, view_key, view_model
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
    outputs: tuple[OutputInfo, ...] = ()  # every output of the model file; () for a plain classifier or feature model
    output: int = 0  # the output explained (index into ``outputs``)
    inputs: tuple[InputInfo, ...] = ()  # every input, when there are several: the image and those held fixed

    @property
    def is_classifier(self) -> bool:
        return self.class_names is not None

    @property
    def output_info(self) -> OutputInfo:
        """The output this model's views explain."""
        if self.outputs:
            return self.outputs[self.output]
        if self.class_names is not None:
            return OutputInfo("predictions", (len(self.class_names),), "classes", self.class_names)
        return OutputInfo("features", (), "none")

    @property
    def held_inputs(self) -> tuple[InputInfo, ...]:
        return tuple(info for info in self.inputs if not info.is_image)

    @property
    def reads_digits(self) -> bool:
        """A 28×28 grayscale model (MNIST-like): digits are its natural samples and dataset."""
        return self.input_size == (28, 28) and self.channels == 1


@dataclass(frozen=True)
class LoadedModel:
    """A ready model: the Keras object and its description."""

    model: keras.Model  # one image input, one output: the view of ``source`` that ``info`` describes
    info: ModelInfo
    source: keras.Model | None = field(default=None, repr=False, compare=False)  # the file's model, when it differs

    @property
    def identity(self) -> str:
        """The one name of this model as every cache and every result passed between pages knows it:
        everything that changes what it computes for a picture, or how that is read. ``info.key`` names
        the model (registry name, or upload file name and content digest), its class names, the output
        explained and the values its other inputs are held at; added here are the pixels' preprocessing
        and each output's kind (a linear vector read as classes or as values). Change any of them and
        the identity changes, so no result made under the old one is shown. (Widget keys use
        ``info.key`` alone, so a user's choices on a page survive a change of pixels.)"""
        info = self.info
        kinds = ",".join(output.kind for output in info.outputs) if info.outputs else info.output_info.kind
        return f"{info.key}|{info.preprocessing}|{kinds}"

    @classmethod
    def from_keras(cls, model: keras.Model, preprocessing: str | None = None,
                   class_names: Sequence[str] | None = None, name: str | None = None) -> "LoadedModel":
        """A model built or trained in this process (a notebook's), described as the same model saved and
        uploaded would be: the same checks and the same inference of its pixels' preprocessing, unless
        ``preprocessing`` names it (:meth:`describe` says which, and why); ``class_names`` name its classes.
        No code check: the code is the caller's own."""
        from convvis_core.cache import model_fingerprint
        from convvis_core.models.uploaded import describe_uploaded  # uploaded.py builds on this module

        if not isinstance(model, keras.Model):
            raise ModelError(f"from_keras takes a keras.Model; got {type(model).__name__}.")
        name = name or model.name
        loaded = describe_uploaded(model, name, f"keras:{name}#{model_fingerprint(model)[:16]}", "Keras model")
        if preprocessing is not None:
            loaded = loaded.with_preprocessing(preprocessing, "given to from_keras")
        return loaded if class_names is None else loaded.with_labels(list(class_names), "class_names")

    def describe(self) -> str:
        """What ConvVis makes of the model, in a few lines: its input, how its pixels are preprocessed and
        why, and what its output holds."""
        info, output = self.info, self.info.output_info
        return (f"{info.display_name}: {info.description}\n"
                f"input: {info.input_size[0]}×{info.input_size[1]}×{info.channels} pixels, 0..255\n"
                f"preprocessing: {info.preprocessing} ({MODES[info.preprocessing]}), {info.preprocessing_why}\n"
                f"output '{output.name}': {output.holds}")

    def with_output(self, output: int | str | None = None, kind: str | None = None) -> "LoadedModel":
        """The same model explaining another of its outputs (by index or head name; None: the one it explains),
        optionally read as another kind ("classes" or "values": a linear vector may be logits or an embedding).
        Takes a user's choice as given (``--output`` and ``--output-kind``, an atlas request): neither is this model."""
        if output is None and kind is None:
            return self
        outputs = self.info.outputs
        names = [info.name for info in outputs]
        index = self.info.output if output is None else names.index(output) if output in names else output
        if not isinstance(index, int) or not 0 <= index < max(len(outputs), 1):
            raise ModelError(f"{self.info.display_name} has no output {output!r}; its outputs are: "
                             f"{', '.join(names) or 'one'}.")
        if not outputs:  # a registry model: its one output as it is
            if kind is not None and kind != self.info.output_info.kind:
                raise ModelError(f"{self.info.display_name}'s output '{self.info.output_info.name}' "
                                 f"{self.info.output_info.holds}; it cannot be read as {kind}.")
            return self
        chosen = outputs[index]
        if kind is not None and kind != chosen.kind:
            if kind not in ("classes", "values") or chosen.kind not in ("classes", "values"):
                raise ModelError(f"Output '{chosen.name}' (shape {chosen.shape}) cannot be read as {kind}: only a "
                                 "2-D output is either class scores or values.")
            names_of = tuple(f"class {i}" for i in range(chosen.units)) if kind == "classes" else None
            chosen = dataclasses.replace(chosen, kind=kind, class_names=names_of)
            outputs = outputs[:index] + (chosen,) + outputs[index + 1:]
        return self.viewed(outputs, index, self.info.inputs)

    def with_held_inputs(self, values: dict[str, Sequence[float]], source: str = "values you set") -> "LoadedModel":
        """The same model with its non-image inputs held at ``values`` (by input name) instead of zeros."""
        return self.viewed(self.info.outputs, self.info.output, held_values(self.info.inputs, values, source))

    def whole(self) -> keras.Model:
        """The file's model with every head (other inputs held as in this view): what its layer list shows."""
        return cached_view(self.source, self.info.inputs, None) if self.source is not None else self.model

    def viewed(self, outputs: tuple[OutputInfo, ...], output: int, inputs: tuple[InputInfo, ...]) -> "LoadedModel":
        """The same file's model seen with ``outputs`` described, output ``output`` chosen and ``inputs``
        held as given (a one-image, one-output view), keyed apart from the other views."""
        source = self.source or self.model
        chosen = outputs[output] if outputs else self.info.output_info
        base_key = self.info.key.split("#output:")[0].split("#held:")[0]
        suffix = view_key(inputs, output, len(outputs))
        info = dataclasses.replace(self.info, outputs=outputs, output=output, inputs=inputs,
                                   class_names=chosen.class_names if chosen.kind == "classes" else None,
                                   key=f"{base_key}#{suffix}" if suffix else base_key)
        return LoadedModel(cached_view(source, inputs, output), info, source)

    def with_preprocessing(self, mode: str, why: str = "chosen by you") -> "LoadedModel":
        """The same model read with other pixels (a user's correction of an inferred mode)."""
        if mode not in MODES:
            raise ModelError(f"Unknown preprocessing {mode!r}; choose one of: {', '.join(MODES)}.")
        if mode == self.info.preprocessing:
            return self
        return dataclasses.replace(self, info=dataclasses.replace(self.info, preprocessing=mode, preprocessing_why=why))

    def with_labels(self, names: Sequence[str], source: str) -> "LoadedModel":
        """The same model with its classes named (from a labels file called ``source``); the model key
        changes with the names, so nothing cached under the old names is shown with the new."""
        output = self.info.output_info
        if output.kind not in ("classes", "segmentation"):
            raise ModelError(f"{self.info.display_name} has no class output, so it has no classes to name.")
        if len(names) != len(output.class_names):
            raise ModelError(f"'{source}' names {len(names)} classes, but {self.info.display_name} has "
                             f"{len(output.class_names)} outputs. Give one name per output, in output order.")
        digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:12]
        outputs = tuple(dataclasses.replace(info, class_names=tuple(names)) if i == self.info.output else info
                        for i, info in enumerate(self.info.outputs))
        return dataclasses.replace(self, info=dataclasses.replace(
            self.info, class_names=tuple(names) if output.kind == "classes" else None, outputs=outputs,
            key=f"{self.info.key}+labels:{digest}"))


_VIEWS: "weakref.WeakKeyDictionary[keras.Model, dict]" = weakref.WeakKeyDictionary()
_VIEWS_LOCK = threading.Lock()


def cached_view(model: keras.Model, inputs: Sequence[InputInfo], output: int | None) -> keras.Model:
    """One view object per (model, held values, output), so every per-model cache serves it again."""
    inputs = inputs or describe_inputs(model, model.name)  # a one-input model's ModelInfo.inputs is ()
    key = (view_key(inputs, output, len(model.outputs)), tuple(info.held for info in inputs))
    with _VIEWS_LOCK:
        kept = _VIEWS.setdefault(model, {})
        if key not in kept:
            kept[key] = view_model(model, inputs, output)
        return kept[key]


def name_unnamed_layers(model: keras.Model, names: dict[type, str]) -> keras.Model:
    """Give the layers keras.applications leaves unnamed (one per type in ``names``) fixed names.

    Keras numbers unnamed layers by a process-wide count ("input_layer_3" once three were built), and
    a converted model file must not depend on what its process built before it.
    """
    for layer in model.layers:
        if type(layer) in names:
            layer.name = names[type(layer)]
    return model
