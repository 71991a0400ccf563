"""Make ``tests/fixtures/keras/{new,old}_layers.*``: Keras 3 Sequential models that, between them, hold
every single-input layer type convscope reads, for ``tests/test_interop_keras_layers.py``.

Run in a separate virtual environment that has Keras (the tests themselves never need it):

    python3 -m venv /tmp/kvenv && /tmp/kvenv/bin/pip install torch==2.13.0 keras==3.15.1 h5py numpy
    KERAS_BACKEND=torch /tmp/kvenv/bin/python scripts/make_keras_sequential_fixtures.py

The model (``new_layers``, 6x6x3 images -> 4 linear outputs) has Normalization adapted to data and
Normalization with a given mean / variance (inverted), ZeroPadding2D and Cropping2D with unequal
pads, DepthwiseConv2D (depth multiplier 2, relu6), LayerNormalization, SeparableConv2D (hard_silu),
bilinear UpSampling2D, Conv2DTranspose (stride 2, "same"), LeakyReLU, Activation("hard_sigmoid"),
Permute, Reshape, Softmax over a middle axis and GlobalMaxPooling2D. The model ``old_layers``
(12x12x3 -> 5) holds the layer types read before (Rescaling per channel, Conv2D with strides,
dilation, groups and no bias, BatchNormalization without center, Activation, AveragePooling2D,
ReLU(6), MaxPooling2D, GlobalAveragePooling2D, Dropout, Dense) as a Sequential. Every weight is
random (gamma and variances positive), none at Keras's initial 0 / 1. Writes to ``tests/fixtures/keras/``:

* ``new_layers.keras`` / ``old_layers.keras`` (Keras 3 archives) and ``new_layers.h5`` /
  ``old_layers.h5`` (the legacy HDF5 full-model format);
* ``sequential_inputs.npz``: ``<model>/x``, float32 inputs (64 for ``new_layers``: images whose
  channels have very different means and spreads, so that a normalization over the wrong axis
  shows; 32 for ``old_layers``), and ``<model>/y``, Keras's predictions.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the reference numbers come from the CPU

import keras  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "keras"
SHAPE = (6, 6, 3)
SPREAD = np.array([0.5, 2.0, 5.0], dtype="float32")
OFFSET = np.array([-1.0, 3.0, 10.0], dtype="float32")


def images(rng, n: int) -> np.ndarray:
    return (rng.standard_normal((n, *SHAPE)) * SPREAD + OFFSET).astype("float32")


def new_layers_model(adapt_data: np.ndarray) -> keras.Sequential:
    L = keras.layers
    normalization = L.Normalization(axis=-1)
    normalization.adapt(adapt_data)
    return keras.Sequential([
        keras.Input(shape=SHAPE),
        normalization,
        L.Normalization(mean=[0.5, -0.5, 1.0], variance=[2.0, 0.5, 1.0], invert=True),
        L.ZeroPadding2D(((1, 2), (0, 1))),                                               # 9 x 7 x 3
        L.DepthwiseConv2D(3, depth_multiplier=2, activation="relu6"),                    # 7 x 5 x 6
        L.LayerNormalization(),
        L.SeparableConv2D(8, 3, padding="same", depth_multiplier=2, activation="hard_silu"),
        L.UpSampling2D((2, 1), interpolation="bilinear"),                                 # 14 x 5 x 8
        L.Cropping2D(((1, 2), (0, 1))),                                                   # 11 x 4 x 8
        L.Conv2DTranspose(4, 3, strides=2, padding="same"),                               # 22 x 8 x 4
        L.LeakyReLU(negative_slope=0.2),
        L.Activation("hard_sigmoid"),
        L.Permute((2, 1, 3)),                                                             # 8 x 22 x 4
        L.Reshape((8, 88)),
        L.Softmax(axis=1),
        L.Reshape((4, 2, 88)),
        L.GlobalMaxPooling2D(),
        L.Dense(4),
    ], name="new_layers")


def old_layers_model() -> keras.Sequential:
    L = keras.layers
    return keras.Sequential([
        keras.Input(shape=(12, 12, 3)),
        L.Rescaling([0.5, 1.0, 2.0], offset=-0.5),
        L.Conv2D(8, 3, strides=2, padding="same", use_bias=False),                        # 6 x 6 x 8
        L.BatchNormalization(center=False),
        L.Activation("tanh"),
        L.Conv2D(8, 3, padding="same", dilation_rate=2, groups=2, activation="selu"),
        # Symmetric padding: Keras's torch backend counts the padding of an asymmetric "same" average pooling.
        L.AveragePooling2D(3, strides=1, padding="same"),
        L.ReLU(max_value=6.0),
        L.MaxPooling2D(2, padding="same"),                                                # 3 x 3 x 8
        L.GlobalAveragePooling2D(),
        L.Dropout(0.3),
        L.Dense(5),
    ], name="old_layers")


def randomize(model: keras.Model, rng) -> None:
    """Random weights of Keras's shapes for every layer but the adapted Normalization."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Normalization) or not layer.weights:
            continue
        weights = []
        for variable, value in zip(layer.weights, layer.get_weights()):
            if variable.name in ("gamma", "moving_variance"):
                weights.append(rng.uniform(0.5, 1.5, value.shape).astype(value.dtype))
            else:
                weights.append((0.5 * rng.standard_normal(value.shape)).astype(value.dtype))
        layer.set_weights(weights)


def main() -> None:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(20240611)
    OUT.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for model, x in ((new_layers_model(images(rng, 256)), images(rng, 64)),
                     (old_layers_model(), rng.uniform(0.0, 1.0, (32, 12, 12, 3)).astype("float32"))):
        randomize(model, rng)
        y = model.predict(x, verbose=0)
        model.save(OUT / f"{model.name}.keras")
        model.save(OUT / f"{model.name}.h5")
        arrays.update({f"{model.name}/x": x, f"{model.name}/y": y})
        print(f"{model.name}: Keras {keras.__version__} ({keras.backend.backend()}); "
              f"output std over inputs {y.std(axis=0)}")
    np.savez_compressed(OUT / "sequential_inputs.npz", **arrays)
    for path in sorted([*OUT.glob("*_layers.*"), OUT / "sequential_inputs.npz"]):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
