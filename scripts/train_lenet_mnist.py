"""Train the shipped LeNet on the MNIST train split and save it next to its module.

Run from the repository root: python scripts/train_lenet_mnist.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # so the script runs without installing the package

from convvis_core.datasets.mnist import mnist_split  # noqa: E402
from convvis_core.models import lenet_mnist  # noqa: E402

EPOCHS = 25
BATCH_SIZE = 64
# Small random shifts (up to ~3 px) and rotations (up to ~10 degrees): cheap augmentation
# that helps with only 4,000 training images.
SHIFT = 0.1
ROTATION = 0.03


def to_input(images: np.ndarray) -> np.ndarray:
    """Scale uint8 (N, 28, 28) images to the float (N, 28, 28, 1) input in [0, 1] the model expects."""
    return (images.astype("float32") / 255.0)[..., None]


def main() -> None:
    """Train on the train split only, report held-out accuracy, save without optimizer state."""
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_held, y_held) = mnist_split()
    x_train, x_held = to_input(x_train), to_input(x_held)

    model = lenet_mnist.build_lenet()
    # Augmentation lives in a wrapper so the saved model holds only the LeNet layers.
    trainer = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.RandomRotation(ROTATION, fill_mode="constant", seed=0),
            keras.layers.RandomTranslation(SHIFT, SHIFT, fill_mode="constant", seed=1),
            model,
        ]
    )
    trainer.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    trainer.fit(
        x_train,
        y_train,
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        shuffle=True,
        verbose=2,
        callbacks=[keras.callbacks.LearningRateScheduler(lambda epoch: 1e-3 * 0.9**epoch)],
    )
    elapsed = time.perf_counter() - start

    predicted = model.predict(x_held, batch_size=256, verbose=0).argmax(axis=1)
    accuracy = float((predicted == y_held).mean())
    print(f"training time: {elapsed:.1f} s")
    print(f"held-out accuracy: {accuracy:.4f} ({len(y_held)} images)")

    model.save(lenet_mnist.WEIGHTS_FILE, include_optimizer=False)
    size_mb = lenet_mnist.WEIGHTS_FILE.stat().st_size / 1e6
    print(f"saved {lenet_mnist.WEIGHTS_FILE} ({size_mb:.2f} MB)")


if __name__ == "__main__":
    main()
