"""Every knob of a feature visualization, in one hashable, serializable record."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from convvis_core.errors import SettingsError
from convvis_core.featureviz.objectives import ClassLogit, DeepDream, Filter, Neuron, Term
from convvis_core.featureviz.optimizers import OPTIMIZERS
from convvis_core.featureviz.parameterizations import PARAMETERIZATIONS as _REGISTERED

PARAMETERIZATIONS = {name: kind.description for name, kind in _REGISTERED.items()}  # name -> description

# The objectives Settings named before they were terms, under their old names: the keys of their pictures
# (and so the pictures already cached) stay as they were. ``Filter(border=...)`` was "channel" with its border.
_NAMED_BEFORE = {Neuron(): "neuron", ClassLogit(): "class_logit", DeepDream(): "deepdream"}


@dataclass(frozen=True)
class Settings:
    objective: Term = Filter()  # what to maximize (objectives.py); its canonical spec keys the pictures
    parameterization: str = "fourier"
    decorrelate: bool = True  # Fourier: Lucid's decorrelated colour space
    pad: int = 12  # transforms, in image pixels; 0 turns one off
    jitter: int = 8
    scale: float = 0.1  # random scale in [1 - scale, 1 + scale]
    rotate: float = 10.0  # random rotation in degrees, ±
    final_jitter: int = 4
    fused_transforms: bool = False  # the transforms as one resampling onto a fixed-size canvas (cheaper)
    optimizer: str = "adam"
    learning_rate: float = 0.05
    steps: int = 256
    size: int = 128  # image side in pixels (class logits use the model's input size)
    seed: int = 0
    batch_size: int = 8  # filters optimized together in one batch

    def __post_init__(self) -> None:
        if not isinstance(self.objective, Term):
            raise SettingsError(f"The objective must be a term such as Filter() or Channel(\"conv2_relu\", 3), "
                                f"not {self.objective!r} (objectives.parse reads one from its text or spec)")
        for value, known, what in ((self.parameterization, _REGISTERED, "parameterization"),
                                   (self.optimizer, OPTIMIZERS, "optimizer")):
            if value not in known:
                raise ValueError(f"Unknown {what} {value!r}; choose one of {', '.join(known)}")
        if self.steps < 1 or self.size < 8 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be at least 1, and size at least 8 pixels")

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)

    def traced_part(self) -> tuple:
        """What the compiled step depends on (steps, seed and batching don't change the trace)."""
        return tuple((k, v) for k, v in self._fields().items() if k not in ("steps", "seed", "batch_size"))

    def result_part(self) -> dict:
        """What a picture depends on: everything but batching."""
        return {k: v for k, v in self._fields().items() if k != "batch_size"}

    def _fields(self) -> dict:
        """Every field, the objective as its canonical spec, or as the name and border it had before
        objectives were terms (see ``_NAMED_BEFORE``), so those keys stay as they were."""
        values = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        objective = values.pop("objective")
        if isinstance(objective, Filter):
            return {"objective": "channel", "border": objective.border, **values}
        if objective in _NAMED_BEFORE:
            return {"objective": _NAMED_BEFORE[objective], "border": 0, **values}
        return {"objective": objective.spec(), **values}
