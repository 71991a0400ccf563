"""Single layers against real Keras 3: the same weights on the same input give Keras's numbers.

``fixtures/keras/layers.npz`` / ``layers.json`` were written by Keras 3.15.1 (torch backend, CPU)
with ``scripts/make_keras_layer_fixtures.py``: per case the Keras class name, its constructor
kwargs, the input(s), the weights in Keras's ``get_weights()`` order (with their Keras names) and
Keras's output. No Keras is needed here.

Each case builds the convscope layer of the same class name from the same kwargs (JSON lists read
back as tuples, as a Python caller writes them), calls ``build`` and ``set_weights`` with Keras's
weights (a ``Normalization`` that Keras adapted is adapted here on the same data instead, and its
weights must then equal Keras's), and runs ``forward`` in float64 and in float32 on the NumPy and
the compiled path.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

import convscope.layers
from convscope import backend

pytestmark = [
    pytest.mark.usefixtures("kernel_path"),
    pytest.mark.filterwarnings("ignore:.*rms_scaling=True is deprecated:UserWarning"),  # Keras warns the same
]

FIXTURES = Path(__file__).parent / "fixtures" / "keras"
META = json.loads((FIXTURES / "layers.json").read_text())
CASES = META["cases"]
TOLERANCE = 1e-5

# Where each class lives until convscope.layers exports it.
MODULES = {
    **dict.fromkeys(("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"), "merging"),
    **dict.fromkeys(("ZeroPadding2D", "Cropping2D", "Reshape", "Permute"), "reshaping"),
    **dict.fromkeys(("DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose"), "conv_variants"),
    "UpSampling2D": "resampling",
    "Normalization": "preprocessing",
    "LayerNormalization": "normalization",
    **dict.fromkeys(("ReLU", "LeakyReLU", "Softmax", "Activation"), "activation"),
}


@pytest.fixture(scope="module")
def arrays():
    with np.load(FIXTURES / "layers.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(autouse=True)
def _restore_floatx():
    previous = backend.floatx()
    convscope.layers.clear_session()
    yield
    backend.set_floatx(previous)


def layer_class(name: str):
    if hasattr(convscope.layers, name):
        return getattr(convscope.layers, name)
    return getattr(importlib.import_module(f"convscope.layers.{MODULES[name]}"), name)


def as_tuples(value):
    if isinstance(value, list):
        return tuple(as_tuples(v) for v in value)
    return value


def input_shape(case: dict):
    shape = case["input_shape"]
    return [tuple(s) for s in shape] if isinstance(shape[0], list) else tuple(shape)


def inputs(arrays: dict, name: str, dtype: str):
    if f"{name}/x" in arrays:
        return arrays[f"{name}/x"].astype(dtype)
    return [arrays[f"{name}/x{i}"].astype(dtype) for i in range(len(CASES[name]["input_shape"]))]


def keras_weights(arrays: dict, name: str) -> list:
    return [arrays[f"{name}/w{i}"] for i in range(len(CASES[name]["weights"]))]


def built_layer(arrays: dict, name: str, dtype: str):
    case = CASES[name]
    backend.set_floatx(dtype)
    layer = layer_class(case["class_name"])(**{k: as_tuples(v) for k, v in case["kwargs"].items()})
    layer.build(input_shape(case))
    if case.get("adapt"):
        layer.adapt(arrays[f"{name}/data"].astype(dtype))
    else:
        layer.set_weights(keras_weights(arrays, name))
    return layer


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_matches_keras(arrays, name, dtype):
    case = CASES[name]
    layer = built_layer(arrays, name, dtype)
    expected = arrays[f"{name}/y"]
    assert tuple(layer.output_shape) == tuple(case["output_shape"]), "compute_output_shape differs from Keras's"
    if case.get("adapt"):
        for i, (ours, theirs) in enumerate(zip(layer.get_weights(), keras_weights(arrays, name), strict=True)):
            # Keras 3.15 leaves the int32 "count" weight of an adapted Normalization at 0.
            assert ours.shape == theirs.shape, f"adapted weight {i}"
            scale = max(1.0, float(np.abs(theirs).max(initial=0.0)))
            assert np.abs(ours.astype("float64") - theirs).max(initial=0.0) <= TOLERANCE * scale, f"adapted weight {i}"
    y = layer.forward(inputs(arrays, name, dtype))
    assert y.dtype == np.dtype(dtype)
    assert y.shape == expected.shape
    diff = float(np.abs(y.astype("float64") - expected).max())
    tolerance = TOLERANCE if dtype == "float64" else TOLERANCE * max(1.0, float(np.abs(expected).max()))
    assert diff <= tolerance, f"max |convscope - Keras| = {diff:.3g} ({dtype})"


@pytest.mark.parametrize("name", sorted(name for name in CASES if CASES[name]["weights"]))
def test_weights_named_and_ordered_as_keras(name):
    case = CASES[name]
    layer = layer_class(case["class_name"])(**{k: as_tuples(v) for k, v in case["kwargs"].items()})
    layer.build(input_shape(case))
    ours = [(p.name.rsplit("/", 1)[-1], tuple(p.shape), p.trainable) for p in layer.parameters]
    theirs = [(w["name"], tuple(w["shape"]), w["trainable"]) for w in case["weights"]]
    assert ours == theirs
