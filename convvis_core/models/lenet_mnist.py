"""A small LeNet trained on real MNIST digits, shipped with the package so it works offline."""

from __future__ import annotations

from pathlib import Path

import keras

WEIGHTS_FILE = Path(__file__).with_name("lenet_mnist.keras")


def build_lenet() -> keras.Model:
    """Build the untrained LeNet; ReLU and softmax are separate layers so activations and logits are reachable."""
    inputs = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Conv2D(20, 5, padding="same", name="conv1")(inputs)
    x = keras.layers.Activation("relu", name="conv1_relu")(x)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(50, 5, padding="same", name="conv2")(x)
    x = keras.layers.Activation("relu", name="conv2_relu")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(500, activation="relu", name="fc1")(x)
    x = keras.layers.Dense(10, name="logits")(x)
    outputs = keras.layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="lenet_mnist")


def load_lenet_mnist() -> keras.Model:
    """Load the committed trained model; safe_mode refuses arbitrary code in the file."""
    return keras.models.load_model(WEIGHTS_FILE, compile=False, safe_mode=True)
