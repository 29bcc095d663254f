"""Named settings, each named after where it comes from, and which one fits a model by default."""

from __future__ import annotations

from convvis_core.featureviz.objectives import Filter
from convvis_core.featureviz.settings import Settings

FAST = "fast Lucid"
SMALL_INPUTS = "pixels at model size"

PRESETS: dict[str, Settings] = {
    # The keras.io "Visualizing what convnets learn" example: plain pixels, the channel
    # mean inside a 2-pixel border, 30 steps of L2-normalized ascent of 10 in [-1, 1] input units
    # (5 in our 0..1 pixel units), 180 px, no transforms.
    "keras.io example": Settings(objective=Filter(border=2), parameterization="pixel", decorrelate=False,
                                 pad=0, jitter=0, scale=0.0, rotate=0.0, final_jitter=0,
                                 optimizer="l2_normalized", learning_rate=5.0, steps=30, size=180),
    # Lucid's render_vis defaults: Fourier + decorrelated colour, pad 12 → jitter 8 → scale ±10 % →
    # rotate ±10° → jitter 4, Adam 0.05 (Lucid runs 512 steps; 256 is nearly converged at 128 px).
    "Lucid": Settings(),
    # Lucid's picture for a fraction of its time (bench/filters_time_to_quality.py): the same
    # transforms as one resampling onto a fixed-size canvas (the chained random scale gives every step
    # a new input size, which costs more than the step), twice the learning rate and 96 steps.
    FAST: Settings(fused_transforms=True, learning_rate=0.1, steps=96),
    # A fast look while exploring: Lucid's recipe, fewer steps, smaller image.
    "quick preview": Settings(pad=6, jitter=4, scale=0.05, rotate=5.0, final_jitter=2, steps=64, size=96),
    # Small inputs (LeNet's 28×28 digits): plain pixels at the model's own size, Adam 0.1, no transforms.
    # The bounded Fourier picture leaves some filters below zero there; unbounded pixels reach them.
    SMALL_INPUTS: Settings(parameterization="pixel", decorrelate=False, pad=0, jitter=0, scale=0.0, rotate=0.0,
                           final_jitter=0, learning_rate=0.1, steps=64, size=28),
}
PRESET_NOTES = {  # one line each, for the page's help
    "keras.io example": "plain pixels, gradient ascent with the normalized gradient, 30 steps: the "
                        "keras.io \"Visualizing what convnets learn\" recipe.",
    "Lucid": "Fourier image, decorrelated colour, robustness transforms, Adam, 256 steps.",
    FAST: "Lucid's picture in a fraction of its time: the transforms as one resampling, a larger step, 96 steps.",
    "quick preview": "Lucid's recipe, fewer steps, a smaller image.",
    SMALL_INPUTS: "plain pixels at the model's own size: for small inputs such as 28×28 digits.",
}
# Models whose input side is below this are "small" (the bench measured 28 px LeNet and 224 px ImageNet
# models): pixels at their own size beat a larger Fourier canvas there.
SMALL_INPUT_SIDE = 128


def preset(name: str) -> Settings:
    """A preset by name, with a clear error listing the known ones."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]


def default_preset(input_size: tuple[int, int]) -> str:
    """The preset the bench shows best for a model of this input size."""
    return SMALL_INPUTS if max(input_size) < SMALL_INPUT_SIDE else FAST


def fitted_preset(name: str, input_size: tuple[int, int]) -> Settings:
    """A preset for a model: "pixels at model size" takes the model's own input side."""
    settings = preset(name)
    return settings.replace(size=max(input_size)) if name == SMALL_INPUTS else settings


def by_preference(input_size: tuple[int, int]) -> dict[str, Settings]:
    """Every preset fitted to a model, the model's default first: where pages look for a filter's picture
    computed before (the default's, else any other), and the first is how they compute a missing one."""
    first = default_preset(input_size)
    return {name: fitted_preset(name, input_size) for name in (first, *(name for name in PRESETS if name != first))}
