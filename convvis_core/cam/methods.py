"""The heatmap methods by name: the registry the Heatmaps page, the CLI and the scoring share."""

from __future__ import annotations

from PIL import Image

from convvis_core.cam.ablationcam import AblationCAM
from convvis_core.cam.base import Heatmap, HeatmapMethod
from convvis_core.cam.baselines import Baseline
from convvis_core.cam.eigencam import EigenCAM
from convvis_core.cam.gradcam import GradCAM
from convvis_core.cam.gradcam_plus_plus import GradCAMPlusPlus
from convvis_core.cam.hirescam import HiResCAM
from convvis_core.cam.integrated_gradients import IntegratedGradients
from convvis_core.cam.layercam import LayerCAM
from convvis_core.cam.saliency import SmoothGrad, VanillaGradient
from convvis_core.cam.scorecam import ScoreCAM
from convvis_core.cam.targets import Target
from convvis_core.cam.xgradcam import XGradCAM
from convvis_core.images import Fit
from convvis_core.models.base import LoadedModel

METHODS: dict[str, HeatmapMethod] = {method.name: method for method in (
    GradCAM(), GradCAMPlusPlus(), ScoreCAM(), LayerCAM(), VanillaGradient(), SmoothGrad(), HiResCAM(), XGradCAM(),
    EigenCAM(), AblationCAM(), IntegratedGradients())}
DEFAULT_METHODS = ("gradcam", "gradcam++", "layercam")  # fast; Score-CAM is one click away


def method_named(name: str, steps: int | None = None) -> HeatmapMethod:
    """The method by name (see ``METHODS``); Integrated Gradients with ``steps`` path steps when given."""
    if name not in METHODS:
        raise ValueError(f"Unknown method {name!r}; choose one of {', '.join(METHODS)}")
    method = METHODS[name]
    return IntegratedGradients(steps) if steps is not None and isinstance(method, IntegratedGradients) else method


def heatmap(loaded: LoadedModel, image: Image.Image, method: str = "gradcam", target: Target | None = None,
            layer: str | None = None, fit: Fit = "stretch", baseline: Baseline = "blur",
            steps: int | None = None) -> Heatmap:
    """The heatmap of one method by name; defaults as in :meth:`HeatmapMethod.explain`."""
    return method_named(method, steps).explain(loaded, image, target, layer, fit, baseline)
