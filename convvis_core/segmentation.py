"""Per-pixel class maps of a segmentation output: what the model predicts where, and the region it
predicts for a class (what ``RegionTarget`` explains); ``presentation.overlays`` draws them over the image.

A softmax output of C channels predicts, per pixel, the class with the highest score (class 0 is
taken as the background: it is left uncoloured); a one-channel output (a sigmoid) predicts its one
class where the probability is above 0.5 (where the logit is above 0, when the head is linear).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from convvis_core.batches import model_input
from convvis_core.cam.targets import Region
from convvis_core.errors import ConvVisError
from convvis_core.graph import output_squash
from convvis_core.images import Fit
from convvis_core.models.base import LoadedModel



def _segmentation_output(loaded: LoadedModel):
    output = loaded.info.output_info
    if output.kind != "segmentation":
        raise ConvVisError(f"{loaded.info.display_name}'s output '{output.name}' {output.holds}, not a per-pixel "
                           "class map, so it has no predicted classes per pixel. Choose a segmentation output.")
    return output


def classes_of(scores: np.ndarray, squashed: bool = True) -> np.ndarray:
    """The predicted class per pixel of one output map (h, w, C): argmax over C, or for C = 1 the
    pixels above 0.5 (above 0 for logits, ``squashed=False``) as class 1."""
    scores = np.asarray(scores, np.float32)
    if scores.shape[-1] == 1:
        return (scores[..., 0] > (0.5 if squashed else 0.0)).astype(np.int32)
    return np.argmax(scores, axis=-1).astype(np.int32)


def class_map(loaded: LoadedModel, image: Image.Image, fit: Fit = "stretch") -> np.ndarray:
    """The view's segmentation output's predicted class per pixel, (h, w) int, at the output's size."""
    output = _segmentation_output(loaded)
    scores = np.asarray(loaded.model(model_input(image, loaded.info, fit), training=False), np.float32)
    if scores.ndim != 4:
        raise ConvVisError(f"Output '{output.name}' gave shape {scores.shape[1:]}, not a per-pixel map.")
    return classes_of(scores[0], output_squash(loaded.model) is not None)


def class_name(loaded: LoadedModel, class_index: int) -> str:
    names = loaded.info.output_info.class_names
    return names[class_index] if names and 0 <= class_index < len(names) else f"class {class_index}"


def predicted_mask(classes: np.ndarray, class_index: int, units: int) -> np.ndarray:
    """The pixels of a class map predicted as ``class_index`` (for a one-channel output, its one
    class, index 0, is the map's 1s)."""
    return classes == (1 if units == 1 else class_index)


def predicted_region(loaded: LoadedModel, image: Image.Image, class_index: int, fit: Fit = "stretch"):
    """The pixels the model predicts as ``class_index`` on this image, as a ``Region`` of its output map."""
    output = _segmentation_output(loaded)
    if not 0 <= class_index < output.units:
        raise ConvVisError(f"Class {class_index} is out of range: output '{output.name}' has {output.units} "
                           f"classes (0–{output.units - 1}).")
    name = class_name(loaded, class_index)
    mask = predicted_mask(class_map(loaded, image, fit), class_index, output.units)
    if not mask.any():
        raise ConvVisError(f"{loaded.info.display_name} predicts no pixel as {name} (class {class_index}) on this "
                           "image, so there is no predicted region to explain: explain the class over the whole "
                           "image, or draw a region.")
    return Region.of(mask, f"the pixels predicted as {name}")
