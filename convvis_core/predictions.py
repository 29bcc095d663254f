"""What a model predicts for one image: the top-k classes of a classifier, and a line per output of
a model with several (class scores, values, a per-pixel class map)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from PIL import Image

from convvis_core.batches import model_input
from convvis_core.counters import WorkCounter
from convvis_core.errors import ConvVisError
from convvis_core.graph import output_squash, squashed
from convvis_core.images import Fit
from convvis_core.models.base import LoadedModel
from convvis_core.models.heads import OutputInfo
from convvis_core.segmentation import classes_of

VALUES_SHOWN = 8  # a values output's first values printed; the norm covers the rest


@dataclass(frozen=True)
class Prediction:
    rank: int
    class_index: int
    class_name: str
    probability: float


def shown_squash(squash: str | None, units: int) -> str:
    """How top-k reads a classifier's logits as probabilities: as its head does (``squash``); a linear
    head's as a softmax's (a sigmoid's for one unit), the way such heads are usually trained. A
    heatmap's score takes no such guess: under a linear head it is the logit (``cam.targets``)."""
    return squash or ("sigmoid" if units == 1 else "softmax")


def as_probabilities(outputs: np.ndarray, squash: str | None) -> np.ndarray:
    """A classifier's outputs, out of a head that ``squash`` names, as probabilities: a softmax or
    sigmoid head's as they are (a multi-label head's each on its own: several may be near 1); a linear
    head's kept if they already are (they sum to 1: a softmax ConvVis cannot see), else read through
    :func:`shown_squash`."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if squash or (outputs.min() >= 0 and abs(outputs.sum(axis=-1) - 1).max() < 1e-3):
        return outputs
    return np.asarray(squashed(outputs, shown_squash(squash, outputs.shape[-1])), np.float64)


def _one_output(loaded: LoadedModel) -> LoadedModel:
    """``loaded`` with a single-output model: the view of its chosen output if it has several."""
    if len(loaded.model.outputs) > 1 or len(loaded.model.inputs) > 1:
        return loaded.with_output(loaded.info.output)
    return loaded


MODEL_RUNS = WorkCounter()  # the model run on an image for its predictions, by the model's key


def _outputs(loaded: LoadedModel, image: Image.Image, fit: Fit) -> np.ndarray:
    MODEL_RUNS.add(loaded.info.key)
    return np.asarray(loaded.model(model_input(image, loaded.info, fit), training=False), np.float32)


def ranked(probabilities: np.ndarray, names: Sequence[str] | None, k: int) -> list[Prediction]:
    """The ``k`` most probable classes, highest first, named by ``names`` (indexes where there are none)."""
    order = np.argsort(probabilities)[::-1][:k]
    return [
        Prediction(
            rank=rank + 1,
            class_index=int(index),
            class_name=names[index] if names and index < len(names) else f"class {index}",
            probability=float(probabilities[index]),
        )
        for rank, index in enumerate(order)
    ]


def top_k(loaded: LoadedModel, image: Image.Image, k: int = 5, fit: Fit = "stretch") -> list[Prediction]:
    """The k most probable classes for one image, most probable first (of the chosen output of a
    model with several)."""
    loaded = _one_output(loaded)
    output = loaded.info.output_info
    if loaded.info.outputs and output.kind != "classes":
        raise ConvVisError(f"{loaded.info.display_name}'s output '{output.name}' {output.holds}, not class "
                           "scores, so it has no top classes. `predict` shows what it outputs.")
    outputs = _outputs(loaded, image, fit)
    if outputs.ndim != 2:
        raise ConvVisError(
            f"{loaded.info.display_name} outputs a {outputs.ndim}-D tensor of shape {outputs.shape}, "
            "not class scores, so it has no predictions. Its layers can still be visualized."
        )
    return ranked(as_probabilities(outputs, output_squash(loaded.model))[0], loaded.info.class_names, k)


@dataclass(frozen=True)
class ClassShare:
    """A class of a segmentation output and the share of pixels predicted as it."""

    class_index: int  # -1: the pixels a one-channel map does not predict as its class
    class_name: str
    share: float  # 0..1


@dataclass(frozen=True)
class OutputPrediction:
    """What one output of a model says about an image, by the output's kind."""

    index: int  # the output's index in the model file
    name: str  # its head layer
    kind: str  # "classes", "values", "segmentation", "none", "unsupported"
    shape: tuple[int, ...]
    classes: list[Prediction] = field(default_factory=list)  # classes: the top k
    values: tuple[float, ...] = ()  # values: the output, flattened
    norm: float | None = None  # values: its Euclidean norm
    shares: list[ClassShare] = field(default_factory=list)  # segmentation: predicted classes, largest first
    reason: str | None = None  # none / unsupported: why it has no prediction

    @property
    def predicts(self) -> bool:
        return self.reason is None

    def describe(self) -> str:
        """One line for the command line."""
        shape = "×".join(str(side) for side in self.shape)
        head = f"{self.name} ({self.kind}, {shape or 'scalar'})"
        if self.kind == "classes":
            return f"{head}: " + ", ".join(f"{p.rank}. {p.class_name} {p.probability:.4f} (class {p.class_index})"
                                           for p in self.classes)
        if self.kind == "values":
            shown = ", ".join(f"{value:.4g}" for value in self.values[:VALUES_SHOWN])
            more = f", … ({len(self.values)} values)" if len(self.values) > VALUES_SHOWN else ""
            return f"{head}: [{shown}{more}], norm {self.norm:.4g}"
        if self.kind == "segmentation":
            return f"{head}: pixels predicted as " + ", ".join(
                f"{share.class_name} {share.share:.1%}" for share in self.shares)
        return f"{head}: {self.reason}"


def _predict_one(loaded: LoadedModel, index: int, image: Image.Image, fit: Fit, k: int) -> OutputPrediction:

    output: OutputInfo = loaded.info.output_info
    if output.kind in ("none", "unsupported") and loaded.info.outputs:
        return OutputPrediction(index, output.name, output.kind, output.shape, reason=(
            f"{output.holds}, so it has no prediction; {output.what_to_explain[0].lower()}"
            f"{output.what_to_explain[1:].rstrip('.')}"))
    outputs = _outputs(loaded, image, fit)
    shape = tuple(int(side) for side in outputs.shape[1:])
    kind = output.kind
    if kind == "none":  # a registry model without class names: its vector read as values
        if outputs.ndim != 2:
            return OutputPrediction(index, output.name, kind, shape, reason=(
                f"outputs a {outputs.ndim}-D tensor of shape {shape}, not class scores, values or a per-pixel "
                "class map, so it has no predictions; its layers can still be visualized"))
        kind = "values"
    if kind == "classes":
        probabilities = as_probabilities(outputs, output_squash(loaded.model))[0]
        return OutputPrediction(index, output.name, kind, shape, classes=ranked(probabilities, output.class_names, k))
    if kind == "values":
        flat = outputs[0].ravel().astype(np.float64)
        return OutputPrediction(index, output.name, kind, shape, values=tuple(flat.tolist()),
                                norm=float(np.linalg.norm(flat)))
    classes = classes_of(outputs[0], output_squash(loaded.model) is not None)
    counts = np.bincount(classes.ravel(), minlength=max(output.units, 2))
    names = output.class_names or ()
    if output.units == 1:  # one channel: 1 is its class, 0 the rest
        labels = {0: "background", 1: names[0] if names else "class 0"}
    else:
        labels = {i: names[i] if i < len(names) else f"class {i}" for i in range(len(counts))}
    order = np.argsort(counts)[::-1]
    shares = [ClassShare(int(i) if output.units > 1 else int(i) - 1, labels[int(i)], float(counts[i] / classes.size))
              for i in order if counts[i]]
    return OutputPrediction(index, output.name, kind, shape, shares=shares)


def predict_outputs(loaded: LoadedModel, image: Image.Image, fit: Fit = "stretch", k: int = 5,
                    outputs: Sequence[int] | None = None) -> list[OutputPrediction]:
    """One entry per output of the model file (or of ``outputs``, indices), each by its kind: the
    top-k classes, the values and their norm, the share of pixels per predicted class, or why it
    has no prediction. Other inputs are held as ``loaded`` holds them."""
    count = len(loaded.info.outputs)
    if not count:
        return [_predict_one(_one_output(loaded), 0, image, fit, k)]
    chosen = range(count) if outputs is None else outputs
    return [_predict_one(loaded.with_output(index), index, image, fit, k) for index in chosen]
