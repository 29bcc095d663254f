"""Top-k predictions of a classifier, with class names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from convvis_core.errors import ConvVisError
from convvis_core.images import Fit, model_input
from convvis_core.models.base import LoadedModel


@dataclass(frozen=True)
class Prediction:
    rank: int
    class_index: int
    class_name: str
    probability: float


def as_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Model outputs as probabilities: kept if they already are, softmaxed if they are logits."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.min() >= 0 and abs(outputs.sum(axis=-1) - 1).max() < 1e-3:
        return outputs
    shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def top_k(loaded: LoadedModel, image: Image.Image, k: int = 5, fit: Fit = "stretch") -> list[Prediction]:
    """The k most probable classes for one image, most probable first."""
    outputs = np.asarray(loaded.model(model_input(image, loaded.info, fit), training=False))
    if outputs.ndim != 2:
        raise ConvVisError(
            f"{loaded.info.display_name} outputs a {outputs.ndim}-D tensor of shape {outputs.shape}, "
            "not class scores, so it has no predictions. Its layers can still be visualized."
        )
    probabilities = as_probabilities(outputs)[0]
    names = loaded.info.class_names
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
