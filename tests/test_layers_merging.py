"""The merging layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate) and Keras's functional
forms: output shapes and values, configs, every error message, and Maximum / Minimum's tie rule."""

from __future__ import annotations

import importlib
import json
import re

import numpy as np
import pytest

from convscope import Input
from convscope.layers.merging import (
    Add,
    Average,
    Concatenate,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    maximum,
    minimum,
    multiply,
    subtract,
)
from convscope.layers.node import KerasTensor

ELEMENTWISE = {
    Add: lambda xs: sum(xs[1:], xs[0]),
    Subtract: lambda xs: xs[0] - xs[1],
    Multiply: lambda xs: np.prod(np.stack(xs), axis=0),
    Average: lambda xs: np.mean(np.stack(xs), axis=0),
    Maximum: lambda xs: np.max(np.stack(xs), axis=0),
    Minimum: lambda xs: np.min(np.stack(xs), axis=0),
}
FUNCTIONAL = {Add: add, Subtract: subtract, Multiply: multiply, Average: average, Maximum: maximum, Minimum: minimum}
ALL = [*ELEMENTWISE, Concatenate]


def _arrays(n, shape, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for _ in range(n)]


def _counts(cls):
    return [2] if cls is Subtract else [2, 3, 4]


# ---------------------------------------------------------------- values and shapes
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls", ELEMENTWISE)
def test_elementwise_values_shapes_and_dtype(cls, dtype):
    for n in _counts(cls):
        xs = _arrays(n, (2, 3, 5, 4), seed=n, dtype=dtype)
        layer = cls()
        y = layer(xs)
        assert y.shape == (2, 3, 5, 4) and y.dtype == dtype
        assert layer.output_shape == (None, 3, 5, 4)
        assert layer.input_shape == [(None, 3, 5, 4)] * n
        np.testing.assert_allclose(y, ELEMENTWISE[cls](xs), rtol=1e-6 if dtype == np.float32 else 1e-14)
        assert all(not np.shares_memory(y, x) for x in xs)


@pytest.mark.parametrize("cls", ELEMENTWISE)
def test_backward_returns_one_fresh_gradient_per_input(cls):
    xs = _arrays(3 if cls is not Subtract else 2, (2, 4), seed=1)
    layer = cls()
    layer(xs)
    dy = np.ones((2, 4))
    dxs = layer.backward(dy)
    assert isinstance(dxs, list) and len(dxs) == len(xs)
    assert all(dx.shape == (2, 4) for dx in dxs)
    arrays = [dy, *dxs]
    assert not any(np.shares_memory(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1 :])
    assert layer.backward(dy, need_dx=False) is None


@pytest.mark.parametrize(
    "shapes, axis, expected",
    [
        ([(2, 4, 4, 8), (2, 4, 4, 16)], -1, (2, 4, 4, 24)),
        ([(2, 4, 4, 8), (2, 4, 4, 16)], 3, (2, 4, 4, 24)),
        ([(2, 3, 5, 2), (2, 1, 5, 2), (2, 4, 5, 2)], 1, (2, 8, 5, 2)),
        ([(2, 3, 5, 2), (2, 3, 2, 2)], 2, (2, 3, 7, 2)),
        ([(2, 3, 5, 2), (2, 3, 2, 2)], -2, (2, 3, 7, 2)),
        ([(3, 5), (3, 1)], -1, (3, 6)),
        ([(3, 2, 5), (3, 4, 5)], -2, (3, 6, 5)),
    ],
)
def test_concatenate_values_and_shapes(shapes, axis, expected):
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal(s) for s in shapes]
    layer = Concatenate(axis=axis)
    y = layer(xs)
    assert y.shape == expected
    assert layer.output_shape == (None, *expected[1:])
    np.testing.assert_array_equal(y, np.concatenate(xs, axis=axis))
    dxs = layer.backward(y)
    for dx, x in zip(dxs, xs):
        np.testing.assert_array_equal(dx, x)


def test_multiply_backward_with_zeros_needs_no_division():
    a, b, c = np.array([[0.0, 2.0]]), np.array([[3.0, 0.0]]), np.array([[5.0, 7.0]])
    layer = Multiply()
    layer([a, b, c])
    da, db, dc = layer.backward(np.ones((1, 2)))
    np.testing.assert_array_equal(da, [[15.0, 0.0]])
    np.testing.assert_array_equal(db, [[0.0, 14.0]])
    np.testing.assert_array_equal(dc, [[0.0, 0.0]])


# ---------------------------------------------------------------- Maximum / Minimum ties
@pytest.mark.parametrize("cls", [Maximum, Minimum])
@pytest.mark.parametrize("n", [2, 3])
def test_equal_inputs_give_the_whole_gradient_to_the_first(cls, n):
    x = np.random.default_rng(3).standard_normal((2, 3, 3, 2))
    layer = cls()
    y = layer([x.copy() for _ in range(n)])
    np.testing.assert_array_equal(y, x)
    dy = np.random.default_rng(4).standard_normal(x.shape)
    dxs = layer.backward(dy)
    np.testing.assert_array_equal(dxs[0], dy)
    for dx in dxs[1:]:
        np.testing.assert_array_equal(dx, 0.0)


@pytest.mark.parametrize("cls, extreme", [(Maximum, 5.0), (Minimum, -5.0)])
def test_partial_ties_go_to_the_first_input_holding_the_extreme(cls, extreme):
    # element 0: inputs 1 and 2 tie on the extreme; element 1: only input 2 holds it; element 2: all three tie
    xs = [np.array([[0.0, 0.0, extreme]]), np.array([[extreme, 0.0, extreme]]), np.array([[extreme, extreme, extreme]])]
    layer = cls()
    np.testing.assert_array_equal(layer(xs), [[extreme] * 3])
    dxs = layer.backward(np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_array_equal(dxs[0], [[0.0, 0.0, 3.0]])
    np.testing.assert_array_equal(dxs[1], [[1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(dxs[2], [[0.0, 2.0, 0.0]])


# ---------------------------------------------------------------- functional helpers and symbolic calls
@pytest.mark.parametrize("cls", ELEMENTWISE)
def test_functional_helpers_build_the_layer(cls):
    xs = _arrays(2, (2, 3), seed=5)
    np.testing.assert_array_equal(FUNCTIONAL[cls](xs, name=f"my_{cls.__name__.lower()}"), cls()(xs))
    a, b = Input((4, 4, 8)), Input((4, 4, 8))
    out = FUNCTIONAL[cls]([a, b], name=f"sym_{cls.__name__.lower()}")
    assert isinstance(out, KerasTensor) and out.shape == (None, 4, 4, 8)
    assert out.layer.name == f"sym_{cls.__name__.lower()}" and type(out.layer) is cls


def test_functional_concatenate_takes_the_axis():
    a, b = Input((4, 4, 8)), Input((4, 4, 16))
    out = concatenate([a, b])
    assert out.shape == (None, 4, 4, 24)
    assert concatenate([a, a], axis=1, name="rows").shape == (None, 8, 4, 8)
    xs = _arrays(2, (2, 3, 2), seed=6)
    np.testing.assert_array_equal(concatenate(xs, axis=-2), np.concatenate(xs, axis=-2))


# ---------------------------------------------------------------- configs
@pytest.mark.parametrize(
    "make",
    [lambda cls=cls: cls(name=f"m_{cls.__name__.lower()}", trainable=False) for cls in ELEMENTWISE]
    + [lambda: Concatenate(), lambda: Concatenate(axis=2, name="cat")],
    ids=[cls.__name__ for cls in ELEMENTWISE] + ["Concatenate", "Concatenate-axis2"],
)
def test_config_round_trip(make):
    layer = make()
    config = layer.get_config()
    json.dumps(config)
    rebuilt = type(layer).from_config(config)
    assert type(rebuilt) is type(layer) and rebuilt.get_config() == config
    if isinstance(layer, Concatenate):
        assert config["axis"] == layer.axis
    xs = _arrays(2, (2, 3, 4, 5), seed=7)
    np.testing.assert_array_equal(rebuilt(xs), layer(xs))


@pytest.mark.parametrize("cls", ALL)
def test_loop_reference_is_named_and_importable(cls):
    module, _, function = cls.LOOP_REFERENCE.rpartition(".")
    assert callable(getattr(importlib.import_module(module), function))


# ---------------------------------------------------------------- error messages
def _owner(cls):
    return rf'{cls.__name__} "[a-z0-9_]+": '


@pytest.mark.parametrize("cls", ALL)
def test_refuses_a_single_tensor(cls):
    with pytest.raises(ValueError, match=_owner(cls) + r"a merge layer must be called on a list of inputs, "
                                                      r"received input_shape=\(None, 4\)"):
        cls()(np.zeros((2, 4)))


@pytest.mark.parametrize("cls", [c for c in ALL if c is not Subtract])
def test_refuses_fewer_than_two_inputs(cls):
    with pytest.raises(ValueError, match=_owner(cls) + r"must be called on a list of at least 2 inputs, "
                                                      r"received 1 with shapes \[\(None, 4\)\]"):
        cls()([np.zeros((2, 4))])
    with pytest.raises(ValueError, match=_owner(cls) + r"must be called on a list of at least 2 inputs, "
                                                      r"received 0 with shapes \[\]"):
        cls().build([])


@pytest.mark.parametrize("n", [1, 3])
def test_subtract_takes_exactly_two(n):
    with pytest.raises(ValueError, match=r'Subtract "[a-z0-9_]+": must be called on exactly 2 inputs, '
                                         rf"received {n} with shapes \[\(None, 4\)" + r"(, \(None, 4\))*\]"):
        Subtract()([np.zeros((2, 4))] * n)


@pytest.mark.parametrize("cls", ELEMENTWISE)
def test_shapes_must_match_or_broadcast_as_in_keras(cls):
    a, b = np.zeros((2, 4, 4, 8)), np.zeros((2, 4, 4, 16))
    with pytest.raises(ValueError, match=_owner(cls) + r"inputs must have the same shape, or 1 along an axis to "
                                                      r"broadcast, received shapes "
                                                      r"\[\(None, 4, 4, 8\), \(None, 4, 4, 16\)\]"):
        cls()([a, b])
    with pytest.raises(ValueError, match=r"same rank, received shapes \[\(None, 4, 4, 8\), \(None, 4, 8\)\]"):
        cls()([a, np.zeros((2, 4, 8))])  # no broadcasting of ranks
    rng = np.random.default_rng(0)
    x, scale = rng.standard_normal((2, 4, 4, 8)), rng.standard_normal((2, 1, 1, 8))
    expected = {"Add": x + scale, "Subtract": x - scale, "Multiply": x * scale, "Average": (x + scale) / 2,
                "Maximum": np.maximum(x, scale), "Minimum": np.minimum(x, scale)}[cls.__name__]
    layer = cls()
    np.testing.assert_allclose(layer([x, scale]), expected)  # a squeeze-and-excitation block's broadcast
    assert layer.compute_output_shape([(None, 4, 4, 8), (None, 1, 1, 8)]) == (None, 4, 4, 8)
    dx, dscale = layer.backward(np.ones((2, 4, 4, 8)))
    assert dx.shape == x.shape and dscale.shape == scale.shape


def test_every_shape_is_named_with_three_inputs():
    with pytest.raises(ValueError, match=r'Add "[a-z0-9_]+": inputs must have the same shape, or 1 along an axis '
                                         r"to broadcast, received shapes \[\(None, 3\), \(None, 3\), \(None, 5\)\]"):
        Add().build([(None, 3), (None, 3), (None, 5)])


@pytest.mark.parametrize("cls", ALL)
def test_different_known_batch_sizes(cls):
    with pytest.raises(ValueError, match=_owner(cls) + r"cannot merge tensors with different batch sizes, "
                                                      r"received shapes \[\(2, 3\), \(4, 3\)\]"):
        cls().compute_output_shape([(2, 3), (4, 3)])
    assert cls().compute_output_shape([(None, 3), (4, 3)])[0] == 4


@pytest.mark.parametrize("cls", ALL)
def test_built_layer_refuses_fewer_inputs(cls):
    layer = cls()
    layer([np.zeros((2, 3))] * 2)
    with pytest.raises(ValueError, match=_owner(cls) + r"was built for 2 inputs, received 1 with shapes \[\(2, 3\)\]"):
        layer([np.zeros((2, 3))])
    with pytest.raises(ValueError, match=_owner(cls) + r"a merge layer must be called on a list of inputs, "
                                                      r"received ndarray"):
        layer.forward(np.zeros((2, 3)))


def test_built_layer_refuses_other_shapes():
    layer = Add()
    layer([np.zeros((2, 3))] * 2)
    with pytest.raises(ValueError, match=r'Input 1 of layer "[a-z0-9_]+" is incompatible with the layer: '
                                         r"expected shape=\(None, 3\), found shape=\(2, 4\)"):
        layer([np.zeros((2, 3)), np.zeros((2, 4))])


@pytest.mark.parametrize(
    "axis, exc, pattern",
    [
        (0, ValueError, r'argument "axis" cannot be 0, the batch axis, received 0'),
        (1.0, TypeError, r'argument "axis" must be an int, received 1\.0'),
        (True, TypeError, r'argument "axis" must be an int, received True'),
        (None, TypeError, r'argument "axis" must be an int, received None'),
    ],
)
def test_concatenate_refuses_bad_axis_arguments(axis, exc, pattern):
    with pytest.raises(exc, match=r'Concatenate "[a-z0-9_]+": ' + pattern):
        Concatenate(axis=axis)


@pytest.mark.parametrize("axis", [4, 7, -4, -5])
def test_concatenate_refuses_axes_outside_the_non_batch_ones(axis):
    shapes = [(None, 4, 4, 8), (None, 4, 4, 8)]
    with pytest.raises(ValueError, match=rf'Concatenate "[a-z0-9_]+": argument "axis" {axis} is not a non-batch '
                                         r"axis of inputs of rank 4, received shapes "
                                         + re.escape(str(shapes))):
        Concatenate(axis=axis).build(shapes)


@pytest.mark.parametrize(
    "axis, shapes",
    [
        (1, [(None, 4, 4, 8), (None, 4, 4, 16)]),
        (-1, [(None, 4, 4, 8), (None, 4, 5, 16)]),
        (2, [(None, 4, 4, 8), (None, 3, 4, 8), (None, 4, 4, 8)]),
        (-1, [(None, 4, 4, 8), (None, 4, 8)]),
    ],
    ids=["other-axis", "one-mismatch", "three-inputs", "ranks"],
)
def test_concatenate_shapes_must_match_off_the_axis(axis, shapes):
    with pytest.raises(ValueError, match=r'Concatenate "[a-z0-9_]+": inputs must have the same shape except along '
                                         rf"the concatenation axis {axis}, received shapes " + re.escape(str(shapes))):
        Concatenate(axis=axis).build(shapes)
