"""ConvVis core: what a CNN has learned, as a library (no UI code here; pages and CLI call it).

The names below are the public API (docs/api.md): wrap a model (``Model.from_keras``, ``load_model``),
explain a batch with any of sixteen heatmap methods (``GradCAM(model)(images)``) and check the maps
(``faithfulness``, ``sanity_check``, ``trust_metrics``), and see filters, activations, dataset examples,
circuits, a unit, two models compared, a concept tested (TCAV), a target's concepts (CRAFT) or one image's
neuron groups in one call each.
"""

from convvis_core.quiet import import_tensorflow_quietly

import_tensorflow_quietly()  # before any module here imports it: its C++ start-up log lines hide real output

from convvis_core.batches import model_input
from convvis_core.errors import (ConceptError, ConvVisError, ImageError, LayerError, ModelError, ModelUnavailableError,
                                 SettingsError, TargetError, UnsafeModelError)
from convvis_core.images import as_images, as_model_sees_it, open_image
from convvis_core.graph import LOGITS, sub_model
from convvis_core.layers import SpatialLayer, default_layer, find_layer, spatial_layers
from convvis_core.models import DEFAULT_MODEL, MODELS, LoadedModel, ModelInfo, load_model, load_uploaded_model, needs_conversion
from convvis_core.predictions import Prediction, top_k
from convvis_core.samples import load_sample, sample_names
from convvis_core.datasets.catalog import open_dataset
from convvis_core.cam.targets import (ClassTarget, FilterTarget, OutputNormTarget, OutputUnitTarget, Region,
                                      RegionTarget, SimilarityTarget)
from convvis_core.featureviz.presets import PRESETS
from convvis_core.featureviz.objectives import (L1, L2, Blur, Channel, ClassLogit, DeepDream, Direction, Diversity,
                                                Neuron, Term, TotalVariation, parse)
from convvis_core.api import (ATTRIBUTIONS, RISE, TCAV, AblationCAM, Activations, Attribution, CircuitView,
                              Comparison, Concepts, EigenCAM, FaithfulnessScores, FilterPictures, GradCAM,
                              GradCAMPlusPlus, GradientInput, GuidedBackprop, GuidedGradCAM, Heatmaps, HiResCAM,
                              IntegratedGradients, LayerCAM, Model, NeuronGroupsView, ObjectivePictures, Occlusion,
                              ProbeConcept, Saliency, SanityChecks, ScoreCAM, SmoothGrad, TopImages, TrustMetrics, Unit,
                              XGradCAM, activations, circuit, compare, craft, faithfulness, filters, neuron_groups,
                              sanity_check, tcav, top_k_images, trust_metrics, unit, visualize)

__all__ = [
    "ConvVisError", "ConceptError", "ImageError", "LayerError", "ModelError", "ModelUnavailableError", "SettingsError", "TargetError",
    "UnsafeModelError",
    "as_images", "as_model_sees_it", "model_input", "open_image",
    "LOGITS", "sub_model", "SpatialLayer", "default_layer", "find_layer", "spatial_layers",
    "DEFAULT_MODEL", "MODELS", "LoadedModel", "ModelInfo", "load_model", "load_uploaded_model", "needs_conversion",
    "Prediction", "top_k",
    "load_sample", "sample_names", "open_dataset",
    # the notebook API (convvis_core.api)
    "Model",
    "Attribution", "ATTRIBUTIONS", "GradCAM", "GradCAMPlusPlus", "HiResCAM", "XGradCAM", "LayerCAM", "EigenCAM",
    "ScoreCAM", "AblationCAM", "Saliency", "SmoothGrad", "IntegratedGradients", "GuidedBackprop", "GuidedGradCAM",
    "GradientInput", "Occlusion", "RISE", "Heatmaps",
    "ClassTarget", "FilterTarget", "OutputUnitTarget", "OutputNormTarget", "SimilarityTarget", "RegionTarget", "Region",
    "faithfulness", "FaithfulnessScores", "sanity_check", "SanityChecks", "trust_metrics", "TrustMetrics",
    "filters", "FilterPictures", "PRESETS", "visualize", "ObjectivePictures",
    "Term", "Channel", "Neuron", "Direction", "DeepDream", "ClassLogit", "Diversity", "L1", "L2", "TotalVariation",
    "Blur", "parse",
    "activations", "Activations", "top_k_images", "TopImages",
    "circuit", "CircuitView", "unit", "Unit", "compare", "Comparison",
    "tcav", "TCAV", "ProbeConcept", "craft", "Concepts", "neuron_groups", "NeuronGroupsView",
]
