"""Feature visualization (activation maximization), split as Lucid splits it:

objective (what to maximize) × parameterization (how the image is represented) × transforms
(what it must be robust to), composed with regularizers and an optimizer by one render loop,
with results cached by model weights, layer, filter and every setting.
"""

from convvis_core.featureviz.presets import PRESETS, preset
from convvis_core.featureviz.render import FilterResult, cached_filters, visualize_filters
from convvis_core.featureviz.settings import Settings

__all__ = ["PRESETS", "FilterResult", "Settings", "cached_filters", "preset", "visualize_filters"]
