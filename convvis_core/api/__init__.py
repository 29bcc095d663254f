"""ConvVis for notebooks: the app's views of a CNN, each one call on a model you hold.

``Model.from_keras(model)`` (or ``load_model("mobilenet")``, or a .keras/.h5 path) wraps a model;
heatmap methods are called on a batch, pytorch-grad-cam style (``GradCAM(model)(images, targets)``), and
checked (``faithfulness``, ``sanity_check``: does a map depend on the model?, ``trust_metrics``);
``filters``, ``visualize`` (any objective of the algebra), ``activations``, ``top_k_images``, ``circuit``, ``unit`` and ``compare`` are one call each,
and so are concepts: ``tcav`` (does a concept move a class?), ``craft`` (a target's concepts) and ``neuron_groups`` (one image's).
Every result shows itself in Jupyter and saves with ``.save(path)``. Reference: docs/api.md.
"""

from convvis_core.api.attribution import (ATTRIBUTIONS, RISE, AblationCAM, Attribution, EigenCAM, FaithfulnessScores,
                                          GradCAM, GradCAMPlusPlus, GradientInput, GuidedBackprop, GuidedGradCAM,
                                          Heatmaps, HiResCAM, IntegratedGradients, LayerCAM, Occlusion, Saliency,
                                          ScoreCAM, SmoothGrad, XGradCAM, faithfulness)
from convvis_core.api.discovery import Concepts, NeuronGroupsView, craft, neuron_groups
from convvis_core.api.explore import (Activations, CircuitView, Comparison, FilterPictures, ObjectivePictures,
                                      TopImages, Unit, activations, circuit, compare, filters, top_k_images, unit,
                                      visualize)
from convvis_core.api.trust import SanityChecks, TrustMetrics, sanity_check, trust_metrics
from convvis_core.api.tcav import TCAV, tcav
from convvis_core.concepts.probes import ProbeConcept
from convvis_core.models.base import LoadedModel as Model

__all__ = ["Model", "Attribution", "ATTRIBUTIONS", "GradCAM", "GradCAMPlusPlus", "HiResCAM", "XGradCAM", "LayerCAM",
           "EigenCAM", "ScoreCAM", "AblationCAM", "Saliency", "SmoothGrad", "IntegratedGradients", "GuidedBackprop",
           "GuidedGradCAM", "GradientInput", "Occlusion", "RISE", "Heatmaps",
           "faithfulness", "FaithfulnessScores", "sanity_check", "SanityChecks", "trust_metrics", "TrustMetrics",
           "filters", "FilterPictures", "visualize", "ObjectivePictures", "activations", "Activations",
           "top_k_images", "TopImages", "circuit", "CircuitView", "unit", "Unit", "compare", "Comparison",
           "tcav", "TCAV", "ProbeConcept", "craft", "Concepts", "neuron_groups", "NeuronGroupsView"]
