"""The README's acceptance check: Keras's "Simple MNIST convnet" trained on real MNIST.

The Keras example (Input (28, 28, 1); Conv2D 32 3x3 relu; MaxPooling2D 2;
Conv2D 64 3x3 relu; MaxPooling2D 2; Flatten; Dropout 0.5; Dense 10 softmax),
Adam and categorical cross-entropy with batch 128, trained 2 epochs on the
first 10,000 training images, must reach at least 93% on the 10,000 test images
(it lands around 94.5% for seeds 0-3). Takes roughly 15-25 s on one CPU core.

The data is read from ``$CONVSCOPE_DATA/mnist`` if that variable is set, else
from ``<repo>/../shared/data/mnist``; the test is skipped when neither holds it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import convscope
from convscope import backend, layers, utils

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def mnist_dir() -> Path:
    root = os.environ.get("CONVSCOPE_DATA")
    if root:
        return Path(root).expanduser() / "mnist"
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


def has_mnist(folder: Path) -> bool:
    return all((folder / name).is_file() or (folder / f"{name}.gz").is_file() for name in FILES)


@pytest.mark.slow
def test_keras_mnist_convnet_reaches_93_percent():
    folder = mnist_dir()
    if not has_mnist(folder):
        pytest.skip(f"full MNIST not found at {folder}")
    from convscope.datasets import mnist

    (x_train, y_train), (x_test, y_test) = mnist.load_data(folder)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    x_train = (x_train[:10000].astype(np.float32) / 255.0)[..., None]
    y_train = utils.to_categorical(y_train[:10000].astype(np.int64), 10)
    x_test = (x_test.astype(np.float32) / 255.0)[..., None]
    y_test = utils.to_categorical(y_test.astype(np.int64), 10)

    state = backend.get_rng_state()
    layers.clear_session()
    utils.set_random_seed(0)
    try:
        model = convscope.Sequential([
            convscope.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ])
        assert model.count_params() == 34826
        model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        history = model.fit(x_train, y_train, batch_size=128, epochs=2, verbose=0)
        loss, accuracy = model.evaluate(x_test, y_test, batch_size=128, verbose=0)
    finally:
        backend.set_rng_state(state)

    assert history.history["loss"][1] < history.history["loss"][0]
    assert np.isfinite(loss)
    assert accuracy >= 0.93, f"test accuracy {accuracy:.4f} after 2 epochs on 10,000 images (loss {loss:.4f})"
