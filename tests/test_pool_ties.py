"""Ties in max pooling: the whole gradient goes to the FIRST maximum in row-major window order.

This is what TensorFlow and PyTorch do. Each case builds an input with exact
ties and states by hand which cell must receive each window's gradient.
"""

from __future__ import annotations

import numpy as np
import pytest

from convscope import layers
from convscope.arraymath import reference
from convscope.arraymath.pool import max_pool2d_backward, max_pool2d_forward
from convscope.arraymath.shapes import paddings_2d

# Every check here runs on both the NumPy ops and the compiled kernels.
pytestmark = pytest.mark.usefixtures("kernel_path")


def pool_dx(x2d, pool, strides, padding, dy2d):
    """dx of MaxPooling2D for one image and one channel, through the layer (fast op) and the loop reference."""
    x = np.asarray(x2d, dtype=np.float64)[None, :, :, None]
    dy = np.asarray(dy2d, dtype=np.float64)[None, :, :, None]
    layer = layers.MaxPooling2D(pool, strides=strides, padding=padding)
    y = layer(x)
    assert y.shape == dy.shape
    dx = layer.backward(dy)
    dx_ref = reference.max_pool2d_backward_loops(dy, x, pool, strides, padding)
    np.testing.assert_array_equal(dx, dx_ref)
    return dx[0, :, :, 0]


def test_all_equal_valid_windows_send_to_top_left():
    dy = [[1.0, 2.0], [3.0, 4.0]]
    dx = pool_dx(np.full((4, 4), 7.0), (2, 2), (2, 2), "valid", dy)
    expected = np.zeros((4, 4))
    expected[0, 0], expected[0, 2], expected[2, 0], expected[2, 2] = 1, 2, 3, 4
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize(
    "window, first",
    [
        ([[1.0, 5.0], [5.0, 2.0]], (0, 1)),  # two maxima: first in row 0 wins
        ([[5.0, 1.0], [2.0, 5.0]], (0, 0)),
        ([[1.0, 2.0], [5.0, 5.0]], (1, 0)),  # same row: leftmost wins
        ([[0.0, 3.0], [3.0, 3.0]], (0, 1)),  # three maxima
        ([[-2.0, -2.0], [-2.0, -2.0]], (0, 0)),  # negative, all equal
    ],
)
def test_two_or_more_equal_maxima(window, first):
    dx = pool_dx(window, (2, 2), (2, 2), "valid", [[1.5]])
    expected = np.zeros((2, 2))
    expected[first] = 1.5
    np.testing.assert_array_equal(dx, expected)


def test_all_equal_same_padding_bottom_right():
    """3x3, 2x2 windows, stride 2, "same": pads (0, 1) on both axes, so the border windows hold padding.

    Padding (-inf) never wins; each window's first REAL cell does: (0,0), (0,2), (2,0), (2,2).
    """
    dy = [[1.0, 2.0], [3.0, 4.0]]
    dx = pool_dx(np.full((3, 3), -5.0), (2, 2), (2, 2), "same", dy)
    np.testing.assert_array_equal(dx, [[1.0, 0.0, 2.0], [0.0, 0.0, 0.0], [3.0, 0.0, 4.0]])


def test_all_equal_same_padding_top_left():
    """3x3, 3x3 windows, stride 1, "same": one padded row/column on every side.

    Windows (0,0), (0,1), (1,0), (1,1) all start at or above/left of cell (0,0), so it takes their four
    gradients; window (0,2) starts at column 1, window (2,0) at row 1, window (2,2) at (1,1), etc.
    """
    dy = np.arange(1.0, 10.0).reshape(3, 3)
    dx = pool_dx(np.zeros((3, 3)), (3, 3), (1, 1), "same", dy)
    expected = np.zeros((3, 3))
    expected[0, 0] = dy[0, 0] + dy[0, 1] + dy[1, 0] + dy[1, 1]
    expected[0, 1] = dy[0, 2] + dy[1, 2]
    expected[1, 0] = dy[2, 0] + dy[2, 1]
    expected[1, 1] = dy[2, 2]
    np.testing.assert_array_equal(dx, expected)


def test_all_equal_overlapping_windows_accumulate():
    """3x3 input, 2x2 windows, stride 1: each window's first cell is its own top-left corner."""
    dy = [[1.0, 2.0], [3.0, 4.0]]
    dx = pool_dx(np.ones((3, 3)), (2, 2), (1, 1), "valid", dy)
    np.testing.assert_array_equal(dx, [[1.0, 2.0, 0.0], [3.0, 4.0, 0.0], [0.0, 0.0, 0.0]])


def test_shared_maximum_of_overlapping_windows_gets_both_gradients():
    """3x3 windows, stride 2, on 5x5: the centre cell (2,2) is in all four windows, tied with two corners."""
    x = np.zeros((5, 5))
    x[2, 2] = 9.0
    x[0, 0] = x[0, 4] = 9.0  # ties with the centre, but earlier in windows (0,0) and (0,1)
    dy = [[1.0, 2.0], [4.0, 8.0]]
    dx = pool_dx(x, (3, 3), (2, 2), "valid", dy)
    expected = np.zeros((5, 5))
    expected[0, 0] = 1.0  # window (0,0): (0,0) comes before (2,2)
    expected[0, 4] = 2.0  # window (0,1), columns 2..4: row 0 is scanned first, so (0,4) beats (2,2)
    expected[2, 2] = 4.0 + 8.0  # windows (1,0) and (1,1): the centre is the first maximum
    np.testing.assert_array_equal(dx, expected)


def test_ties_with_several_channels_and_images():
    """Each (image, channel) picks its own first maximum; fast op and loop reference agree."""
    x = np.zeros((2, 4, 4, 3))
    x[0, 1, 1, 0] = x[0, 0, 1, 0] = 1.0  # channel 0: (0,1) before (1,1)
    x[1, 1, 0, 2] = x[1, 1, 1, 2] = 3.0  # channel 2 of image 1: (1,0) before (1,1)
    pads = paddings_2d((4, 4), (2, 2), (2, 2), "valid")
    y, argmax = max_pool2d_forward(x, (2, 2), (2, 2), pads)
    dy = np.ones_like(y)
    dx = max_pool2d_backward(dy, argmax, x.shape, (2, 2), (2, 2), pads)
    np.testing.assert_array_equal(dx, reference.max_pool2d_backward_loops(dy, x, (2, 2), (2, 2), "valid"))
    assert dx[0, 0, 1, 0] == 1.0 and dx[0, 1, 1, 0] == 0.0
    assert dx[1, 1, 0, 2] == 1.0 and dx[1, 1, 1, 2] == 0.0
    # an all-zero window (every other one here) sends to its top-left corner
    assert dx[0, 0, 0, 1] == 1.0 and dx[0, 0, 1, 1] == 0.0
    assert dx.sum() == dy.sum()


@pytest.mark.parametrize(
    "hw, pool, strides, padding",
    [((6, 7), (2, 2), (2, 2), "valid"), ((6, 7), (3, 3), (2, 2), "same"), ((5, 5), (3, 2), (1, 1), "same")],
)
def test_fast_op_matches_reference_on_heavily_tied_inputs(hw, pool, strides, padding):
    """Values drawn from {0, 1, 2}: almost every window has ties."""
    x = np.random.default_rng(0).integers(0, 3, size=(2, *hw, 2)).astype(np.float32)
    pads = paddings_2d(hw, pool, strides, padding)
    y, argmax = max_pool2d_forward(x, pool, strides, pads)
    np.testing.assert_array_equal(y, reference.max_pool2d_loops(x, pool, strides, padding))
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    dx = max_pool2d_backward(dy, argmax, x.shape, pool, strides, pads)
    np.testing.assert_allclose(
        dx, reference.max_pool2d_backward_loops(dy, x, pool, strides, padding), rtol=1e-6, atol=1e-6
    )


# ---------------------------------------------------------------- GlobalMaxPooling2D
def test_global_max_pooling_all_equal_goes_to_first_cell():
    layer = layers.GlobalMaxPooling2D()
    x = np.full((1, 3, 4, 2), 2.0)
    layer(x)
    dx = layer.backward(np.array([[5.0, 7.0]]))
    expected = np.zeros_like(x)
    expected[0, 0, 0] = [5.0, 7.0]
    np.testing.assert_array_equal(dx, expected)


def test_global_max_pooling_two_maxima_per_channel():
    layer = layers.GlobalMaxPooling2D()
    x = np.zeros((2, 3, 4, 2))
    x[0, 2, 0, 0] = x[0, 1, 2, 0] = 4.0  # row-major: (1,2) comes before (2,0)
    x[0, 0, 3, 1] = x[0, 1, 0, 1] = 1.0  # (0,3) before (1,0)
    x[1, :, :, :] = -1.0
    x[1, 2, 3, 0] = x[1, 2, 2, 0] = 0.5  # same row: (2,2) before (2,3)
    y = layer(x)
    np.testing.assert_array_equal(y, [[4.0, 1.0], [0.5, -1.0]])
    dx = layer.backward(np.array([[1.0, 2.0], [3.0, 4.0]]))
    expected = np.zeros_like(x)
    expected[0, 1, 2, 0] = 1.0
    expected[0, 0, 3, 1] = 2.0
    expected[1, 2, 2, 0] = 3.0
    expected[1, 0, 0, 1] = 4.0  # all equal: the first cell
    np.testing.assert_array_equal(dx, expected)
