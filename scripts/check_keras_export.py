"""Check that Keras 3 loads convscope's ``.keras`` exports and predicts what convscope predicts.

Needs Keras, so it runs in its own virtual environment (as ``make_keras_fixtures.py``):

    KERAS_BACKEND=torch /tmp/kvenv/bin/python scripts/check_keras_export.py [MODEL.convscope ...]

For each model file given (default: ``runs/mnist-full/model.convscope`` when present), for
a built-in model with the first layer types convscope exported (same padding, strides, dilation,
groups, average pooling, batch normalization with moving statistics, Rescaling, ReLU(6),
global pooling, tanh / selu / softmax), for a built-in model with every single-input layer type
added with the graph engine (the architecture of ``tests/fixtures/keras/new_layers.keras``, built
in convscope with random weights and an adapted Normalization) and for the Keras-written fixtures
``new_layers``, ``old_layers`` and ``mnist_convnet.keras`` read by convscope, it writes
``model.save_keras(...)``, loads the file with ``keras.models.load_model`` and prints the largest
difference between the two predictions on 1,000 inputs (MNIST test images for 28x28x1 models,
random images otherwise). Exits 1 if any is 1e-5 or more, or if some single-input layer type
of ``keras_config.KERAS_MAPPINGS`` is in none of these models.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))  # convscope itself needs NumPy (and h5py to write .keras)

import convscope  # noqa: E402
from convscope import layers  # noqa: E402
from convscope.datasets import mnist  # noqa: E402
from convscope.interop.keras_config import KERAS_MAPPINGS  # noqa: E402
from convscope.layers.conv_variants import Conv2DTranspose, DepthwiseConv2D, SeparableConv2D  # noqa: E402
from convscope.layers.normalization import LayerNormalization  # noqa: E402
from convscope.layers.preprocessing import Normalization  # noqa: E402
from convscope.layers.resampling import UpSampling2D  # noqa: E402
from convscope.layers.reshaping import Cropping2D, Permute, Reshape, ZeroPadding2D  # noqa: E402

TOLERANCE = 1e-5


def every_layer_model() -> convscope.Sequential:
    """Every exported layer type, with non-trivial weights and batch-norm statistics."""
    model = convscope.Sequential([
        convscope.Input(shape=(28, 28, 1)),
        layers.Rescaling(2.0, offset=-1.0),
        layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False),
        layers.BatchNormalization(),
        layers.Activation("tanh"),
        layers.Conv2D(16, 3, padding="same", dilation_rate=2, activation="selu"),
        # Symmetric padding (14 -> 14): Keras's torch backend counts edge copies in an asymmetric
        # "same" average pooling, where TensorFlow, JAX and convscope leave the padding out.
        layers.AveragePooling2D(3, strides=1, padding="same"),
        layers.Conv2D(16, 3, padding="same", groups=16, activation="relu"),
        layers.ReLU(max_value=6.0),
        layers.MaxPooling2D(3, strides=2, padding="same"),
        layers.GlobalMaxPooling2D(),
        layers.Dropout(0.3),
        layers.Dense(10, activation="softmax"),
    ], name="every_layer")
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0.0, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.moving_variance.value = rng.uniform(0.5, 2.0, layer.moving_variance.shape).astype("float32")
    return model


def new_layers_model() -> convscope.Sequential:
    """Every single-input layer type of the graph engine, as in ``make_keras_sequential_fixtures.py``."""
    rng = np.random.default_rng(1)
    normalization = Normalization(axis=-1)
    normalization.adapt(small_images(rng, 256))
    model = convscope.Sequential([
        convscope.Input(shape=(6, 6, 3)),
        normalization,
        Normalization(mean=[0.5, -0.5, 1.0], variance=[2.0, 0.5, 1.0], invert=True),
        ZeroPadding2D(((1, 2), (0, 1))),
        DepthwiseConv2D(3, depth_multiplier=2, activation="relu6"),
        LayerNormalization(),
        SeparableConv2D(8, 3, padding="same", depth_multiplier=2, activation="hard_silu"),
        UpSampling2D((2, 1), interpolation="bilinear"),
        Cropping2D(((1, 2), (0, 1))),
        Conv2DTranspose(4, 3, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Activation("hard_sigmoid"),
        Permute((2, 1, 3)),
        Reshape((8, 88)),
        layers.Softmax(axis=1),
        Reshape((4, 2, 88)),
        layers.GlobalMaxPooling2D(),
        layers.Dense(4),
    ], name="new_layers")
    for layer in model.layers[1:]:  # the adapted Normalization keeps its statistics
        for p in layer.parameters:
            gamma = p.name.endswith("gamma")  # a positive scale, as training leaves it
            value = rng.uniform(0.5, 1.5, p.shape) if gamma else rng.normal(0.0, 0.5, p.shape)
            p.value = value.astype(p.value.dtype)
    return model


def small_images(rng, n: int) -> np.ndarray:
    """6x6x3 float32 images whose channels have very different means and spreads."""
    return (rng.standard_normal((n, 6, 6, 3)) * [0.5, 2.0, 5.0] + [-1.0, 3.0, 10.0]).astype("float32")


def compare(model, x, out_dir: Path) -> float:
    path = out_dir / f"{model.name}.keras"
    model.save_keras(path)
    theirs = keras.models.load_model(path).predict(x, verbose=0)
    ours = model.predict(x)
    return float(np.abs(np.asarray(theirs) - ours).max())


def main(argv: list[str]) -> int:
    paths = argv or [p for p in [str(ROOT / "runs" / "mnist-full" / "model.convscope")] if os.path.exists(p)]
    (_, _), (x_test, _) = mnist.load_data(ROOT.parent / "shared" / "data" / "mnist")
    mnist_x = x_test[:1000, ..., None].astype("float32") / 255.0
    fixtures = [convscope.load_model(ROOT / "tests" / "fixtures" / "keras" / f"{name}.keras")
                for name in ("new_layers", "old_layers", "mnist_convnet")]
    for model in fixtures:
        model.name += "_from_keras"
    models = [convscope.load_model(p) for p in paths] + [every_layer_model(), new_layers_model(), *fixtures]
    inputs = {(28, 28, 1): mnist_x, (6, 6, 3): small_images(np.random.default_rng(2), 1000),
              (12, 12, 3): np.random.default_rng(3).uniform(0, 1, (1000, 12, 12, 3)).astype("float32")}
    worst = 0.0
    with tempfile.TemporaryDirectory() as out:
        for model in models:
            x = inputs[model.input_shape[1:]]
            diff = compare(model, x, Path(out))
            worst = max(worst, diff)
            print(f"{model.name}: Keras {keras.__version__} ({keras.backend.backend()}) loads the export; "
                  f"max |Keras - convscope| over {len(x)} inputs = {diff:.3g}")
    exported = {type(layer) for model in models for layer in model.layers}
    single_input = {cls for cls, m in KERAS_MAPPINGS.items() if not (m.merges or m.model_level)}
    missing = sorted(cls.__name__ for cls in single_input - exported)
    print(f"single-input layer types of KERAS_MAPPINGS exported: {len(single_input & exported)} of {len(single_input)}"
          + (f"; missing {', '.join(missing)}" if missing else ""))
    return 0 if worst < TOLERANCE and not missing else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
