"""Feature visualization (activation maximization), split as Lucid splits it:

objective (what to maximize: terms that add and scale) × parameterization (how the image is represented) ×
transforms (what it must be robust to), composed with an optimizer by one render loop, with results cached by
model weights, layer, filter and every setting.
"""

from convvis_core.featureviz.objectives import (L1, L2, Blur, Channel, ClassLogit, DeepDream, Direction, Diversity,
                                                Filter, Neuron, Term, TotalVariation, parse)
from convvis_core.featureviz.presets import PRESETS, preset
from convvis_core.featureviz.render import FilterResult, cached_filters, visualize, visualize_filters
from convvis_core.featureviz.settings import Settings

__all__ = ["PRESETS", "FilterResult", "Settings", "cached_filters", "preset", "visualize", "visualize_filters",
           "Term", "Filter", "Channel", "Neuron", "Direction", "DeepDream", "ClassLogit", "Diversity",
           "L1", "L2", "TotalVariation", "Blur", "parse"]
