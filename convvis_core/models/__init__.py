"""Model sources: named offline and keras.applications models, and users' uploaded files."""

from convvis_core.models.base import LoadedModel, ModelInfo
from convvis_core.models.registry import DEFAULT_MODEL, MODELS, load_model, needs_conversion
from convvis_core.models.uploaded import load_uploaded_model

__all__ = ["DEFAULT_MODEL", "MODELS", "LoadedModel", "ModelInfo", "load_model", "load_uploaded_model",
           "needs_conversion"]
