"""Make the ``keras.applications`` fixtures that ``tests/test_keras_applications.py`` reads, with real Keras 3.

Run in the virtual environment that has Keras, with convscope installed there too
(``pip install --no-deps -e .``: the export check below needs it):

    KERAS_BACKEND=torch CUDA_VISIBLE_DEVICES="" /work/kvenv/bin/python scripts/make_keras_applications_fixtures.py

Models (all ``weights=None``, seeded; every BatchNormalization gets gamma, beta and moving
statistics that are not the fresh 1 / 0 / 0 / 1, chosen close to the statistics the layer
really sees so that activations stay of order one through 50-120 normalizations; Dense heads
are scaled so that the outputs are far from uniform):

* committed to ``tests/fixtures/applications/`` (each file a few MB at most):
  ``mobilenetv2`` (alpha 0.35, 96x96x3, 10 classes), ``transfer`` (a frozen MobileNetV2 base,
  ``include_top=False, pooling="avg"``, in a Sequential under a new Dense head, as in Keras's
  transfer-learning guide), ``two_in_two_out`` (a functional model with two inputs, two outputs
  and a layer shared by both branches) and ``efficientnet_like`` (EfficientNet's layer kinds in
  a small file);
* written to the cache folder ``$CONVSCOPE_APPLICATIONS_CACHE`` (default
  ``~/.cache/convscope-applications``), too large to commit: ``efficientnetb0`` (64x64),
  ``resnet50`` (64x64), ``densenet121`` (64x64).

For each model NAME, next to ``NAME.keras``:

* ``NAME.npz``: ``x`` (or ``x0``, ``x1`` for several inputs; 3 inputs), Keras's outputs ``y``
  (``y0``, ``y1``), ``exported`` (``exported0``, ...): what real Keras predicts after loading
  convscope's ``save_keras`` export of the file (absent when convscope could not read it), and
  every layer call's output under ``layer/CALL`` (CALL as ``model.trace`` labels it: ``name``, or
  ``name#k`` for the k-th call of a shared layer). For the applications the layer outputs are
  too large to keep whole: ``layer/CALL`` then holds the values at 2,048 positions drawn once
  per layer (flat indices into the whole batch) in ``index/CALL``;
* ``NAME.json``: Keras's summary totals (the "Total / Trainable / Non-trainable params" lines
  and their counts), the number of layers, and each top-level layer's ``trainable`` flag.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras.src.ops.function import make_node_key  # noqa: E402 -- which of a layer's calls a graph holds

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "tests" / "fixtures" / "applications"
CACHE = Path(os.environ.get("CONVSCOPE_APPLICATIONS_CACHE", Path.home() / ".cache" / "convscope-applications"))
SAMPLES = 3
SAMPLED_POSITIONS = 2048


# ----------------------------------------------------------------------------------------- models
def mobilenetv2():
    return keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10)


def efficientnetb0():
    return keras.applications.EfficientNetB0(input_shape=(64, 64, 3), weights=None, classes=10)


def resnet50():
    return keras.applications.ResNet50(input_shape=(64, 64, 3), weights=None, classes=10)


def densenet121():
    return keras.applications.DenseNet121(input_shape=(64, 64, 3), weights=None, classes=10)


def transfer():
    base = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, include_top=False, pooling="avg",
                                          weights=None)
    base.trainable = False
    return keras.Sequential([keras.Input(shape=(96, 96, 3)), base, keras.layers.Dropout(0.2),
                             keras.layers.Dense(10, activation="softmax", name="head")], name="transfer")


def two_in_two_out():
    image = keras.Input(shape=(12, 12, 3), name="image")
    other = keras.Input(shape=(12, 12, 3), name="other")
    shared = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="shared_conv")
    a = keras.layers.BatchNormalization(name="bn_a")(shared(image))
    b = shared(other)
    a = keras.layers.GlobalAveragePooling2D(name="pool_a")(a)
    b = keras.layers.GlobalMaxPooling2D(name="pool_b")(b)
    both = keras.layers.Concatenate(name="concat")([a, b])
    classes = keras.layers.Dense(5, activation="softmax", name="classes")(both)
    score = keras.layers.Dense(1, name="score")(keras.layers.Subtract(name="difference")([a, b]))
    return keras.Model([image, other], [classes, score], name="two_in_two_out")


def efficientnet_like():
    """Rescaling, Normalization, a swish stem, an MBConv block with its squeeze-excite (GlobalAveragePooling2D,
    Reshape to 1x1, a broadcasting Multiply, as keras.applications.EfficientNet writes it), Dropout(noise_shape), Add."""
    inputs = keras.Input(shape=(16, 16, 3))
    x = keras.layers.Rescaling(1.0 / 255.0)(inputs)
    x = keras.layers.Normalization(mean=[0.485, 0.456, 0.406], variance=[0.052, 0.050, 0.051])(x)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.Activation("swish", name="stem_activation")(x)
    shortcut = x
    x = keras.layers.Conv2D(16, 1, padding="same", use_bias=False, name="expand_conv")(x)
    x = keras.layers.BatchNormalization(name="expand_bn")(x)
    x = keras.layers.Activation("swish", name="expand_activation")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dwconv")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Activation("swish", name="activation")(x)
    se = keras.layers.GlobalAveragePooling2D(name="se_squeeze")(x)
    se = keras.layers.Reshape((1, 1, 16), name="se_reshape")(se)
    se = keras.layers.Conv2D(4, 1, activation="swish", name="se_reduce")(se)
    se = keras.layers.Conv2D(16, 1, activation="sigmoid", name="se_expand")(se)
    x = keras.layers.Multiply(name="se_excite")([x, se])
    x = keras.layers.Conv2D(8, 1, padding="same", use_bias=False, name="project_conv")(x)
    x = keras.layers.BatchNormalization(name="project_bn")(x)
    x = keras.layers.Dropout(0.2, noise_shape=(None, 1, 1, 1), name="drop")(x)
    x = keras.layers.Add(name="add")([x, shortcut])
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dropout(0.2, name="top_dropout")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="efficientnet_like")


# name -> (builder, committed, input range, whole layer outputs kept)
MODELS = {
    "mobilenetv2": (mobilenetv2, True, (-1.0, 1.0), False),
    "transfer": (transfer, True, (-1.0, 1.0), True),
    "two_in_two_out": (two_in_two_out, True, (0.0, 1.0), True),
    "efficientnet_like": (efficientnet_like, True, (0.0, 255.0), True),
    "efficientnetb0": (efficientnetb0, False, (0.0, 255.0), False),
    "resnet50": (resnet50, False, (-120.0, 150.0), False),
    "densenet121": (densenet121, False, (-2.0, 2.0), False),
}


# ---------------------------------------------------------------------------------- weights
def all_layers(model):
    """Every layer, nested models' layers included, in graph order."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)


def owner_model(model, layer):
    """The (possibly nested) functional model whose graph holds ``layer``."""
    for inner in model.layers:
        if inner is layer:
            return model
        if isinstance(inner, keras.Model):
            found = owner_model(inner, layer)
            if found is not None:
                return found
    return None


def calibrate(model, x, rng) -> None:
    """Give unadapted Normalization layers image-like statistics, then each BatchNormalization (in graph order)
    statistics near those of its real input (shifted, rescaled at random), gamma in [0.5, 1.5], beta of spread 0.1;
    scale the last Dense kernel so that its outputs spread over a few units."""
    # First, so that the batch norms below are fitted to what these layers pass on.
    for layer in all_layers(model):
        if isinstance(layer, keras.layers.Normalization) and layer.weights:  # an unadapted one: 0 / 1 otherwise
            mean = rng.uniform(0.3, 0.6, layer.adapt_mean.shape).astype("float32")
            variance = rng.uniform(0.04, 0.09, mean.shape).astype("float32")
            layer.set_weights([mean, variance, np.zeros((), dtype="int64")][:len(layer.weights)])
    batch_norms = [layer for layer in all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in batch_norms:
        owner = owner_model(model, layer)
        feed = x  # a nested base here is always the outer model's first layer: it reads the model's input
        seen = np.asarray(keras.Model(owner.inputs, layer.input).predict(feed, verbose=0), dtype="float64")
        axes = tuple(range(seen.ndim - 1))
        mean, std = seen.mean(axis=axes), seen.std(axis=axes)
        # A channel that hardly varies (a dead ReLU's) would divide by sqrt(~0 + eps) and turn float32 rounding,
        # Keras's as much as convscope's, into 1e-4 differences: floor its spread at a tenth of the typical one.
        std = np.maximum(std, 0.1 * np.median(std) + 1e-3)
        shape = mean.shape
        gamma = rng.uniform(0.5, 1.5, shape)
        beta = rng.normal(0.0, 0.1, shape)
        moving_mean = mean + 0.2 * std * rng.standard_normal(shape)
        moving_variance = std**2 * rng.uniform(0.5, 2.0, shape)
        layer.set_weights([w.astype("float32") for w in (gamma, beta, moving_mean, moving_variance)])
    for head in [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]:
        kernel, *rest = head.get_weights()
        before = np.asarray(keras.Model(model.inputs, head.input).predict(x, verbose=0))
        spread = (before @ kernel).std() + 1e-6
        bias = rest and [rng.normal(0.0, 0.3, rest[0].shape).astype("float32")]
        head.set_weights([(kernel * 2.0 / spread).astype("float32"), *bias])


# ---------------------------------------------------------------------------------- references
def reference_inputs(model, low, high, rng):
    return [rng.uniform(low, high, (SAMPLES, *t.shape[1:])).astype("float32") for t in model.inputs]


def layer_calls(model):
    """(label, output tensor) for every call of every top-level layer, labelled as ``model.trace`` labels it."""
    calls = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        # A layer reused elsewhere (a base model called in another graph) keeps that graph's nodes too.
        graph = getattr(model, "_functional", model)  # a Sequential runs as a Functional inside
        nodes = [n for i, n in enumerate(layer._inbound_nodes) if make_node_key(layer, i) in graph._nodes]
        for k, node in enumerate(nodes):
            label = layer.name if len(nodes) == 1 else f"{layer.name}#{k}"
            outputs = node.output_tensors
            calls.append((label, outputs[0] if len(outputs) == 1 else outputs))
    return calls


def summary_totals(model) -> dict:
    text = io.StringIO()
    model.summary(print_fn=lambda line, *a, **k: text.write(line + "\n"))
    lines = [line.strip() for line in text.getvalue().splitlines() if re.match(r"\s*(Total|Trainable|Non-trainable) params", line)]
    counts = {line.split(" params")[0].lower().replace("-", "_"): int(re.search(r"params: ([\d,]+)", line)[1].replace(",", ""))
              for line in lines}
    return {"lines": lines, **counts}


def exported_by_convscope(path: Path, xs) -> list | None:
    """What real Keras predicts after convscope reads ``path`` and writes it back with ``save_keras``; None if it can't."""
    import convscope

    try:
        model = convscope.load_model(path, compile=False)
        with tempfile.TemporaryDirectory() as out:
            export = Path(out) / path.name
            model.save_keras(export)
            back = keras.models.load_model(export, compile=False)
            ys = back.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    except Exception as error:  # noqa: BLE001 -- report, and make the others
        print(f"  convscope round trip failed: {type(error).__name__}: {error}"[:400])
        return None
    return ys if isinstance(ys, list) else [ys]


def make(name: str, rng) -> None:
    builder, committed, (low, high), whole = MODELS[name]
    out = COMMITTED if committed else CACHE
    out.mkdir(parents=True, exist_ok=True)
    model = builder()
    xs = reference_inputs(model, low, high, rng)
    calibrate(model, xs if len(xs) > 1 else xs[0], rng)
    feed = xs if len(xs) > 1 else xs[0]
    calls = layer_calls(model)
    flat = [(label, t) for label, t in calls if not isinstance(t, list)]
    probe = keras.Model(model.inputs, [t for _, t in flat])
    values = probe.predict(feed, verbose=0)
    ys = model.predict(feed, verbose=0)
    ys = ys if isinstance(ys, list) else [ys]
    path = out / f"{name}.keras"
    model.save(path)
    arrays = {("x" if len(xs) == 1 else f"x{i}"): x for i, x in enumerate(xs)}
    arrays.update({("y" if len(ys) == 1 else f"y{i}"): np.asarray(y) for i, y in enumerate(ys)})
    for (label, _), value in zip(flat, values):
        value = np.asarray(value)
        if whole:
            arrays[f"layer/{label}"] = value
        else:
            index = rng.choice(value.size, size=min(SAMPLED_POSITIONS, value.size), replace=False).astype("int32")
            arrays[f"index/{label}"], arrays[f"layer/{label}"] = index, value.reshape(-1)[index]
    exported = exported_by_convscope(path, xs)
    if exported is not None:
        arrays.update({("exported" if len(ys) == 1 else f"exported{i}"): np.asarray(e) for i, e in enumerate(exported)})
        diff = max(float(np.abs(np.asarray(e) - y).max()) for e, y in zip(exported, ys))
        print(f"  Keras reads convscope's export: max |diff| = {diff:.3g}")
    np.savez_compressed(out / f"{name}.npz", **arrays)
    info = {
        "summary": summary_totals(model),
        "layers": len(model.layers),
        "all_layers": sum(1 for _ in all_layers(model)),
        "trainable": {layer.name: layer.trainable for layer in all_layers(model)},
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
    }
    (out / f"{name}.json").write_text(json.dumps(info, indent=1) + "\n")
    for p in (path, out / f"{name}.npz", out / f"{name}.json"):
        print(f"  {p}: {p.stat().st_size:,} bytes")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(MODELS), help=f"which models (default all: {', '.join(MODELS)})")
    args = parser.parse_args(argv)
    for name in args.names:
        print(name)
        seed = list(MODELS).index(name)  # each model the same whichever others are made
        keras.utils.set_random_seed(seed)
        make(name, np.random.default_rng(seed))


if __name__ == "__main__":
    main()
