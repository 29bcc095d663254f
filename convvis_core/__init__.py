"""ConvVis core: what a CNN has learned, as a library (no UI code here; pages and CLI call it)."""

from convvis_core.quiet import import_tensorflow_quietly

import_tensorflow_quietly()  # before any module here imports it: its C++ start-up log lines hide real output

from convvis_core.errors import ConvVisError, ImageError, LayerError, ModelError, ModelUnavailableError, UnsafeModelError
from convvis_core.images import as_model_sees_it, model_input, open_image
from convvis_core.graph import LOGITS, sub_model
from convvis_core.layers import SpatialLayer, default_layer, find_layer, spatial_layers
from convvis_core.models import DEFAULT_MODEL, MODELS, LoadedModel, ModelInfo, load_model, load_uploaded_model, needs_conversion
from convvis_core.predictions import Prediction, top_k
from convvis_core.samples import load_sample, sample_names

__all__ = [
    "ConvVisError", "ImageError", "LayerError", "ModelError", "ModelUnavailableError", "UnsafeModelError",
    "as_model_sees_it", "model_input", "open_image",
    "LOGITS", "sub_model", "SpatialLayer", "default_layer", "find_layer", "spatial_layers",
    "DEFAULT_MODEL", "MODELS", "LoadedModel", "ModelInfo", "load_model", "load_uploaded_model", "needs_conversion",
    "Prediction", "top_k",
    "load_sample", "sample_names",
]
