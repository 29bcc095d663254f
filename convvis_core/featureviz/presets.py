"""Named settings, each named after where it comes from."""

from __future__ import annotations

from convvis_core.featureviz.settings import Settings

PRESETS: dict[str, Settings] = {
    # The keras.io "Visualizing what convnets learn" example (the seeds): plain pixels, the channel
    # mean inside a 2-pixel border, 30 steps of L2-normalized ascent of 10 in [-1, 1] input units
    # (5 in our 0..1 pixel units), 180 px, no transforms.
    "keras.io example": Settings(objective="channel", border=2, parameterization="pixel", decorrelate=False,
                                 pad=0, jitter=0, scale=0.0, rotate=0.0, final_jitter=0,
                                 optimizer="l2_normalized", learning_rate=5.0, steps=30, size=180),
    # Lucid's render_vis defaults: Fourier + decorrelated colour, pad 12 → jitter 8 → scale ±10 % →
    # rotate ±10° → jitter 4, Adam 0.05 (Lucid runs 512 steps; 256 is nearly converged at 128 px).
    "Lucid": Settings(),
    # A fast look while exploring: Lucid's recipe, fewer steps, smaller image.
    "quick preview": Settings(pad=6, jitter=4, scale=0.05, rotate=5.0, final_jitter=2, steps=64, size=96),
}


def preset(name: str) -> Settings:
    """A preset by name, with a clear error listing the known ones."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]
