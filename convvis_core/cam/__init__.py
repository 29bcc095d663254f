"""Heatmaps: where in the picture the model looked, by several methods, each with a faithfulness score.

One mechanism (``base``: capture a layer's activations and gradients for a scalar target, weight,
ReLU, resize, normalize; in pixel space) and one short module per method, named in ``methods``;
targets are small objects (a class, a filter, an output unit, norm or similarity, a segmentation
region); ``faithfulness`` (deletion, insertion) and ``road`` score any map; Integrated Gradients'
maps carry their ``completeness`` check.
"""

from __future__ import annotations

from convvis_core.cam.ablationcam import AblationCAM
from convvis_core.cam.base import EmptyHeatmapError, Heatmap, HeatmapMethod
from convvis_core.cam.completeness import Completeness
from convvis_core.cam.baselines import BASELINES, Baseline
from convvis_core.cam.eigencam import EigenCAM
from convvis_core.cam.faithfulness import Faithfulness, faithfulness
from convvis_core.cam.gradcam import GradCAM
from convvis_core.cam.gradcam_plus_plus import GradCAMPlusPlus
from convvis_core.cam.gradient_input import GradientInput
from convvis_core.cam.guided_backprop import GuidedBackprop
from convvis_core.cam.guided_gradcam import GuidedGradCAM
from convvis_core.cam.hirescam import HiResCAM
from convvis_core.cam.integrated_gradients import IntegratedGradients
from convvis_core.cam.layercam import LayerCAM
from convvis_core.cam.methods import DEFAULT_METHODS, METHODS, heatmap, method_named
from convvis_core.cam.occlusion import Occlusion
from convvis_core.cam.rise import RISE
from convvis_core.cam.saliency import SmoothGrad, VanillaGradient
from convvis_core.cam.scorecam import ScoreCAM
from convvis_core.cam.targets import (ClassTarget, FilterTarget, OutputNormTarget, OutputUnitTarget, Region,
                                      RegionTarget, SimilarityTarget, Target, default_target)
from convvis_core.cam.xgradcam import XGradCAM

__all__ = ["method_named", "BASELINES", "DEFAULT_METHODS", "METHODS", "AblationCAM", "Baseline", "ClassTarget",
           "Completeness", "EigenCAM", "EmptyHeatmapError", "Faithfulness", "FilterTarget", "GradCAM",
           "GradCAMPlusPlus", "GradientInput", "GuidedBackprop", "GuidedGradCAM", "Heatmap", "HeatmapMethod", "HiResCAM",
           "IntegratedGradients", "LayerCAM", "Occlusion", "OutputNormTarget", "OutputUnitTarget", "RISE", "Region",
           "RegionTarget", "ScoreCAM", "SimilarityTarget", "SmoothGrad", "Target", "VanillaGradient", "XGradCAM",
           "default_target", "faithfulness", "heatmap"]
