"""Make the Keras files that ``tests/test_interop_keras.py`` reads, with real Keras 3.

Run in a separate virtual environment that has Keras (the tests themselves never need it):

    python3 -m venv /tmp/kvenv && /tmp/kvenv/bin/pip install torch==2.13.0 keras h5py numpy
    KERAS_BACKEND=torch /tmp/kvenv/bin/python scripts/make_keras_fixtures.py [--mnist ../shared/data/mnist]

Writes ``tests/fixtures/keras/``:

* ``mnist_convnet.keras`` / ``.h5`` (legacy HDF5) / ``.weights.h5``: Keras's MNIST convnet
  (Sequential), trained for two epochs on 10,000 real MNIST training images;
* ``mnist_inputs.npz``: the first 1,000 MNIST test images (uint8) and Keras's probabilities for them;
* ``mixed.keras``: a functional chain on 16x16x3 images with Rescaling, "same" padding,
  strides 2, dilation 2, grouped convolution, no bias, batch normalization (trained, so its
  moving statistics are not the initial 0 / 1), tanh, ReLU(max_value=6), average and max
  pooling with "same" padding, global average pooling;
* ``mixed_inputs.npz``: 1,000 such images (uint8) and Keras's probabilities.

The 16x16x3 images are MNIST digits shrunk to 14x14, framed to 16x16 and tinted with a
random colour over a dim random vertical gradient; the label is the digit.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))  # convscope's IDX reader needs NumPy alone

from convscope.datasets import mnist  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "keras"
SAMPLES = 1000


def mnist_convnet() -> keras.Model:
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax"),
    ])


def mixed() -> keras.Model:
    inputs = keras.Input(shape=(16, 16, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x)  # 16 -> 8, pads (0, 1)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("tanh")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", dilation_rate=2, activation="tanh")(x)
    # Symmetric padding here: Keras's torch backend pads an asymmetric "same" average pooling by
    # repeating edge cells and counts them, where TensorFlow, JAX and convscope leave padding out.
    x = keras.layers.AveragePooling2D(pool_size=3, strides=1, padding="same")(x)  # 8 -> 8, pads (1, 1)
    x = keras.layers.Conv2D(16, 3, padding="same", groups=4)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU(max_value=6.0)(x)
    x = keras.layers.MaxPooling2D(pool_size=3, strides=2, padding="same")(x)  # 8 -> 4, pads (0, 1)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="mixed")


def tinted(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, 28, 28) uint8 digits -> (n, 16, 16, 3) uint8 pictures."""
    small = images.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4)) / 255.0
    framed = np.pad(small, ((0, 0), (1, 1), (1, 1)))[..., None]
    colour = rng.uniform(0.4, 1.0, (len(images), 1, 1, 3))
    background = rng.uniform(0.0, 0.25, (len(images), 1, 1, 3)) * np.linspace(0.5, 1.0, 16)[:, None, None]
    return np.round(255 * np.maximum(framed * colour, background)).astype(np.uint8)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, default=ROOT.parent / "shared" / "data" / "mnist")
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    (x_train, y_train), (x_test, _) = mnist.load_data(args.mnist)
    OUT.mkdir(parents=True, exist_ok=True)

    model = mnist_convnet()
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x_train[:10000, ..., None] / 255.0, y_train[:10000], batch_size=128, epochs=2, verbose=2)
    x = x_test[:SAMPLES]
    probabilities = model.predict(x[..., None].astype("float32") / 255.0, verbose=0)
    model.save(OUT / "mnist_convnet.keras")
    model.save(OUT / "mnist_convnet.h5")  # Keras 3 still writes the legacy HDF5 full-model format
    model.save_weights(OUT / "mnist_convnet.weights.h5")
    np.savez_compressed(OUT / "mnist_inputs.npz", x=x, probabilities=probabilities)

    model = mixed()
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(tinted(x_train[:5000], rng).astype("float32"), y_train[:5000], batch_size=64, epochs=8, verbose=2)
    x = tinted(x_test[:SAMPLES], rng)
    probabilities = model.predict(x.astype("float32"), verbose=0)
    model.save(OUT / "mixed.keras")
    np.savez_compressed(OUT / "mixed_inputs.npz", x=x, probabilities=probabilities)

    for path in sorted(OUT.iterdir()):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
