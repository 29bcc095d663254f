"""Heatmaps for a notebook, one call shape for all sixteen methods: ``GradCAM(model)(images, targets)``.

Each method is a line over one base class (pytorch-grad-cam's shape): bound to a model and a layer, it
is called on a batch (a numpy batch, Pillow images or paths) and returns :class:`Heatmaps`, one map per
image, for each image's own target (default: its top class). The work is the core's
:meth:`~convvis_core.cam.base.HeatmapMethod.explain_batch`: one pass per batch, the very maps the app
draws. :func:`faithfulness` scores a batch of maps the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Sequence

import keras
import numpy as np
from PIL import Image

from convvis_core import cam
from convvis_core.api.display import DISPLAY_SIDE, Pictured, Tabled, figures_html
from convvis_core.cam.base import EmptyHeatmapError, Heatmap, HeatmapMethod
from convvis_core.cam.baselines import Baseline
from convvis_core.cam.completeness import Completeness
from convvis_core.cam.faithfulness import STEPS, Faithfulness, faithfulness_batch
from convvis_core.cam.road import Road, road_batch
from convvis_core.cam.targets import Target, indexed_target
from convvis_core.images import Fit, Images, as_images, as_model_sees_it
from convvis_core.layers import find_layer
from convvis_core.models.base import LoadedModel
from convvis_core.models.registry import load_model
from convvis_core.presentation.grids import captioned_grid, enlarged
from convvis_core.presentation.overlays import overlay

Models = LoadedModel | keras.Model | str  # what every call takes as its model
Targets = int | Target | Sequence[int | Target | None] | np.ndarray | None


def as_model(model: Models) -> LoadedModel:
    """A model as the caller holds it: ready, a ``keras.Model`` (wrapped by :meth:`LoadedModel.from_keras`,
    its preprocessing inferred), or a registry name or model file path (:func:`load_model`)."""
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, str):
        return load_model(model)
    return LoadedModel.from_keras(model)


def as_targets(model: LoadedModel, targets: Targets, count: int, layer: str | None) -> list[Target | None] | None:
    """Targets as the caller gives them, one per image: None (each image's default), one for all, or a
    sequence of ints and target objects (see :func:`indexed_target`)."""
    if targets is None:
        return None
    if isinstance(targets, (int, np.integer)) or hasattr(targets, "arguments"):
        targets = [targets] * count
    return [indexed_target(model, target, layer) if isinstance(target, (int, np.integer)) else target
            for target in targets]


@dataclass(frozen=True, eq=False)
class Heatmaps(Pictured):
    """One method's heatmaps of a batch. ``np.asarray(heatmaps)`` (or ``.maps``) is (N, H, W) in 0..1 at
    the model's input size, 1 marking the most important pixels; an image without a map is NaN there,
    ``why_empty`` says why. In a notebook each map is drawn over its image with its target named."""

    model: LoadedModel = field(repr=False)
    method: str  # the method's title
    pictures: tuple[Image.Image, ...] = field(repr=False)  # the images as given, decoded
    found: tuple[Heatmap | EmptyHeatmapError, ...] = field(repr=False)  # the core's maps, or why there is none
    fit: Fit = "stretch"
    baseline: Baseline = "blur"

    @cached_property
    def maps(self) -> np.ndarray:
        height, width = self.model.info.input_size
        return np.stack([found.values if isinstance(found, Heatmap) else np.full((height, width), np.nan, np.float32)
                         for found in self.found])

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self.maps if dtype is None else self.maps.astype(dtype)

    def __len__(self) -> int:
        return len(self.found)

    @property
    def targets(self) -> tuple[Target | None, ...]:
        """Each map's target, pinned (the top class found, not "the top class"); None where there is no map."""
        return tuple(found.target if isinstance(found, Heatmap) else None for found in self.found)

    @property
    def layer(self) -> str | None:
        """The layer the maps were computed at; None for input-gradient methods."""
        return next((found.layer for found in self.found if isinstance(found, Heatmap)), None)

    @property
    def completeness(self) -> tuple[Completeness | None, ...]:
        """Integrated Gradients: each map's sum of attributions next to f(image) − f(baseline)
        (``.warning()`` says when they are over 5 % apart); None for other methods and where there is no map."""
        return tuple(found.completeness if isinstance(found, Heatmap) else None for found in self.found)

    @property
    def why_empty(self) -> tuple[str | None, ...]:
        return tuple(str(found) if isinstance(found, EmptyHeatmapError) else None for found in self.found)

    def captions(self) -> list[str]:
        """Each image's line: its number and target, or why it has no map."""
        names = self.model.info.output_info.class_names
        return [f"#{i} · {found.target.describe(names)}" if isinstance(found, Heatmap) else f"#{i} · no map: {found}"
                for i, found in enumerate(self.found)]

    def tiles(self) -> list[Image.Image]:
        """Each map over its image as the model sees it (the image alone where there is no map)."""
        seen = [enlarged(as_model_sees_it(picture, self.model.info, self.fit), DISPLAY_SIDE) for picture in self.pictures]
        return [overlay(image, found.values, 0.5, "jet") if isinstance(found, Heatmap) else image.convert("RGB")
                for image, found in zip(seen, self.found)]

    def caption(self) -> str:
        where = f" at {self.layer}" if self.layer else ""
        return f"{self.method}{where}: " + "; ".join(self.captions())

    def draw(self) -> Image.Image:
        return captioned_grid(list(zip(self.tiles(), self.captions())), columns=min(len(self), 4))

    def _repr_html_(self) -> str:
        where = f" at {self.layer}" if self.layer else ""
        return figures_html(list(zip(self.tiles(), self.captions())), f"{self.method}{where}")


class Attribution:
    """A heatmap method bound to a model (see :func:`as_model`) and a layer (default: the last with a real
    map), called on a batch: ``method(images, targets=None)`` → :class:`Heatmaps`. Images are a numpy batch (N, H, W, C)
    or (N, H, W), uint8 or float pixels, Pillow images or paths, brought to the model's input by ``fit``;
    targets are class indices or target objects (default: each image's top class). ``options`` go to
    the method (``IntegratedGradients(model, steps=32)``, ``SmoothGrad(model, samples=48)``, ``ScoreCAM(model,
    batch_size=64)``: masks per pass; ``Occlusion(model, patch=16, stride=8)``, ``RISE(model, masks=2000)``);
    images go through the model 32 at a time."""

    method: ClassVar[type[HeatmapMethod]]

    def __init__(self, model: Models, layer: str | None = None, *, fit: Fit = "stretch",
                 baseline: Baseline = "blur", **options: Any):
        self.model, self.fit, self.baseline = as_model(model), fit, baseline
        self.layer = None if layer is None else find_layer(self.model.model, layer).path
        self.engine = self.method(**options)

    def __call__(self, images: Images, targets: Targets = None) -> Heatmaps:
        pictures = as_images(images)
        found = self.engine.explain_batch(self.model, pictures, as_targets(self.model, targets, len(pictures), self.layer),
                                          self.layer, self.fit, self.baseline)
        return Heatmaps(self.model, self.engine.title, tuple(pictures), tuple(found), self.fit, self.baseline)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model.info.display_name!r}, layer={self.layer!r})"


class GradCAM(Attribution):
    """Channels weighted by their mean gradient (Selvaraju et al. 2017)."""
    method = cam.GradCAM


class GradCAMPlusPlus(Attribution):
    """Positive gradients weighted per position: several instances of a class all count."""
    method = cam.GradCAMPlusPlus


class HiResCAM(Attribution):
    """Gradients × activations element by element: exactly what the score used."""
    method = cam.HiResCAM


class XGradCAM(Attribution):
    """Channel weights that satisfy the sensitivity and conservation axioms."""
    method = cam.XGradCAM


class LayerCAM(Attribution):
    """Positive gradients per position: sharp maps at early layers too."""
    method = cam.LayerCAM


class EigenCAM(Attribution):
    """The layer's first principal component: no gradient, no target (class-agnostic)."""
    method = cam.EigenCAM


class ScoreCAM(Attribution):
    """No gradient: each channel masks the picture, weighed by how much the score rises."""
    method = cam.ScoreCAM


class AblationCAM(Attribution):
    """No gradient: each channel zeroed, weighed by how much the target's value falls."""
    method = cam.AblationCAM


class Saliency(Attribution):
    """The vanilla gradient: which pixels, changed a little, change the target most."""
    method = cam.VanillaGradient


class SmoothGrad(Attribution):
    """The gradient averaged over noisy copies of the image: less speckle."""
    method = cam.SmoothGrad


class IntegratedGradients(Attribution):
    """Pixel attributions that add up to f(image) − f(baseline), along a straight path."""
    method = cam.IntegratedGradients


class GuidedBackprop(Attribution):
    """The gradient with every ReLU passing back only positive gradients: sharp, but shows edges too."""
    method = cam.GuidedBackprop


class GuidedGradCAM(Attribution):
    """Guided Backpropagation kept where Grad-CAM finds the class (Selvaraju et al. 2017)."""
    method = cam.GuidedGradCAM


class GradientInput(Attribution):
    """Each pixel's gradient times its value (0..255, before preprocessing): baseline-free attribution."""
    method = cam.GradientInput


class Occlusion(Attribution):
    """No gradient: how much the score drops while a sliding patch covers each pixel (``patch``, ``stride``)."""
    method = cam.Occlusion


class RISE(Attribution):
    """No gradient: the scores of randomly masked copies, each weighting its mask (``masks``, seeded)."""
    method = cam.RISE


ATTRIBUTIONS: dict[str, type[Attribution]] = {kind.method.name: kind for kind in Attribution.__subclasses__()}


@dataclass(frozen=True, eq=False)
class FaithfulnessScores(Tabled):
    """How far to trust each map of a batch: deletion and insertion areas (lower, higher is better) and
    ROAD (higher is better, about 0 for a random map), NaN where an image has no map."""

    method: str
    curves: tuple[Faithfulness | None, ...] = field(repr=False)  # deletion and insertion curves
    roads: tuple[Road | None, ...] = field(repr=False)  # ROAD's MoRF and LeRF scores

    @property
    def deletion_auc(self) -> np.ndarray:
        return np.array([np.nan if found is None else found.deletion_auc for found in self.curves])

    @property
    def insertion_auc(self) -> np.ndarray:
        return np.array([np.nan if found is None else found.insertion_auc for found in self.curves])

    @property
    def road(self) -> np.ndarray:
        return np.array([np.nan if found is None else found.combined for found in self.roads])

    def rows(self) -> list[dict]:
        return [{"image": i, "deletion AUC": float(deletion), "insertion AUC": float(insertion), "ROAD": float(road)}
                for i, (deletion, insertion, road) in enumerate(zip(self.deletion_auc, self.insertion_auc, self.road))]

    def title(self) -> str:
        named = next((found.score_name for found in self.curves if found is not None), "score")
        return f"{self.method}: faithfulness of each map (the curves follow the {named})"


def faithfulness(heatmaps: Heatmaps, *, steps: int = STEPS, road: bool = True) -> FaithfulnessScores:
    """Deletion and insertion curves in ``steps`` equal steps (50: the first removes 2 % of the pixels;
    pixels removed become the maps' baseline) and, with
    ``road``, ROAD, for every map of a batch, each for its own target, scored in shared batches."""
    kept = [i for i, found in enumerate(heatmaps.found) if isinstance(found, Heatmap)]
    pictures, maps = [heatmaps.pictures[i] for i in kept], [heatmaps.found[i] for i in kept]
    model, fit = heatmaps.model, heatmaps.fit
    curves = dict(zip(kept, faithfulness_batch(model, pictures, maps, fit, steps, heatmaps.baseline)))
    roads = dict(zip(kept, road_batch(model, pictures, maps, fit))) if road else {}
    return FaithfulnessScores(heatmaps.method, tuple(curves.get(i) for i in range(len(heatmaps))),
                              tuple(roads.get(i) for i in range(len(heatmaps))))
