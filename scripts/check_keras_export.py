"""Check that Keras 3 loads convscope's ``.keras`` exports and predicts what convscope predicts.

Needs Keras, so it runs in its own virtual environment (as ``make_keras_fixtures.py``):

    KERAS_BACKEND=torch /tmp/kvenv/bin/python scripts/check_keras_export.py [MODEL.convscope ...]

For each model file given (default: ``runs/mnist-full/model.convscope`` when present) and for
a built-in model with every layer type convscope exports (same padding, strides, dilation,
groups, average pooling, batch normalization with moving statistics, Rescaling, ReLU(6),
global pooling, tanh / selu / softmax), it writes ``model.save_keras(...)``, loads the file
with ``keras.models.load_model`` and prints the largest difference between the two
predictions on 1,000 inputs (MNIST test images for 28x28x1 models). Exits 1 if any is 1e-5 or more.
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


def compare(model, x, out_dir: Path) -> float:
    path = out_dir / f"{model.name}.keras"
    model.save_keras(path)
    theirs = keras.models.load_model(path).predict(x, verbose=0)
    ours = model.predict(x)
    return float(np.abs(np.asarray(theirs) - ours).max())


def main(argv: list[str]) -> int:
    paths = argv or [p for p in [str(ROOT / "runs" / "mnist-full" / "model.convscope")] if os.path.exists(p)]
    (_, _), (x_test, _) = mnist.load_data(ROOT.parent / "shared" / "data" / "mnist")
    x = x_test[:1000, ..., None].astype("float32") / 255.0
    models = [convscope.load_model(p) for p in paths] + [every_layer_model()]
    worst = 0.0
    with tempfile.TemporaryDirectory() as out:
        for model in models:
            diff = compare(model, x, Path(out))
            worst = max(worst, diff)
            print(f"{model.name}: Keras {keras.__version__} ({keras.backend.backend()}) loads the export; "
                  f"max |Keras - convscope| over {len(x)} inputs = {diff:.3g}")
    return 0 if worst < TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
