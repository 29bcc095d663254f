"""Probe concepts ConvVis draws itself, at any size and colour, so a concept can be tested offline with no data:
stripes at an angle, dots, a checkerboard, a zigzag, a plain colour, a blurred patch.

Every image of a set is a seeded variation of the pattern (position, phase, scale, colour and angle jittered), so
a set of tens of distinct images exists for each; :func:`texture_images` draws the other side of a test, random
noise and textures of every pattern in random colours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from convvis_core.errors import ConvVisError

Colour = tuple[int, int, int]
COLOURS: dict[str, Colour] = {"red": (220, 30, 30), "green": (40, 170, 60), "blue": (40, 70, 220),
                              "yellow": (235, 200, 30), "white": (240, 240, 240), "black": (15, 15, 15)}
ANGLE_JITTER = 8.0  # degrees either side of a probe's angle
COLOUR_JITTER = 20  # per channel, either side of a probe's colour
SUPERSAMPLING = 2  # patterns are drawn at this many points per pixel a side and averaged: smooth edges at any angle


@dataclass(frozen=True)
class Canvas:
    """Where a pattern is drawn: pixel coordinates of one image, and the image's random numbers."""

    rows: np.ndarray  # row of each sample point (SUPERSAMPLING per pixel a side), in pixels
    cols: np.ndarray  # column of each sample point, in pixels
    rng: np.random.Generator
    side: int  # the image's shorter side, in pixels

    def period(self, low: float = 0.12, high: float = 0.3) -> float:
        """A pattern's period in pixels: a random share of the shorter side (at least 3 pixels)."""
        return max(3.0, self.side * float(self.rng.uniform(low, high)))

    def along(self, angle: float) -> np.ndarray:
        """Each pixel's distance along the direction ``angle`` (degrees; 0 runs down the image: horizontal stripes)."""
        theta = np.deg2rad(angle)
        return self.rows * np.cos(theta) + self.cols * np.sin(theta)

    def across(self, angle: float) -> np.ndarray:
        return self.along(angle + 90.0)


def _stripes(canvas: Canvas, angle: float) -> np.ndarray:
    period = canvas.period()
    return np.mod(canvas.along(angle) + canvas.rng.uniform(0, period), period) < period / 2


def _zigzag(canvas: Canvas, angle: float) -> np.ndarray:
    period, wave = canvas.period(0.12, 0.22), canvas.period(0.2, 0.4)
    phase = np.mod(canvas.across(angle) + canvas.rng.uniform(0, wave), wave) / wave
    offset = np.abs(phase - 0.5) * wave  # a triangle wave across the stripes bends them into a zigzag
    return np.mod(canvas.along(angle) + offset + canvas.rng.uniform(0, period), period) < period / 2


def _checkerboard(canvas: Canvas, angle: float) -> np.ndarray:
    cell = canvas.period(0.08, 0.2)
    shift = canvas.rng.uniform(0, 2 * cell, 2)
    return (np.floor((canvas.along(angle) + shift[0]) / cell) + np.floor((canvas.across(angle) + shift[1]) / cell)) % 2 == 0


def _dots(canvas: Canvas, angle: float) -> np.ndarray:
    spacing = canvas.period(0.15, 0.3)
    radius = spacing * canvas.rng.uniform(0.2, 0.35)
    shift = canvas.rng.uniform(0, spacing, 2)
    rows = np.mod(canvas.along(angle) + shift[0], spacing) - spacing / 2
    cols = np.mod(canvas.across(angle) + shift[1], spacing) - spacing / 2
    return rows ** 2 + cols ** 2 <= radius ** 2


def _plain(canvas: Canvas, angle: float) -> np.ndarray:
    return np.ones(canvas.rows.shape, bool)


def _blurred_patch(canvas: Canvas, angle: float) -> np.ndarray:
    """A soft blob of the colour (a weight 0..1, not a mask) somewhere on the background."""
    height, width = (side / SUPERSAMPLING for side in canvas.rows.shape)
    centre = canvas.rng.uniform(0.25, 0.75, 2) * (height, width)
    sigma = canvas.side * canvas.rng.uniform(0.12, 0.25)
    return np.exp(-((canvas.rows - centre[0]) ** 2 + (canvas.cols - centre[1]) ** 2) / (2 * sigma ** 2))


Pattern = Callable[[Canvas, float], np.ndarray]
PATTERNS: dict[str, Pattern] = {"stripes": _stripes, "dots": _dots, "checkerboard": _checkerboard,
                                "zigzag": _zigzag, "plain colour": _plain, "blurred patch": _blurred_patch}
ANGLED = ("stripes", "zigzag", "checkerboard", "dots")  # patterns an angle changes


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, 3).astype(np.float32)


def _drawn(pattern: Pattern, canvas: Canvas, angle: float, colour: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The pattern's colour over the background, each pixel weighted by the share of its sample points inside."""
    samples = pattern(canvas, angle).astype(np.float32)
    height, width = (side // SUPERSAMPLING for side in samples.shape)
    weight = samples.reshape(height, SUPERSAMPLING, width, SUPERSAMPLING).mean(axis=(1, 3))[..., None]
    return weight * colour + (1 - weight) * background


def _canvas(size: tuple[int, int], rng: np.random.Generator) -> Canvas:
    rows, cols = (np.mgrid[:size[0] * SUPERSAMPLING, :size[1] * SUPERSAMPLING].astype(np.float32) + 0.5) / SUPERSAMPLING - 0.5
    return Canvas(rows, cols, rng, min(size))


def _checked_size(size: tuple[int, int], count: int) -> None:
    if not (len(size) == 2 and 8 <= min(size) and max(size) <= 1024):
        raise ConvVisError(f"Probe images are 8 to 1024 pixels a side; asked for {size}.")
    if not 1 <= count <= 1000:
        raise ConvVisError(f"Ask for 1 to 1,000 probe images (asked {count}).")


@dataclass(frozen=True)
class ProbeConcept:
    """A pattern drawn by ConvVis: ``colour`` (RGB; None: a random colour per image) on a darker or lighter
    background of another random colour, at ``angle`` degrees (jittered by ±8°) where the pattern has one."""

    pattern: str
    colour: Colour | None = None
    angle: float = 0.0

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ConvVisError(f"No probe pattern '{self.pattern}': choose one of {', '.join(PATTERNS)}.")

    def describe(self) -> str:
        named = next((name for name, rgb in COLOURS.items() if rgb == self.colour), None)
        colour = "random colours" if self.colour is None else named or "rgb{}".format(tuple(self.colour))
        angle = f" at {self.angle:g}°" if self.pattern in ANGLED and self.angle else ""
        return f"{self.pattern}{angle}, {colour}"

    def images(self, count: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
        """``count`` distinct uint8 images (count, H, W, 3) of the pattern, each its own seeded variation."""
        _checked_size(size, count)
        draw = PATTERNS[self.pattern]
        images = np.empty((count, *size, 3), np.uint8)
        for index in range(count):
            rng = np.random.default_rng([seed, index])
            colour = (_random_colour(rng) if self.colour is None else
                      np.clip(np.asarray(self.colour, np.float32) + rng.integers(-COLOUR_JITTER, COLOUR_JITTER + 1, 3),
                              0, 255))
            background = _contrasting(colour, rng)
            angle = self.angle + float(rng.uniform(-ANGLE_JITTER, ANGLE_JITTER))
            images[index] = np.clip(np.round(_drawn(draw, _canvas(size, rng), angle, colour, background)), 0, 255)
        return images


def _contrasting(colour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A background far from ``colour``: dark under a light colour, light under a dark one, of a random hue."""
    light = colour.mean() < 128
    base = rng.integers(150, 256, 3) if light else rng.integers(0, 90, 3)
    return base.astype(np.float32)


def texture_images(count: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Random images with no concept in common: noise smoothed at a random scale, or a random pattern at a random
    angle, each in random colours (a random set drawn with no data)."""
    _checked_size(size, count)
    images = np.empty((count, *size, 3), np.uint8)
    patterns = list(PATTERNS.values())
    for index in range(count):
        rng = np.random.default_rng([seed, index, 1])
        if rng.random() < 0.5:
            images[index] = _smooth_noise(size, rng)
        else:
            canvas = _canvas(size, rng)
            drawn = _drawn(patterns[int(rng.integers(len(patterns)))], canvas, float(rng.uniform(0, 180)),
                           _random_colour(rng), _random_colour(rng))
            images[index] = np.clip(np.round(drawn + rng.normal(0, 12, drawn.shape)), 0, 255)
    return images


def _smooth_noise(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Colour noise on a coarse grid (1 to 1/16 of the side) blown up to ``size`` (blocky to blotchy)."""
    from PIL import Image

    grid = max(1, int(min(size) / rng.choice([1, 2, 4, 8, 16])))
    coarse = rng.integers(0, 256, (grid, grid, 3)).astype(np.uint8)
    resample = Image.NEAREST if rng.random() < 0.3 else Image.BICUBIC
    return np.asarray(Image.fromarray(coarse).resize((size[1], size[0]), resample))
