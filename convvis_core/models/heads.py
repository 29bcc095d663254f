"""Models with several outputs or inputs, seen one output and one image at a time.

A user's model may have two heads (class + box, age + gender), a per-pixel class map (a U-Net),
values (a regression, an embedding), or inputs besides the image (a metadata vector). Every view
of ConvVis explains one image input and one output: a *view* of the model is a functional model
over the same layer objects (same weights, same layer paths) from the image input to the chosen
output, with every other input held at a fixed value by a :class:`HeldInput` layer. The pages,
CLI and atlas then work on the view as on any one-input, one-output model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

import keras
import numpy as np

from convvis_core.errors import ModelError
from convvis_core.graph import squash_of
from convvis_core.keras_internals import has_graph, producing_layer, run_through_graph
from convvis_core.labels import imagenet_class_names

MAX_HELD_VALUES = 4096  # numbers in an input held at a value you set (a metadata vector, not a second image)
OutputKind = Literal["classes", "values", "segmentation", "none", "unsupported"]
KINDS: dict[str, str] = {
    "classes": "class scores (a classifier)",
    "values": "values (a regression or an embedding)",
    "segmentation": "a per-pixel class map (segmentation)",
}


@dataclass(frozen=True)
class OutputInfo:
    """One output of a model: what it holds and how it can be explained."""

    name: str
    shape: tuple[int, ...]  # without the batch axis
    kind: OutputKind
    class_names: tuple[str, ...] | None = None  # classes and segmentation outputs
    squashed: bool = False  # out of a softmax or sigmoid: probabilities, certainly classes

    @property
    def ambiguous(self) -> bool:
        """A linear vector of several units: class logits, or values (an embedding); the user says which."""
        return self.kind in ("classes", "values") and len(self.shape) == 1 and self.units > 1 and not self.squashed

    @property
    def units(self) -> int:
        """Classes (or units) along the last axis."""
        return int(self.shape[-1]) if self.shape else 0

    @property
    def holds(self) -> str:
        if self.kind in KINDS:
            return f"holds {KINDS[self.kind]}, shape {self.shape}"
        if self.kind == "none":
            return "has no classes, values or per-pixel class map (a feature extractor)"
        return f"has shape {self.shape}, which is neither a vector (2-D) nor a per-pixel map (4-D)"

    @property
    def what_to_explain(self) -> str:
        return {"classes": "Explain one of its classes.",
                "values": "Explain one output unit, the output's norm, or its similarity to a reference image.",
                "segmentation": "Explain one class over the whole image or a region of it."}.get(
            self.kind, "Explain a filter of one of its layers instead.")


@dataclass(frozen=True)
class InputInfo:
    """One input of a model: the image that is explained, or one held at a fixed value."""

    name: str
    shape: tuple[int, ...]  # without the batch axis
    held: tuple[float, ...] | None = None  # None for the image input; else its fixed value, flattened
    held_from: str = "zeros"  # where the held value came from, as shown to users

    @property
    def is_image(self) -> bool:
        return self.held is None


class HeldInput(keras.layers.Layer):
    """A model input held at a fixed value: the same value for every image of a batch."""

    def __init__(self, value: np.ndarray, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.value = np.asarray(value, np.float32)

    def call(self, image):
        value = keras.ops.convert_to_tensor(self.value)
        return keras.ops.repeat(value[None], keras.ops.shape(image)[0], axis=0)

    def compute_output_shape(self, image_shape):
        return (image_shape[0],) + self.value.shape


def output_kind(model: keras.Model, index: int) -> OutputKind:
    """What output ``index`` holds, read off its shape and head: a 2-D output is class scores when
    its head squashes (softmax, sigmoid) or has several units, values when it is one linear unit or
    normalizes a vector (an embedding); a 4-D output is a per-pixel class map when its head squashes
    or it has the image's size (else it is a feature extractor's maps: "none")."""
    tensor = model.outputs[index]
    head = producing_layer(tensor)
    if len(tensor.shape) == 4:
        image_sizes = {tuple(source.shape[1:3]) for source in model.inputs if len(source.shape) == 4}
        per_pixel = squash_of(head) is not None or tuple(tensor.shape[1:3]) in image_sizes
        return "segmentation" if per_pixel and all(tensor.shape[1:]) else "none"
    if len(tensor.shape) != 2 or not tensor.shape[-1]:
        return "unsupported"
    if squash_of(head):
        return "classes"
    if isinstance(head, keras.layers.UnitNormalization) or tensor.shape[-1] == 1:
        return "values"
    return "classes"


def describe_outputs(model: keras.Model, class_names: Sequence[str] | None = None) -> tuple[OutputInfo, ...]:
    """Every output of ``model``, named by its head layer; ``class_names`` name a single classifier's classes."""
    outputs = []
    for index, tensor in enumerate(model.outputs):
        kind = output_kind(model, index)
        shape = tuple(int(side) if side else 0 for side in tensor.shape[1:])
        names = None
        if kind in ("classes", "segmentation"):
            count = shape[-1]
            names = (tuple(class_names) if class_names and len(class_names) == count and len(model.outputs) == 1
                     else imagenet_class_names() if count == 1000 and kind == "classes"
                     else tuple(f"class {i}" for i in range(count)))
        head = producing_layer(tensor)
        outputs.append(OutputInfo(head.name, shape, kind, names, squash_of(head) is not None))
    return tuple(outputs)


def describe_inputs(model: keras.Model, file_name: str) -> tuple[InputInfo, ...]:
    """Every input of ``model``: the first image-shaped one (H, W, 1 or 3) is explained, every other
    is held at zeros until the user sets it. Refuses a model with no image input."""
    spatial = [i for i, tensor in enumerate(model.inputs) if len(tensor.shape) == 4]
    image = spatial[0] if len(spatial) == 1 and model.inputs[spatial[0]].shape[-1] in (1, 3) else None
    if len(model.inputs) > 1 and (len(spatial) != 1 or image is None):
        raise ModelError(f"'{file_name}' has {len(model.inputs)} inputs; ConvVis needs a model with one image input "
                         "of shape (height, width, 1 or 3); its other inputs (a metadata vector, say) are held at "
                         "a value you set.")
    if image is None:
        shapes = ", ".join(str(tuple(tensor.shape[1:])) for tensor in model.inputs)
        raise ModelError(f"'{file_name}' takes input of shape {shapes}; ConvVis needs images of shape "
                         "(height, width, 1) or (height, width, 3).")
    described = []
    for index, tensor in enumerate(model.inputs):
        shape = tuple(int(side) if side else 0 for side in tensor.shape[1:])
        if index != image and (not all(shape) or np.prod(shape) > MAX_HELD_VALUES):
            raise ModelError(f"'{file_name}' has an input '{tensor.name}' of shape {shape} whose size is unknown or "
                             f"over {MAX_HELD_VALUES} numbers, so it cannot be held at a value you set. Give every "
                             "input besides the image a fixed, small shape.")
        held = None if index == image else tuple(np.zeros(int(np.prod(shape))).tolist())
        described.append(InputInfo(_input_name(tensor), shape, held))
    return tuple(described)


def _input_name(tensor) -> str:
    return getattr(tensor, "name", None) or producing_layer(tensor).name


def held_values(inputs: Sequence[InputInfo], values: Mapping[str, Sequence[float] | np.ndarray],
                source: str) -> tuple[InputInfo, ...]:
    """``inputs`` with the named held inputs set to ``values`` (each as many numbers as the input has)."""
    by_name = {info.name: info for info in inputs}
    for name in values:
        if name not in by_name or by_name[name].is_image:
            held = [info.name for info in inputs if not info.is_image]
            raise ModelError(f"The model has no held input '{name}'" + (
                f"; its held inputs are: {', '.join(held)}." if held else ": it has no input besides the image."))
    result = []
    for info in inputs:
        if info.name not in values:
            result.append(info)
            continue
        flat = np.asarray(values[info.name], np.float64).ravel()
        size = int(np.prod(info.shape))
        if flat.size != size or not np.isfinite(flat).all():
            raise ModelError(f"Input '{info.name}' takes {size} finite number(s) (shape {info.shape}); "
                             f"{source} gives {flat.size}" + ("" if np.isfinite(flat).all() else ", not all finite") + ".")
        result.append(InputInfo(info.name, info.shape, tuple(flat.tolist()), source))
    return tuple(result)


def view_key(inputs: Sequence[InputInfo], output: int, outputs: int) -> str:
    """The part of a model's identity that names its view: the output and the held values."""
    held = [(info.name, info.held) for info in inputs if not info.is_image]
    parts = [f"output:{output}"] if outputs > 1 else []
    if held:
        parts.append("held:" + hashlib.sha256(repr(held).encode()).hexdigest()[:12])
    return "#".join(parts)


def view_model(model: keras.Model, inputs: Sequence[InputInfo], output: int | None) -> keras.Model:
    """The image input to output ``output`` (None: to every output), other inputs held: a functional
    model over ``model``'s own layers (same weights, same layer paths). ``model`` itself when it
    already has one input and what is asked."""
    if len(model.inputs) == 1 and (len(model.outputs) == 1 or output is None):
        return model
    if not has_graph(model):
        raise ModelError(f"'{model.name}' is a subclassed model with several inputs or outputs: its graph cannot "
                         "be read. Build it with the functional API.")
    image_index = next(i for i, info in enumerate(inputs) if info.is_image)
    image = keras.Input(shape=tuple(model.inputs[image_index].shape[1:]), dtype=model.inputs[image_index].dtype,
                        name=inputs[image_index].name)
    fed = [image if info.is_image else
           HeldInput(np.asarray(info.held, np.float32).reshape(info.shape), name=f"held_{info.name}")(image)
           for info in inputs]
    outputs = run_through_graph(model, fed if len(fed) > 1 else fed[0], operation_fn=lambda operation: operation)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return keras.Model(image, outputs if output is None else outputs[output], name=model.name)


def numbers(text: str, name: str) -> tuple[float, ...]:
    """Comma- or space-separated numbers typed for input ``name``."""
    parts = [part for part in text.replace(",", " ").split() if part]
    try:
        return tuple(float(part) for part in parts)
    except ValueError as error:
        raise ModelError(f"The value for '{name}' must be numbers separated by commas ({error}).") from error


def csv_row(data: bytes, file_name: str) -> tuple[float, ...]:
    """The first row of numbers of a CSV file (a header line of names is skipped)."""
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as error:
        raise ModelError(f"'{file_name}' is not a text CSV file ({error}).") from error
    for line in lines:
        cells = [cell.strip() for cell in line.split(",") if cell.strip()]
        try:
            if cells:
                return tuple(float(cell) for cell in cells)
        except ValueError:
            continue  # a header
    raise ModelError(f"'{file_name}' has no row of numbers.")
