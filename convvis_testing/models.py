"""Small real models made in seconds for tests and benches: a copy of a loaded model fine-tuned with chosen
layers frozen (so what changed is known in advance), and a one-convolution model of any input size."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from convvis_core.models.base import LoadedModel


def copy_model(loaded: LoadedModel, note: str) -> LoadedModel:
    """An independent copy (same weights) under another key, so caches tell the two apart."""
    model = keras.models.clone_model(loaded.model)
    model.set_weights(loaded.model.get_weights())
    return LoadedModel(model, dataclasses.replace(loaded.info, key=f"{loaded.info.key}-{note}"))


def fine_tune(loaded: LoadedModel, images: np.ndarray, labels: np.ndarray, frozen: tuple[str, ...], epochs: int) -> None:
    """Train a grayscale digit model in place on uint8 ``images`` (seeded), every layer named in ``frozen`` left as it was."""
    for layer in loaded.model.layers:
        layer.trainable = layer.name not in frozen
    loaded.model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    keras.utils.set_random_seed(0)
    loaded.model.fit(images.astype("float32")[..., None] / 255.0, labels, batch_size=64, epochs=epochs, verbose=0)


def one_conv_model(size: int, name: str) -> keras.Model:
    """A size × size grayscale classifier with a single convolution named ``name``: another input size than LeNet's,
    or no layer at LeNet's paths."""
    inputs = keras.Input((size, size, 1))
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(
        keras.layers.Conv2D(4, 3, name=name)(inputs)))
    return keras.Model(inputs, outputs)
