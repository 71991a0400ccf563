"""The reshaping layers (Reshape, Permute, ZeroPadding2D, Cropping2D): output shapes by Keras's formulas,
values, configs, and every error message."""

from __future__ import annotations

import importlib
import json
import re

import numpy as np
import pytest

from convscope import Input
from convscope.layers.reshaping import Cropping2D, Permute, Reshape, ZeroPadding2D

ALL = [Reshape, Permute, ZeroPadding2D, Cropping2D]


def _x(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------- Reshape
@pytest.mark.parametrize(
    "in_shape, target, expected",
    [
        ((12,), (3, 4), (3, 4)),
        ((12,), (-1, 2, 2), (3, 2, 2)),
        ((3, 4, 5), (-1,), (60,)),
        ((3, 4, 5), (5, -1), (5, 12)),
        ((3, 4, 5), (2, 5, 6), (2, 5, 6)),
        ((2, 3, 4), [4, 3, 2], (4, 3, 2)),
    ],
)
def test_reshape_shapes_and_values(in_shape, target, expected):
    x = _x(2, *in_shape)
    layer = Reshape(target)
    y = layer(x)
    assert y.shape == (2, *expected) and layer.output_shape == (None, *expected)
    np.testing.assert_array_equal(y, x.reshape(2, *expected))
    np.testing.assert_array_equal(layer.backward(y), x)
    assert Reshape(target)(Input(in_shape)).shape == (None, *expected)


@pytest.mark.parametrize(
    "target, exc, pattern",
    [
        ("34", TypeError, r'argument "target_shape" must be a non-empty tuple of ints, received \'34\''),
        (12, TypeError, r'argument "target_shape" must be a non-empty tuple of ints, received 12'),
        ((), TypeError, r'argument "target_shape" must be a non-empty tuple of ints, received \(\)'),
        ((3, 4.0), TypeError, r'argument "target_shape" must be a non-empty tuple of ints, received \(3, 4\.0\)'),
        ((3, True), TypeError, r'argument "target_shape" must be a non-empty tuple of ints, received \(3, True\)'),
        ((3, 0), ValueError, r'each dimension in argument "target_shape" must be a positive int, or -1 for a single '
                             r"unknown dimension, received \(3, 0\)"),
        ((-2, 6), ValueError, r'each dimension in argument "target_shape" must be a positive int, or -1 for a single '
                              r"unknown dimension, received \(-2, 6\)"),
        ((-1, 2, -1), ValueError, r'there must be at most one unknown dimension \(-1\) in argument "target_shape", '
                                  r"received \(-1, 2, -1\)"),
    ],
)
def test_reshape_argument_errors(target, exc, pattern):
    with pytest.raises(exc, match=r'Reshape "[a-z0-9_]+": ' + pattern):
        Reshape(target)


def test_reshape_size_mismatch_errors():
    with pytest.raises(ValueError, match=r'Reshape "[a-z0-9_]+": the total size of the tensor must be unchanged, '
                                         r"received input_shape=\(None, 3, 4\) \(12 values per sample\), "
                                         r"target_shape=\(5, 2\) \(10 values\)"):
        Reshape((5, 2)).build((None, 3, 4))
    with pytest.raises(ValueError, match=r'Reshape "[a-z0-9_]+": the total size of the tensor must be unchanged, but '
                                         r"the input size 12 cannot be divided by the product 5 of the specified "
                                         r"dimensions in target_shape, received input_shape=\(None, 12\), "
                                         r"target_shape=\(5, -1\)"):
        Reshape((5, -1))(np.zeros((2, 12)))
    with pytest.raises(ValueError, match=r'Input 0 of layer "[a-z0-9_]+" needs known non-batch sizes, '
                                         r"found shape=\(None, None, 4\)"):
        Reshape((-1,)).build((None, None, 4))


# ---------------------------------------------------------------- Permute
@pytest.mark.parametrize(
    "in_shape, dims, expected",
    [
        ((10, 64), (2, 1), (64, 10)),
        ((10, 64), (1, 2), (10, 64)),
        ((3, 4, 5), (3, 1, 2), (5, 3, 4)),
        ((3, 4, 5), (2, 3, 1), (4, 5, 3)),
        ((2, 3, 4, 5), [4, 2, 1, 3], (5, 3, 2, 4)),
    ],
)
def test_permute_shapes_and_values(in_shape, dims, expected):
    x = _x(2, *in_shape)
    layer = Permute(dims)
    y = layer(x)
    assert y.shape == (2, *expected) and layer.output_shape == (None, *expected)
    np.testing.assert_array_equal(y, np.transpose(x, (0, *dims)))
    assert y.flags.c_contiguous
    np.testing.assert_array_equal(layer.backward(y), x)
    assert Permute(dims)(Input(in_shape)).shape == (None, *expected)


@pytest.mark.parametrize(
    "dims, exc, pattern",
    [
        ((2, 3), ValueError, r"invalid permutation argument \"dims\": the set of indices must be consecutive and start "
                             r"from 1 \(the batch axis is not counted\), received dims=\(2, 3\)"),
        ((0, 1), ValueError, r"invalid permutation .*, received dims=\(0, 1\)"),
        ((1, 1), ValueError, r"invalid permutation .*, received dims=\(1, 1\)"),
        ([3, 1], ValueError, r"invalid permutation .*, received dims=\(3, 1\)"),
        ((), TypeError, r'argument "dims" must be a non-empty tuple of ints, received \(\)'),
        (2, TypeError, r'argument "dims" must be a non-empty tuple of ints, received 2'),
        ((1, 2.0), TypeError, r'argument "dims" must be a non-empty tuple of ints, received \(1, 2\.0\)'),
    ],
)
def test_permute_argument_errors(dims, exc, pattern):
    with pytest.raises(exc, match=r'Permute "[a-z0-9_]+": ' + pattern):
        Permute(dims)


def test_permute_refuses_other_ranks():
    with pytest.raises(ValueError, match=r'Input 0 of layer "[a-z0-9_]+" is incompatible with the layer: expected '
                                         r"ndim=3, found ndim=4. Full shape received: \(None, 2, 3, 4\)"):
        Permute((2, 1))(np.zeros((1, 2, 3, 4)))


# ---------------------------------------------------------------- ZeroPadding2D and Cropping2D
PAIR_FORMS = [
    (1, ((1, 1), (1, 1))),
    (0, ((0, 0), (0, 0))),
    ((2, 1), ((2, 2), (1, 1))),
    (((1, 2), (0, 3)), ((1, 2), (0, 3))),
    ([[0, 1], [2, 0]], ((0, 1), (2, 0))),
    (((1, 2), 2), ((1, 2), (2, 2))),
]


@pytest.mark.parametrize("value, pairs", PAIR_FORMS)
def test_zero_padding_forms_shapes_and_values(value, pairs):
    (top, bottom), (left, right) = pairs
    x = _x(2, 5, 4, 3)
    layer = ZeroPadding2D(value)
    assert layer.padding == pairs
    y = layer(x)
    expected = (2, top + 5 + bottom, left + 4 + right, 3)
    assert y.shape == expected and layer.output_shape == (None, *expected[1:])
    np.testing.assert_array_equal(y, np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0))))
    np.testing.assert_array_equal(layer.backward(y), x)


def test_zero_padding_default_is_one_all_round():
    assert ZeroPadding2D().padding == ((1, 1), (1, 1))
    assert ZeroPadding2D()(Input((28, 28, 1))).shape == (None, 30, 30, 1)


@pytest.mark.parametrize("value, pairs", PAIR_FORMS)
def test_cropping_forms_shapes_and_values(value, pairs):
    (top, bottom), (left, right) = pairs
    x = _x(2, 7, 6, 3)
    layer = Cropping2D(value)
    assert layer.cropping == pairs
    y = layer(x)
    expected = (2, 7 - top - bottom, 6 - left - right, 3)
    assert y.shape == expected and layer.output_shape == (None, *expected[1:])
    np.testing.assert_array_equal(y, x[:, top : 7 - bottom, left : 6 - right, :])
    assert y.flags.c_contiguous and not np.shares_memory(y, x)
    dx = layer.backward(y)
    np.testing.assert_array_equal(dx, np.pad(y, ((0, 0), (top, bottom), (left, right), (0, 0))))


def test_cropping_default_is_none_and_keras_example():
    assert Cropping2D().cropping == ((0, 0), (0, 0))
    assert Cropping2D(cropping=((2, 2), (4, 4)))(np.zeros((2, 28, 28, 3))).shape == (2, 24, 20, 3)


@pytest.mark.parametrize("cls, arg", [(ZeroPadding2D, "padding"), (Cropping2D, "cropping")])
@pytest.mark.parametrize(
    "value, exc, pattern",
    [
        ("1", TypeError, r"must be an int, a tuple of 2 ints \(symmetric_height, symmetric_width\) or a tuple of 2 "
                         r"tuples of 2 ints \(\(top, bottom\), \(left, right\)\), received '1'"),
        ((1, 2, 3), TypeError, r"must be an int, .*, received \(1, 2, 3\)"),
        (((1, 2, 3), (1, 1)), TypeError, r"must be an int, .*, received \(\(1, 2, 3\), \(1, 1\)\)"),
        ((1.0, 1), TypeError, r"must be an int, .*, received \(1\.0, 1\)"),
        (True, TypeError, r"must be an int, .*, received True"),
        (None, TypeError, r"must be an int, .*, received None"),
        (-1, ValueError, r"must be >= 0 on every side, received -1"),
        (((0, -1), (0, 0)), ValueError, r"must be >= 0 on every side, received \(\(0, -1\), \(0, 0\)\)"),
    ],
)
def test_padding_and_cropping_argument_errors(cls, arg, value, exc, pattern):
    with pytest.raises(exc, match=rf'{cls.__name__} "[a-z0-9_]+": argument "{arg}" ' + pattern):
        cls(value)


@pytest.mark.parametrize("cls", [ZeroPadding2D, Cropping2D])
def test_data_format(cls):
    assert cls(data_format=None).data_format == "channels_last"
    assert cls(data_format="Channels_Last").data_format == "channels_last"
    with pytest.raises(ValueError, match=rf'{cls.__name__} "[a-z0-9_]+": argument "data_format" "channels_first" is '
                                         r"not supported: convscope works on channels_last"):
        cls(data_format="channels_first")
    with pytest.raises(ValueError, match=rf'{cls.__name__} "[a-z0-9_]+": argument "data_format" must be '
                                         r'"channels_last" or None, received \'nhwc\''):
        cls(data_format="nhwc")


@pytest.mark.parametrize("cls", [ZeroPadding2D, Cropping2D])
def test_padding_and_cropping_need_images(cls):
    with pytest.raises(ValueError, match=r'Input 0 of layer "[a-z0-9_]+" is incompatible with the layer: expected '
                                         r"ndim=4 \(batch, height, width, channels\), found shape=\(None, 5, 5\)"):
        cls(1)(np.zeros((2, 5, 5)))


@pytest.mark.parametrize(
    "cropping, shape",
    [
        (3, (None, 6, 8, 1)),
        (((0, 0), (4, 4)), (None, 6, 8, 1)),
        (((5, 0), (0, 0)), (None, 5, 8, 1)),
        (((2, 2), (0, 8)), (None, 6, 8, 1)),
    ],
)
def test_cropping_must_leave_something(cropping, shape):
    layer = Cropping2D(cropping)
    with pytest.raises(ValueError, match=r'Cropping2D "[a-z0-9_]+": argument "cropping" must leave at least one row '
                                         r"and one column: its values should be smaller than the corresponding "
                                         r"spatial dimension of the input, received input_shape="
                                         + re.escape(f"{shape}, cropping={layer.cropping}")):
        layer.build(shape)


def test_cropping_to_a_single_pixel_is_fine():
    assert Cropping2D(((2, 3), (0, 7)))(np.zeros((1, 6, 8, 2))).shape == (1, 1, 1, 2)


# ---------------------------------------------------------------- configs, dtypes, registry
@pytest.mark.parametrize(
    "make, x_shape",
    [
        (lambda: Reshape((-1, 2), name="r"), (2, 3, 4)),
        (lambda: Permute((2, 3, 1), trainable=False), (2, 3, 4, 5)),
        (lambda: ZeroPadding2D(((1, 2), (3, 0))), (2, 3, 4, 1)),
        (lambda: ZeroPadding2D(2, data_format="channels_last"), (2, 3, 4, 1)),
        (lambda: Cropping2D((1, 2)), (2, 5, 6, 1)),
        (lambda: Cropping2D(((0, 1), (2, 0))), (2, 5, 6, 1)),
    ],
    ids=["Reshape", "Permute", "ZeroPadding2D", "ZeroPadding2D-int", "Cropping2D", "Cropping2D-pairs"],
)
def test_config_round_trip(make, x_shape):
    layer = make()
    config = layer.get_config()
    json.dumps(config)
    rebuilt = type(layer).from_config(config)
    assert type(rebuilt) is type(layer) and rebuilt.get_config() == config
    x = _x(*x_shape)
    np.testing.assert_array_equal(rebuilt(x), layer(x))


def test_configs_hold_keras_keys():
    assert Reshape((3, -1)).get_config()["target_shape"] == [3, -1]
    assert Permute((2, 1)).get_config()["dims"] == [2, 1]
    assert ZeroPadding2D((1, 2)).get_config()["padding"] == [[1, 1], [2, 2]]
    assert Cropping2D(1).get_config()["cropping"] == [[1, 1], [1, 1]]
    assert Cropping2D().get_config()["data_format"] == "channels_last"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [lambda: Reshape((-1,)), lambda: Permute((3, 1, 2)), lambda: ZeroPadding2D(1),
                                  lambda: Cropping2D(1)])
def test_dtype_follows_the_input(make, dtype):
    layer = make()
    y = layer(_x(2, 4, 5, 3, dtype=dtype))
    assert y.dtype == dtype
    assert layer.backward(np.ones_like(y)).dtype == dtype


@pytest.mark.parametrize("cls", ALL)
def test_loop_reference_is_named_and_importable(cls):
    module, _, function = cls.LOOP_REFERENCE.rpartition(".")
    assert callable(getattr(importlib.import_module(module), function))
