"""The fast (strided-view / matrix-product) ops agree with the plain-loop references.

``ops.reference`` spells convolution and pooling out as nested loops; here the
vectorized ``ops.conv`` and ``ops.pool`` are held to them, forward and every
backward output, over a grid of kernel sizes, strides (incl. overlapping
windows), paddings, dilations and groups. ``ops.shapes`` is checked against
output sizes and "same" paddings computed by hand with TensorFlow's rules.
Inputs stay tiny: the loop references run in pure Python.
"""

from __future__ import annotations

import numpy as np
import pytest

from convscope.arraymath import reference
from convscope.arraymath.conv import conv2d, conv2d_backward, conv2d_forward
from convscope.arraymath.pool import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)
from convscope.arraymath.shapes import (
    conv_output_length,
    effective_kernel,
    normalize_padding,
    normalize_tuple,
    output_hw,
    paddings_2d,
    same_padding,
)

# Every check here runs on both the NumPy ops and the compiled kernels.
pytestmark = pytest.mark.usefixtures("kernel_path")

TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}
DTYPES = [np.float32, np.float64]


def _close(actual, expected, dtype):
    assert actual.dtype == dtype, f"dtype {actual.dtype}, expected {np.dtype(dtype)}"
    assert actual.shape == expected.shape, f"shape {actual.shape}, expected {expected.shape}"
    np.testing.assert_allclose(actual, expected, **TOL[dtype])


# ---------------------------------------------------------------- ops.shapes
@pytest.mark.parametrize(
    "n, k, s, padding, d, expected",
    [
        (28, 3, 1, "valid", 1, 26),
        (28, 5, 1, "valid", 1, 24),
        (26, 2, 2, "valid", 1, 13),
        (27, 2, 2, "valid", 1, 13),
        (7, 3, 2, "valid", 1, 3),
        (9, 2, 3, "valid", 1, 3),
        (9, 5, 3, "valid", 1, 2),
        (5, 3, 1, "valid", 2, 1),  # dilated window spans 5 cells
        (4, 3, 1, "valid", 2, 0),  # too small: no output
        (7, 1, 1, "valid", 1, 7),
        (28, 3, 1, "same", 1, 28),
        (28, 3, 2, "same", 1, 14),
        (7, 3, 2, "same", 1, 4),
        (9, 5, 3, "same", 1, 3),
        (10, 3, 1, "same", 2, 10),
        (1, 3, 1, "same", 1, 1),
    ],
)
def test_conv_output_length(n, k, s, padding, d, expected):
    assert conv_output_length(n, k, s, padding, d) == expected


@pytest.mark.parametrize(
    "n, k, s, d, expected",
    [
        (28, 3, 2, 1, (0, 1)),  # out 14, total 13*2 + 3 - 28 = 1: the odd cell at the bottom
        (28, 3, 1, 1, (1, 1)),
        (28, 2, 2, 1, (0, 0)),
        (7, 2, 1, 1, (0, 1)),
        (7, 4, 1, 1, (1, 2)),
        (5, 5, 3, 1, (1, 2)),  # out 2, total 3 + 5 - 5 = 3
        (9, 3, 2, 1, (1, 1)),  # out 5, total 8 + 3 - 9 = 2
        (8, 3, 2, 1, (0, 1)),  # out 4, total 6 + 3 - 8 = 1
        (6, 1, 2, 1, (0, 0)),  # total would be negative: no padding
        (10, 3, 1, 2, (2, 2)),  # dilated window spans 5 cells
        (7, 2, 1, 3, (1, 2)),  # dilated window spans 4 cells
    ],
)
def test_same_padding(n, k, s, d, expected):
    assert same_padding(n, k, s, d) == expected


def test_effective_kernel():
    assert effective_kernel(3) == 3
    assert effective_kernel(3, 2) == 5
    assert effective_kernel(1, 4) == 1
    assert effective_kernel(2, 3) == 4


def test_2d_helpers():
    assert output_hw((7, 9), (3, 2), (2, 1), "valid") == (3, 8)
    assert output_hw((7, 9), (3, 2), (2, 1), "same") == (4, 9)
    assert output_hw((7, 9), (3, 3), (1, 1), "valid", (2, 1)) == (3, 7)
    assert paddings_2d((7, 9), (3, 2), (2, 1), "valid") == ((0, 0), (0, 0))
    assert paddings_2d((7, 9), (3, 2), (2, 1), "same") == ((1, 1), (0, 1))
    assert paddings_2d((28, 28), (3, 3), (2, 2), "same") == ((0, 1), (0, 1))
    assert paddings_2d((7, 9), (3, 3), (1, 1), "same", (2, 1)) == ((2, 2), (1, 1))


def test_normalize_helpers():
    assert normalize_tuple(3, 2, "kernel_size", "X") == (3, 3)
    assert normalize_tuple([3, 2], 2, "kernel_size", "X") == (3, 2)
    assert normalize_tuple(0, 2, "pads", "X", allow_zero=True) == (0, 0)
    assert normalize_padding("SAME", "X") == "same"
    assert normalize_padding("Valid", "X") == "valid"
    with pytest.raises(ValueError, match=r'X: argument "kernel_size" must be >= 1, received 0'):
        normalize_tuple(0, 2, "kernel_size", "X")
    with pytest.raises(TypeError, match=r'X: argument "kernel_size" must be an int or a tuple of 2 ints'):
        normalize_tuple((3, 3, 3), 2, "kernel_size", "X")


# ---------------------------------------------------------------- convolution
# (hw, channels, filters, kernel, strides, padding, dilation, groups)
CONV_CASES = [
    pytest.param((7, 9), 2, 3, (1, 1), (1, 1), "valid", (1, 1), 1, id="k1"),
    pytest.param((7, 9), 2, 3, (2, 2), (1, 1), "same", (1, 1), 1, id="k2-same"),
    pytest.param((7, 9), 2, 3, (3, 3), (1, 1), "valid", (1, 1), 1, id="k3-valid"),
    pytest.param((7, 9), 2, 3, (3, 3), (1, 1), "same", (1, 1), 1, id="k3-same"),
    pytest.param((7, 9), 2, 2, (5, 5), (1, 1), "same", (1, 1), 1, id="k5-same"),
    pytest.param((7, 9), 2, 2, (5, 5), (1, 1), "valid", (1, 1), 1, id="k5-valid"),
    pytest.param((7, 9), 2, 3, (3, 2), (2, 1), "same", (1, 1), 1, id="k3x2-s2x1-same"),
    pytest.param((7, 9), 2, 3, (1, 3), (1, 2), "valid", (1, 1), 1, id="k1x3-s1x2-valid"),
    pytest.param((7, 9), 2, 3, (3, 3), (2, 2), "valid", (1, 1), 1, id="k3-s2-overlap-valid"),
    pytest.param((7, 9), 2, 3, (3, 3), (2, 2), "same", (1, 1), 1, id="k3-s2-overlap-same"),
    pytest.param((7, 9), 2, 2, (5, 5), (3, 3), "same", (1, 1), 1, id="k5-s3-overlap-same"),
    pytest.param((7, 9), 2, 2, (2, 2), (3, 3), "valid", (1, 1), 1, id="k2-s3-gaps"),
    pytest.param((7, 9), 2, 3, (3, 3), (1, 1), "valid", (2, 2), 1, id="k3-d2-valid"),
    pytest.param((7, 9), 2, 3, (3, 3), (1, 1), "same", (2, 2), 1, id="k3-d2-same"),
    pytest.param((7, 9), 2, 3, (3, 2), (1, 1), "same", (2, 1), 1, id="k3x2-d2x1-same"),
    pytest.param((6, 7), 4, 6, (3, 3), (1, 1), "valid", (1, 1), 2, id="groups2"),
    pytest.param((6, 7), 4, 4, (3, 3), (2, 2), "same", (1, 1), 2, id="groups2-s2-same"),
    pytest.param((6, 7), 3, 3, (3, 3), (1, 1), "same", (1, 1), 3, id="depthwise"),
    pytest.param((6, 7), 3, 6, (3, 3), (2, 2), "valid", (1, 1), 3, id="depthwise-x2"),
    pytest.param((7, 9), 2, 4, (3, 3), (1, 1), "same", (2, 2), 2, id="depthwise-x2-d2-same"),
]


def _conv_data(dtype, hw, channels, filters, kernel, groups, seed=0, batch=2):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *hw, channels)).astype(dtype)
    k = rng.standard_normal((*kernel, channels // groups, filters)).astype(dtype)
    b = rng.standard_normal(filters).astype(dtype)
    return x, k, b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw, channels, filters, kernel, strides, padding, dilation, groups", CONV_CASES)
def test_conv2d_matches_loops(dtype, hw, channels, filters, kernel, strides, padding, dilation, groups):
    x, k, b = _conv_data(dtype, hw, channels, filters, kernel, groups)
    pads = paddings_2d(hw, kernel, strides, padding, dilation)
    y, cols = conv2d_forward(x, k, b, strides, pads, dilation, groups)
    y_ref = reference.conv2d_loops(x, k, b, strides, padding, dilation, groups)
    assert y.shape == (2, *output_hw(hw, kernel, strides, padding, dilation), filters)
    _close(y, y_ref, dtype)

    dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    dx, dk, db = conv2d_backward(dy, cols, x.shape, k, strides, pads, dilation, groups)
    dx_ref, dk_ref, db_ref = reference.conv2d_backward_loops(dy, x, k, strides, padding, dilation, groups)
    _close(dx, dx_ref, dtype)
    _close(dk, dk_ref, dtype)
    _close(db, db_ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_without_bias_and_without_dx(dtype):
    x, k, _ = _conv_data(dtype, (5, 6), 3, 4, (3, 3), 1, seed=3, batch=3)
    pads = paddings_2d((5, 6), (3, 3), (1, 1), "same")
    y, cols = conv2d_forward(x, k, None, (1, 1), pads, (1, 1))
    _close(y, reference.conv2d_loops(x, k, None, (1, 1), "same"), dtype)
    dy = np.random.default_rng(4).standard_normal(y.shape).astype(dtype)
    dx, dk, db = conv2d_backward(dy, cols, x.shape, k, (1, 1), pads, (1, 1), need_dx=False)
    assert dx is None
    _, dk_ref, db_ref = reference.conv2d_backward_loops(dy, x, k, (1, 1), "same")
    _close(dk, dk_ref, dtype)
    _close(db, db_ref, dtype)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv2d_convenience_wrapper(padding):
    x, k, b = _conv_data(np.float64, (7, 9), 2, 3, (3, 2), 1, seed=5)
    y = conv2d(x, k, b, strides=(2, 1), padding=padding.upper())
    _close(y, reference.conv2d_loops(x, k, b, (2, 1), padding), np.float64)


def test_conv2d_is_cross_correlation_by_hand():
    """A 1-channel 3x3 input, 2x2 kernel, valid: each output the dot product of its window with the kernel."""
    x = np.arange(9, dtype=np.float64).reshape(1, 3, 3, 1)
    k = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 2, 1, 1)
    y = conv2d(x, k)
    # window (0,0) = [[0,1],[3,4]] -> 0 + 2 + 9 + 16 = 27; each step right adds 1+2+3+4 = 10, down adds 30
    np.testing.assert_array_equal(y[0, :, :, 0], [[27.0, 37.0], [57.0, 67.0]])


# ---------------------------------------------------------------- pooling
# (hw, pool_size, strides, padding)
POOL_CASES = [
    pytest.param((6, 8), (2, 2), (2, 2), "valid", id="p2-s2"),
    pytest.param((7, 9), (2, 2), (2, 2), "valid", id="p2-s2-odd"),
    pytest.param((7, 9), (2, 2), (2, 2), "same", id="p2-s2-same-odd"),
    pytest.param((7, 9), (3, 3), (2, 2), "valid", id="p3-s2-overlap"),
    pytest.param((7, 9), (3, 3), (2, 2), "same", id="p3-s2-overlap-same"),
    pytest.param((7, 9), (3, 3), (1, 1), "same", id="p3-s1-same"),
    pytest.param((7, 9), (4, 4), (1, 1), "same", id="p4-s1-same-uneven-pad"),
    pytest.param((7, 9), (5, 5), (3, 3), "same", id="p5-s3-same"),
    pytest.param((7, 9), (2, 3), (1, 2), "valid", id="p2x3-s1x2"),
    pytest.param((7, 9), (3, 2), (2, 3), "same", id="p3x2-s2x3-same"),
    pytest.param((7, 9), (1, 1), (1, 1), "valid", id="p1"),
    pytest.param((7, 9), (2, 2), (3, 3), "valid", id="p2-s3-gaps"),
]


def _pool_data(dtype, hw, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((2, *hw, 3)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw, pool, strides, padding", POOL_CASES)
def test_max_pool_matches_loops(dtype, hw, pool, strides, padding):
    x = _pool_data(dtype, hw)
    pads = paddings_2d(hw, pool, strides, padding)
    y, argmax = max_pool2d_forward(x, pool, strides, pads)
    assert y.shape == (2, *output_hw(hw, pool, strides, padding), 3)
    _close(y, reference.max_pool2d_loops(x, pool, strides, padding), dtype)
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    dx = max_pool2d_backward(dy, argmax, x.shape, pool, strides, pads)
    _close(dx, reference.max_pool2d_backward_loops(dy, x, pool, strides, padding), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw, pool, strides, padding", POOL_CASES)
def test_avg_pool_matches_loops(dtype, hw, pool, strides, padding):
    x = _pool_data(dtype, hw)
    pads = paddings_2d(hw, pool, strides, padding)
    y = avg_pool2d_forward(x, pool, strides, pads)
    _close(y, reference.avg_pool2d_loops(x, pool, strides, padding), dtype)
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    dx = avg_pool2d_backward(dy, x.shape, pool, strides, pads)
    _close(dx, reference.avg_pool2d_backward_loops(dy, x, pool, strides, padding), dtype)


def test_max_pool_padding_never_wins_over_negative_values():
    x = np.full((1, 3, 3, 1), -5.0)
    pads = paddings_2d((3, 3), (2, 2), (2, 2), "same")
    y, _ = max_pool2d_forward(x, (2, 2), (2, 2), pads)
    np.testing.assert_array_equal(y, np.full((1, 2, 2, 1), -5.0))


def test_avg_pool_same_leaves_padding_out_of_the_count():
    """3x3 of ones, 2x2 windows with stride 2 and "same": border windows average 1, 2 or 4 real cells."""
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    pads = paddings_2d((3, 3), (2, 2), (2, 2), "same")
    y = avg_pool2d_forward(x, (2, 2), (2, 2), pads)
    np.testing.assert_allclose(y[0, :, :, 0], [[(1 + 2 + 4 + 5) / 4, (3 + 6) / 2], [(7 + 8) / 2, 9.0]])


@pytest.mark.usefixtures("kernel_path")
@pytest.mark.parametrize("groups", [1, 2])
def test_conv_in_blocks_of_the_batch_equals_one_block(monkeypatch, groups):
    """Large batches run block by block (``ops.conv.BLOCK_BYTES``): outputs equal row by row, gradients summed."""
    from convscope.arraymath import conv

    rng = np.random.default_rng(7)
    x, k = rng.standard_normal((7, 6, 5, 4)), rng.standard_normal((3, 3, 4 // groups, 4))
    b = rng.standard_normal(4)
    pads, args = ((1, 1), (0, 1)), ((2, 2), ((1, 1), (0, 1)), (1, 1), groups)
    y_one, cols_one = conv.conv2d_forward(x, k, b, (2, 2), pads, (1, 1), groups)
    dy = rng.standard_normal(y_one.shape)
    one = conv.conv2d_backward(dy, cols_one, x.shape, k, *args)
    assert len(cols_one) == 1
    per_sample = 3 * 2 * 9 * 4 * 8  # (OH, OW) = (3, 2), a 3x3 window over 4 channels, float64
    monkeypatch.setattr(conv, "BLOCK_BYTES", 2 * per_sample)  # blocks of 2, 2, 2 and 1 samples
    y_blocks, cols_blocks = conv.conv2d_forward(x, k, b, (2, 2), pads, (1, 1), groups)
    assert [c[0] for c in cols_blocks] == [slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 7)]
    np.testing.assert_array_equal(y_blocks, y_one)
    blocks = conv.conv2d_backward(dy, cols_blocks, x.shape, k, *args)
    np.testing.assert_array_equal(blocks[0], one[0])
    for a, b_ in zip(blocks[1:], one[1:]):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)
    assert conv.conv2d_backward(dy, cols_blocks, x.shape, k, *args[:-1], groups, need_dx=False)[0] is None
