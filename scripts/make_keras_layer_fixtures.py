"""Make ``tests/fixtures/keras/layers.*``, the numbers single Keras 3 layers compute, for
``tests/test_keras_layer_parity.py``.

Run in a separate virtual environment that has Keras (the tests themselves never need it):

    python3 -m venv /tmp/kvenv && /tmp/kvenv/bin/pip install torch==2.13.0 keras==3.15.1 h5py numpy
    KERAS_BACKEND=torch /tmp/kvenv/bin/python scripts/make_keras_layer_fixtures.py

For every case below, one Keras layer is built on a fixed float32 input (batch 2, 5x7 images, 3
channels unless the case needs other sizes), given random weights with ``set_weights`` and called.
Writes ``tests/fixtures/keras/``:

* ``layers.npz``: per case ``<case>/x`` (or ``<case>/x0``, ``<case>/x1``, ... for layers taking
  several inputs), ``<case>/w0``, ``<case>/w1``, ... (Keras's ``get_weights()`` order, after
  ``set_weights`` or ``adapt``), ``<case>/data`` (what ``adapt`` saw, Normalization only) and
  ``<case>/y``;
* ``layers.json``: Keras's version and backend, and per case the class name, the constructor
  kwargs, the input shape(s), the weights' names, shapes and dtypes in ``get_weights()`` order,
  ``get_config()``, and ``"adapt": true`` where the weights come from ``layer.adapt(data)``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the reference numbers come from the CPU

import keras  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "keras"
IMAGE = (5, 7, 3)  # odd, unequal sizes catch swapped axes and off-by-one padding


def image(rng, shape=IMAGE, scale=1.0):
    return (scale * rng.standard_normal((2, *shape))).astype("float32")


def with_ties(rng, base, shape=IMAGE):
    """A second input equal to ``base`` at about a third of the positions (Maximum/Minimum ties)."""
    other = image(rng, shape)
    tie = rng.random(other.shape) < 0.33
    other[tie] = base[tie]
    return other


def breakpoints(rng, low, high, points):
    """Uniform values in [low, high) with the function's breakpoints planted exactly."""
    x = rng.uniform(low, high, (2, *IMAGE)).astype("float32")
    flat = x.reshape(-1)
    flat[: 2 * len(points)] = np.repeat(np.asarray(points, dtype="float32"), 2)
    rng.shuffle(flat)
    return x


def cases(rng):
    """(case, Keras class name, constructor kwargs, inputs, extra) in a fixed order.

    ``inputs`` is one array or a list of arrays; ``extra`` may hold ``data`` for ``adapt``."""
    x = image(rng)
    x2 = with_ties(rng, x)
    x3 = with_ties(rng, x2)
    out = []
    for cls in ("Add", "Multiply", "Average", "Maximum", "Minimum"):
        snake = cls.lower()
        out.append((f"{snake}_2", cls, {}, [x, x2], {}))
        out.append((f"{snake}_3", cls, {}, [x, x2, x3], {}))
    out.append(("subtract", "Subtract", {}, [x, x2], {}))
    out.append(("concatenate_channels", "Concatenate", {"axis": -1}, [x, image(rng, (5, 7, 2))], {}))
    out.append(("concatenate_rows", "Concatenate", {"axis": 1}, [x, image(rng, (4, 7, 3))], {}))

    for name, kwargs in (
        ("depthwise_k3_valid", {"kernel_size": 3}),
        ("depthwise_k3_valid_nobias", {"kernel_size": 3, "use_bias": False}),
        ("depthwise_k3_same_s2", {"kernel_size": 3, "strides": 2, "padding": "same"}),
        ("depthwise_k3_same_s2_nobias", {"kernel_size": 3, "strides": 2, "padding": "same", "use_bias": False}),
        ("depthwise_dm2", {"kernel_size": 3, "depth_multiplier": 2}),
        ("depthwise_dil2_same", {"kernel_size": 3, "dilation_rate": 2, "padding": "same"}),
        ("depthwise_k2x3_same_s2_dm2", {"kernel_size": (2, 3), "strides": 2, "padding": "same", "depth_multiplier": 2}),
    ):
        out.append((name, "DepthwiseConv2D", kwargs, x, {}))
    for name, kwargs in (
        ("separable_k3_same", {"filters": 4, "kernel_size": 3, "padding": "same"}),
        ("separable_k3_valid_s2", {"filters": 4, "kernel_size": 3, "strides": 2}),
        ("separable_dm2", {"filters": 4, "kernel_size": 3, "depth_multiplier": 2}),
        ("separable_dm2_nobias", {"filters": 5, "kernel_size": 3, "depth_multiplier": 2, "use_bias": False}),
    ):
        out.append((name, "SeparableConv2D", kwargs, x, {}))
    for name, kwargs in (
        ("transpose_k3_valid_s1", {"filters": 4, "kernel_size": 3}),
        ("transpose_k3_same_s1", {"filters": 4, "kernel_size": 3, "padding": "same"}),
        ("transpose_k3_same_s2", {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"}),
        ("transpose_k3_valid_s2", {"filters": 4, "kernel_size": 3, "strides": 2}),
        ("transpose_k4_same_s2", {"filters": 4, "kernel_size": 4, "strides": 2, "padding": "same"}),
        ("transpose_k2_valid_s3", {"filters": 4, "kernel_size": 2, "strides": 3}),  # stride > kernel: gaps
        ("transpose_k3_valid_s2_op1", {"filters": 4, "kernel_size": 3, "strides": 2, "output_padding": 1}),
        ("transpose_k3_same_s2_op1", {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same",
                                      "output_padding": 1}),
        ("transpose_k3_same_s2_op0", {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same",
                                      "output_padding": 0}),
        ("transpose_k3_dil2_s1", {"filters": 4, "kernel_size": 3, "dilation_rate": 2}),
        ("transpose_k3x2_s2x1", {"filters": 4, "kernel_size": (3, 2), "strides": (2, 1)}),
        ("transpose_k3x2_s2x1_same_nobias", {"filters": 4, "kernel_size": (3, 2), "strides": (2, 1),
                                             "padding": "same", "use_bias": False}),
    ):
        out.append((name, "Conv2DTranspose", kwargs, x, {}))

    for name, kwargs in (
        ("upsampling_nearest_2", {"size": 2}),
        ("upsampling_nearest_2x3", {"size": (2, 3)}),
        ("upsampling_bilinear_2", {"size": 2, "interpolation": "bilinear"}),
        ("upsampling_bilinear_3", {"size": 3, "interpolation": "bilinear"}),
        ("upsampling_bilinear_2x3", {"size": (2, 3), "interpolation": "bilinear"}),
    ):
        out.append((name, "UpSampling2D", kwargs, x, {}))
    for name, kwargs in (
        ("zeropadding_int", {"padding": 2}),
        ("zeropadding_pair", {"padding": (1, 2)}),
        ("zeropadding_pairs", {"padding": ((1, 2), (0, 3))}),
    ):
        out.append((name, "ZeroPadding2D", kwargs, x, {}))
    for name, kwargs in (
        ("cropping_int", {"cropping": 1}),
        ("cropping_pair", {"cropping": (1, 2)}),
        ("cropping_pairs", {"cropping": ((1, 2), (0, 3))}),
    ):
        out.append((name, "Cropping2D", kwargs, x, {}))
    out.append(("reshape_minus1", "Reshape", {"target_shape": (7, -1, 5)}, x, {}))
    out.append(("permute_312", "Permute", {"dims": (3, 1, 2)}, x, {}))

    # Channels of very different means and spreads, so that a normalization over the wrong axis shows.
    spread = np.array([0.5, 2.0, 5.0], dtype="float32")
    offset = np.array([-1.0, 3.0, 10.0], dtype="float32")
    data = (image(rng, (5, 7, 3)) * spread + offset).astype("float32")
    xn = (image(rng) * spread + offset).astype("float32")
    out.append(("normalization_adapt", "Normalization", {"axis": -1}, xn, {"data": np.concatenate([data, xn])}))
    out.append(("normalization_adapt_hw", "Normalization", {"axis": (1, 2)}, xn, {"data": data}))
    out.append(("normalization_given", "Normalization",
                {"mean": [-1.0, 3.0, 10.0], "variance": [0.25, 4.0, 25.0]}, xn, {}))
    out.append(("normalization_given_scalar", "Normalization", {"axis": None, "mean": 3.0, "variance": 16.0}, xn, {}))
    # sqrt(variance) below Keras's epsilon 1e-7 is replaced by 1e-7; x close to the mean keeps y small.
    near = (np.float32(2.0) + 1e-7 * image(rng)).astype("float32")
    out.append(("normalization_tiny_variance", "Normalization",
                {"mean": [2.0, 2.0, 2.0], "variance": [1.0, 1e-16, 0.0]}, near, {}))
    out.append(("normalization_invert", "Normalization",
                {"mean": [-1.0, 3.0, 10.0], "variance": [0.25, 4.0, 25.0], "invert": True}, x, {}))
    out.append(("normalization_invert_adapt", "Normalization", {"invert": True}, x, {"data": data}))
    out.append(("layernorm_last", "LayerNormalization", {"axis": -1}, xn, {}))
    out.append(("layernorm_hwc", "LayerNormalization", {"axis": [1, 2, 3]}, xn, {}))
    # No axis=[1, 2] case: Keras 3.15's torch backend sends any contiguous axes to F.layer_norm, which
    # normalizes trailing axes only, and fails on (2, 5, 7, 3) with normalized_shape=[5, 7].
    out.append(("layernorm_hwc_eps", "LayerNormalization", {"axis": [1, 2, 3], "epsilon": 1e-5}, xn, {}))
    out.append(("layernorm_no_center", "LayerNormalization", {"center": False}, xn, {}))
    out.append(("layernorm_no_scale", "LayerNormalization", {"scale": False}, xn, {}))
    out.append(("layernorm_plain", "LayerNormalization", {"center": False, "scale": False}, xn, {}))
    out.append(("layernorm_rms", "LayerNormalization", {"rms_scaling": True}, xn, {}))

    relu_x = breakpoints(rng, -8.0, 8.0, [0.5, 6.0, 0.0, -0.5])
    out.append(("relu_capped_leaky_threshold", "ReLU", {"max_value": 6.0, "negative_slope": 0.1, "threshold": 0.5},
                relu_x, {}))
    out.append(("relu_capped_6", "ReLU", {"max_value": 6.0}, relu_x, {}))
    out.append(("relu_leaky_capped", "ReLU", {"max_value": 4.0, "negative_slope": 0.2}, relu_x, {}))
    out.append(("leaky_relu_default", "LeakyReLU", {}, relu_x, {}))
    out.append(("softmax_last", "Softmax", {}, image(rng, scale=3.0), {}))
    out.append(("softmax_rows", "Softmax", {"axis": 1}, image(rng, scale=3.0), {}))
    hard_x = breakpoints(rng, -5.0, 5.0, [-3.0, 3.0, 0.0, 6.0])
    for fn in ("relu6", "hard_sigmoid", "hard_silu"):
        out.append((f"activation_{fn}", "Activation", {"activation": fn}, hard_x, {}))
    return out


def random_weights(rng, layer):
    """Non-trivial weights of Keras's shapes; variances and gamma stay positive."""
    weights = []
    for variable, value in zip(layer.weights, layer.get_weights()):
        name = variable.name
        if np.issubdtype(value.dtype, np.integer):
            weights.append(value)
        elif name in ("gamma", "variance"):
            weights.append(rng.uniform(0.5, 1.5, value.shape).astype(value.dtype))
        else:
            weights.append((0.5 * rng.standard_normal(value.shape)).astype(value.dtype))
    return weights


def shape_of(inputs):
    if isinstance(inputs, list):
        return [[None, *a.shape[1:]] for a in inputs]
    return [None, *inputs.shape[1:]]


def run_case(rng, case, cls_name, kwargs, inputs, extra, arrays):
    layer = getattr(keras.layers, cls_name)(**kwargs)
    record = {"class_name": cls_name, "kwargs": kwargs, "input_shape": shape_of(inputs),
              "keras_version": keras.__version__, "backend": keras.backend.backend()}
    if "data" in extra:
        layer.adapt(extra["data"])
        arrays[f"{case}/data"] = extra["data"]
        record["adapt"] = True
    else:
        layer.build([tuple(s) for s in record["input_shape"]] if isinstance(inputs, list)
                    else tuple(record["input_shape"]))
        if layer.weights:
            layer.set_weights(random_weights(rng, layer))
    y = keras.ops.convert_to_numpy(layer(inputs))
    if isinstance(inputs, list):
        for i, a in enumerate(inputs):
            arrays[f"{case}/x{i}"] = a
    else:
        arrays[f"{case}/x"] = inputs
    for i, w in enumerate(layer.get_weights()):
        arrays[f"{case}/w{i}"] = w
    arrays[f"{case}/y"] = y
    record["weights"] = [
        {"name": v.name, "path": v.path, "shape": list(w.shape), "dtype": str(w.dtype), "trainable": v.trainable}
        for v, w in zip(layer.weights, layer.get_weights())
    ]
    record["output_shape"] = [None, *y.shape[1:]]
    record["config"] = json.loads(json.dumps(layer.get_config(), default=repr))
    return record


def main() -> None:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(20240607)
    arrays: dict[str, np.ndarray] = {}
    records = {}
    for case, cls_name, kwargs, inputs, extra in cases(rng):
        records[case] = run_case(rng, case, cls_name, kwargs, inputs, extra, arrays)
    meta = {"keras_version": keras.__version__, "backend": keras.backend.backend(), "device": "cpu",
            "cases": records}
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT / "layers.npz", **arrays)
    (OUT / "layers.json").write_text(json.dumps(meta, indent=1) + "\n")
    for path in (OUT / "layers.npz", OUT / "layers.json"):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size:,} bytes, {len(records)} cases")


if __name__ == "__main__":
    main()
