"""Models with a planted concept, trained here in seconds: what a concept method must find is known in advance.

:func:`red_square_model` says class 1 ("red square") when a red square is anywhere in a 32 × 32 scene and
class 0 otherwise; distractors (squares of other colours, discs of any colour, red ones included) are in both
classes, so the model must use *red* and *square* together. :func:`shape_model` tells a lone square from a
lone disc. Both are trained once per process (seeded) and shared by the tests and benches that need them.
"""

from __future__ import annotations

import functools

import keras
import numpy as np

from convvis_core.models.base import LoadedModel, ModelInfo

SIDE = 32
RED = (220, 30, 30)
SHAPE = 8  # side of a square, diameter of a disc, in pixels


def shape_mask(kind: str, top: int, left: int, size: int = SHAPE, side: int = SIDE) -> np.ndarray:
    """(side, side) booleans: a filled square or disc of ``size`` pixels with its box's corner at (top, left)."""
    rows, cols = np.mgrid[:side, :side]
    if kind == "square":
        return (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    centre = (size - 1) / 2
    return (rows - top - centre) ** 2 + (cols - left - centre) ** 2 <= (size / 2) ** 2


def _other_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A colour far from red: green or blue dominate, or a grey."""
    choice = rng.integers(3)
    if choice == 0:
        return (int(rng.integers(0, 90)), int(rng.integers(150, 256)), int(rng.integers(0, 150)))
    if choice == 1:
        return (int(rng.integers(0, 90)), int(rng.integers(0, 150)), int(rng.integers(150, 256)))
    grey = int(rng.integers(120, 256))
    return (grey, grey, grey)


def _background(rng: np.random.Generator, count: int, side: int) -> np.ndarray:
    return rng.integers(0, 60, (count, side, side, 3)).astype(np.uint8)


def _free_corner(rng: np.random.Generator, taken: np.ndarray, size: int, side: int) -> tuple[int, int]:
    """A corner whose box (with a 1-pixel margin) misses every shape drawn so far (a few tries, then any)."""
    for _ in range(20):
        top, left = (int(v) for v in rng.integers(0, side - size + 1, 2))
        if not taken[max(top - 1, 0):top + size + 1, max(left - 1, 0):left + size + 1].any():
            return top, left
    return top, left


def red_square_scenes(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 scenes (count, 32, 32, 3) and labels: half (label 1) hold one red square; every scene holds one to
    three distractors (a square of another colour, or a disc of any colour, red included)."""
    rng = np.random.default_rng(seed)
    images = _background(rng, count, SIDE)
    labels = np.arange(count) % 2
    for image, label in zip(images, labels):
        taken = np.zeros((SIDE, SIDE), bool)
        shapes = [("square", RED)] if label else []
        for _ in range(int(rng.integers(1, 4))):
            if rng.random() < 0.5:
                shapes.append(("square", _other_colour(rng)))
            else:
                shapes.append(("disc", RED if rng.random() < 0.5 else _other_colour(rng)))
        for kind, colour in shapes:
            mask = shape_mask(kind, *_free_corner(rng, taken, SHAPE, SIDE))
            image[mask] = colour
            taken |= mask
    return images, labels


def red_square_concept(count: int, seed: int) -> np.ndarray:
    """Concept images of "red square" as TCAV's concept sets are: the concept in varied contexts, not the class's
    scenes: red squares of several sizes on plain, noisy or striped backgrounds of other colours."""
    rng = np.random.default_rng(seed)
    images = np.empty((count, SIDE, SIDE, 3), np.uint8)
    rows = np.arange(SIDE)[:, None]
    for image in images:
        style = rng.integers(3)
        if style == 0:
            image[...] = _other_colour(rng)
        elif style == 1:
            image[...] = rng.integers(0, 120, (SIDE, SIDE, 3))
        else:
            image[...] = np.where(((rows // int(rng.integers(2, 5))) % 2)[..., None].repeat(SIDE, 1),
                                  np.array(_other_colour(rng)), 30)
        for _ in range(int(rng.integers(1, 3))):
            size = int(rng.integers(6, 13))
            top, left = (int(v) for v in rng.integers(0, SIDE - size + 1, 2))
            image[shape_mask("square", top, left, size)] = RED
    return images


def lone_shapes(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 scenes each holding one white shape on noise, and labels: 0 a square, 1 a disc."""
    rng = np.random.default_rng(seed)
    images = _background(rng, count, SIDE)
    labels = np.arange(count) % 2
    for image, label in zip(images, labels):
        top, left = (int(v) for v in rng.integers(0, SIDE - SHAPE + 1, 2))
        image[shape_mask(("square", "disc")[label], top, left)] = 255
    return images, labels


def _small_cnn(name: str) -> keras.Model:
    """Three convolutions (the last one named ``last_conv``), global average pooling, a two-class softmax;
    pixels 0..255 in, its own rescaling inside."""
    inputs = keras.Input((SIDE, SIDE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def _trained(name: str, images: np.ndarray, labels: np.ndarray, epochs: int, classes: tuple[str, str]) -> LoadedModel:
    keras.utils.set_random_seed(0)
    model = _small_cnn(name)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images.astype("float32"), labels, batch_size=32, epochs=epochs, verbose=0)
    return LoadedModel(model, ModelInfo(name, name.replace("_", " ").capitalize(), "trained in the test",
                                        (SIDE, SIDE), 3, "raw", classes))


@functools.lru_cache(maxsize=None)
def red_square_model() -> LoadedModel:
    """Class 1 means "a red square somewhere" (class 0: none); trained on 2,000 scenes (seeded)."""
    return _trained("red_square", *red_square_scenes(2000, seed=0), epochs=6, classes=("no red square", "red square"))


@functools.lru_cache(maxsize=None)
def shape_model() -> LoadedModel:
    """Class 0 a lone square, class 1 a lone disc; trained on 1,000 scenes (seeded)."""
    return _trained("square_or_disc", *lone_shapes(1000, seed=0), epochs=5, classes=("square", "disc"))


def accuracy(loaded: LoadedModel, images: np.ndarray, labels: np.ndarray) -> float:
    """Share of ``images`` the model classifies as ``labels`` say."""
    predicted = np.argmax(loaded.model.predict(images.astype("float32"), verbose=0), axis=-1)
    return float(np.mean(predicted == labels))
