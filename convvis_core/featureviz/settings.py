"""Every knob of a feature visualization, in one hashable, serializable record."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from convvis_core.featureviz.objectives import OBJECTIVES, ObjectiveSpec
from convvis_core.featureviz.optimizers import OPTIMIZERS
from convvis_core.featureviz.parameterizations import PARAMETERIZATIONS as _REGISTERED
from convvis_core.featureviz.recipe import parse

PARAMETERIZATIONS = {name: kind.description for name, kind in _REGISTERED.items()}  # name -> description


@dataclass(frozen=True)
class Settings:
    objective: str = "channel"
    border: int = 0  # channel objective: map pixels excluded on each side
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
    recipe: str = ""  # a recipe.Term's spec() added to the objective, regularizers included ("": the objective alone)

    def __post_init__(self) -> None:
        for value, known, what in ((self.objective, OBJECTIVES, "objective"),
                                   (self.parameterization, _REGISTERED, "parameterization"),
                                   (self.optimizer, OPTIMIZERS, "optimizer")):
            if value not in known:
                raise ValueError(f"Unknown {what} {value!r}; choose one of {', '.join(known)}")
        if self.steps < 1 or self.size < 8 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be at least 1, and size at least 8 pixels")
        if self.recipe:
            parse(self.recipe)  # a clear error now rather than in the render loop

    @property
    def objective_spec(self) -> type[ObjectiveSpec]:
        return OBJECTIVES[self.objective]

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)

    def traced_part(self) -> tuple:
        """What the compiled step depends on (steps, seed and batching don't change the trace)."""
        return tuple((k, v) for k, v in self._fields().items() if k not in ("steps", "seed", "batch_size"))

    def result_part(self) -> dict:
        """What a picture depends on: everything but batching."""
        return {k: v for k, v in self._fields().items() if k != "batch_size"}

    def _fields(self) -> dict:
        """Every field; no recipe (the objective alone) leaves it out, so those keys stay as they were."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "recipe" or v}
