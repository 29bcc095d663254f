"""ConvVis for notebooks: the app's views of a CNN, each one call on a model you hold.

``Model.from_keras(model)`` (or ``load_model("mobilenet")``, or a .keras/.h5 path) wraps a model;
heatmap methods are called on a batch, pytorch-grad-cam style (``GradCAM(model)(images, targets)``);
``filters``, ``visualize`` (any objective of the algebra), ``activations``, ``top_k_images``, ``circuit``, ``unit`` and ``compare`` are one call each.
Every result shows itself in Jupyter and saves with ``.save(path)``. Reference: docs/api.md.
"""

from convvis_core.api.attribution import (ATTRIBUTIONS, RISE, AblationCAM, Attribution, EigenCAM, FaithfulnessScores,
                                          GradCAM, GradCAMPlusPlus, GradientInput, GuidedBackprop, GuidedGradCAM,
                                          Heatmaps, HiResCAM, IntegratedGradients, LayerCAM, Occlusion, Saliency,
                                          ScoreCAM, SmoothGrad, XGradCAM, faithfulness)
from convvis_core.api.explore import (Activations, CircuitView, Comparison, FilterPictures, ObjectivePictures,
                                      TopImages, Unit, activations, circuit, compare, filters, top_k_images, unit,
                                      visualize)
from convvis_core.models.base import LoadedModel as Model

__all__ = ["Model", "Attribution", "ATTRIBUTIONS", "GradCAM", "GradCAMPlusPlus", "HiResCAM", "XGradCAM", "LayerCAM",
           "EigenCAM", "ScoreCAM", "AblationCAM", "Saliency", "SmoothGrad", "IntegratedGradients", "GuidedBackprop",
           "GuidedGradCAM", "GradientInput", "Occlusion", "RISE", "Heatmaps",
           "faithfulness", "FaithfulnessScores", "filters", "FilterPictures", "visualize", "ObjectivePictures", "activations", "Activations",
           "top_k_images", "TopImages", "circuit", "CircuitView", "unit", "Unit", "compare", "Comparison"]
