"""Exceptions the core raises for anything a user can get wrong.

Every message says what is wrong and what to do, so a page can show it as it is.
"""


class ConvVisError(Exception):
    """Base class: a problem with the user's input or environment, never a bug."""


class ImageError(ConvVisError):
    """An image that cannot be read, is too large, or is not an image at all."""


class ModelError(ConvVisError):
    """A model file that cannot be loaded, or is refused as unsafe."""


class UnsafeModelError(ModelError):
    """A model that carries code (Lambda layers, custom objects): it is never executed."""


class ModelUnavailableError(ModelError):
    """A registry model whose weights cannot be had here (no network, no cache)."""


class SettingsError(ConvVisError):
    """Feature-visualization settings that give no picture: over the limits, or diverging to NaN."""


class LayerError(ConvVisError):
    """A layer that does not exist, has no spatial (4-D) output, or has no such filter."""


class TargetError(ConvVisError):
    """A heatmap target the model cannot explain: a class or unit out of range, the wrong kind for its output."""


class CacheError(ConvVisError):
    """A cache folder a batch job cannot write (read-only, full): the job stops rather than compute for nothing."""


class ConceptError(ConvVisError):
    """A concept request that cannot be answered: too few concept images, a class without images, too few runs,
    more concepts or groups than the layer has channels or positions, a target that does not depend on the layer."""
