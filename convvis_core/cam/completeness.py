"""Whether Integrated Gradients' attributions add up, as its completeness axiom says they should.

Completeness (Sundararajan et al. 2017): the attributions sum to f(x) − f(x'), the change in the
target's value from the baseline x' to the image x. The integral is a sum over a finite number of
steps, and how far the sum misses is not monotone in the steps (MobileNet's ReLU6 kinks: from a
black picture +4.5 % at 16 steps, −11.6 % at 32, −5.2 % at 64, +0.9 % at 512; an independent library
gives the same), so the only way to know is to compare: each map carries its own check.
"""

from __future__ import annotations

from dataclasses import dataclass

TOLERANCE = 0.05  # a sum further than this (relatively) from f(x) − f(x') is worth a warning


@dataclass(frozen=True)
class Completeness:
    """The sum of one map's attributions next to the change they should add up to."""

    attribution_sum: float  # Σ over pixels and colours of the attributions
    change: float  # f(x) − f(x'): the target's value on the image minus on the baseline
    steps: int  # the path steps the integral took

    @property
    def gap(self) -> float:
        """|sum − change| relative to |change| (infinite when the change is zero but the sum is not)."""
        missed = abs(self.attribution_sum - self.change)
        if self.change == 0:
            return 0.0 if missed == 0 else float("inf")
        return missed / abs(self.change)

    def sentence(self) -> str:
        """The two numbers side by side, and how far apart, in one line."""
        return (f"Σ attributions = {self.attribution_sum:.4g}, f(image) − f(baseline) = {self.change:.4g} "
                f"({self.gap:.1%} apart, {self.steps} steps)")

    def warning(self) -> str | None:
        """Advice when the sum misses the change by more than ``TOLERANCE``; None when it adds up."""
        if self.gap <= TOLERANCE:
            return None
        return (f"The attributions add up to {self.attribution_sum:.4g}, not to the change in the target's value "
                f"({self.change:.4g}): {self.gap:.1%} apart, more than {TOLERANCE:.0%}. The path integral is too "
                f"coarse at {self.steps} steps: try more (e.g. {4 * self.steps}); the error is not monotone in the "
                "steps, so check this line again.")
