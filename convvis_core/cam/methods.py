"""The heatmap methods by name: the registry the Heatmaps page, the CLI and the scoring share."""

from __future__ import annotations

from typing import Mapping

from PIL import Image

from convvis_core.cam.ablationcam import AblationCAM
from convvis_core.cam.base import Heatmap, HeatmapMethod
from convvis_core.cam.baselines import Baseline
from convvis_core.cam.eigencam import EigenCAM
from convvis_core.cam.gradcam import GradCAM
from convvis_core.cam.gradcam_plus_plus import GradCAMPlusPlus
from convvis_core.cam.gradient_input import GradientInput
from convvis_core.cam.guided_backprop import GuidedBackprop
from convvis_core.cam.guided_gradcam import GuidedGradCAM
from convvis_core.cam.hirescam import HiResCAM
from convvis_core.cam.integrated_gradients import IntegratedGradients
from convvis_core.cam.layercam import LayerCAM
from convvis_core.cam.occlusion import Occlusion
from convvis_core.cam.rise import RISE
from convvis_core.cam.saliency import SmoothGrad, VanillaGradient
from convvis_core.cam.scorecam import ScoreCAM
from convvis_core.cam.targets import Target
from convvis_core.cam.xgradcam import XGradCAM
from convvis_core.images import Fit
from convvis_core.models.base import LoadedModel

METHODS: dict[str, HeatmapMethod] = {method.name: method for method in (
    GradCAM(), GradCAMPlusPlus(), ScoreCAM(), LayerCAM(), VanillaGradient(), SmoothGrad(), HiResCAM(), XGradCAM(),
    EigenCAM(), AblationCAM(), IntegratedGradients(), GuidedBackprop(), GuidedGradCAM(), GradientInput(),
    Occlusion(), RISE())}
DEFAULT_METHODS = ("gradcam", "gradcam++", "layercam")  # fast; Score-CAM is one click away
SETTINGS = tuple(sorted({name for method in METHODS.values() for name in method.settings}))  # every method's settings


def settings_for(name: str, settings: Mapping[str, int | None]) -> dict[str, int]:
    """The settings method ``name`` takes, among ``settings`` (None: its default, left out); settings that
    no method takes are refused."""
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise ValueError(f"Unknown heatmap setting(s) {', '.join(sorted(unknown))}; known: {', '.join(SETTINGS)}")
    return {key: value for key, value in settings.items() if key in METHODS[name].settings and value is not None}


def method_named(name: str, steps: int | None = None, **settings: int | None) -> HeatmapMethod:
    """The method by name (see ``METHODS``), with the settings it takes among ``steps`` and ``settings``
    (Integrated Gradients' ``steps``, Occlusion's ``patch`` and ``stride``, RISE's ``masks``); others are ignored."""
    if name not in METHODS:
        raise ValueError(f"Unknown method {name!r}; choose one of {', '.join(METHODS)}")
    chosen = settings_for(name, {"steps": steps, **settings})
    return type(METHODS[name])(**chosen) if chosen else METHODS[name]


def heatmap(loaded: LoadedModel, image: Image.Image, method: str = "gradcam", target: Target | None = None,
            layer: str | None = None, fit: Fit = "stretch", baseline: Baseline = "blur", steps: int | None = None,
            **settings: int | None) -> Heatmap:
    """The heatmap of one method by name, with its settings (see :func:`method_named`); defaults as in
    :meth:`HeatmapMethod.explain`."""
    return method_named(method, steps, **settings).explain(loaded, image, target, layer, fit, baseline)
