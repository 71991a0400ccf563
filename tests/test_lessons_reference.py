"""The single-channel loop definitions the lessons are written with (``ops.reference``), held to
independent computations: the layer's own loop reference, NumPy's 1-D convolution, hand-worked
examples, and scipy.signal where it is installed."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.arraymath import reference
from convscope.arraymath.reference import (
    convolve2d_loops,
    correlate2d_loops,
    dilate2d,
    full_convolve2d_loops,
    rotate180,
)

rng = np.random.default_rng(0)
IMAGE = rng.standard_normal((6, 7))
KERNEL = rng.standard_normal((3, 2))


def test_correlation_is_what_the_conv_layer_reference_computes_for_one_channel_and_one_filter():
    expected = reference.conv2d_loops(IMAGE[None, :, :, None], KERNEL[:, :, None, None])[0, :, :, 0]
    np.testing.assert_allclose(correlate2d_loops(IMAGE, KERNEL), expected, rtol=1e-13, atol=1e-13)


def test_hand_worked_example_correlation_slides_unflipped_convolution_flips():
    image = np.arange(9.0).reshape(3, 3)          # [[0 1 2] [3 4 5] [6 7 8]]
    kernel = np.array([[1.0, 0.0], [0.0, 0.0]])   # picks the window's top-left cell
    np.testing.assert_array_equal(correlate2d_loops(image, kernel), [[0, 1], [3, 4]])
    np.testing.assert_array_equal(convolve2d_loops(image, kernel), [[4, 5], [7, 8]])   # flipped: bottom-right
    np.testing.assert_array_equal(rotate180(kernel), [[0, 0], [0, 1]])


def test_convolution_is_correlation_with_the_rotated_kernel():
    np.testing.assert_allclose(convolve2d_loops(IMAGE, KERNEL), correlate2d_loops(IMAGE, rotate180(KERNEL)),
                               rtol=1e-13, atol=1e-13)


def test_full_convolution_of_single_rows_is_numpys_convolve():
    a, k = rng.standard_normal(9), rng.standard_normal(4)
    np.testing.assert_allclose(full_convolve2d_loops(a[None], k[None])[0], np.convolve(a, k), rtol=1e-13, atol=1e-13)


def test_full_convolution_of_outer_products_is_the_outer_product_of_the_1d_convolutions():
    a_rows, a_cols, k_rows, k_cols = (rng.standard_normal(n) for n in (5, 6, 3, 2))
    expected = np.outer(np.convolve(a_rows, k_rows), np.convolve(a_cols, k_cols))
    np.testing.assert_allclose(full_convolve2d_loops(np.outer(a_rows, a_cols), np.outer(k_rows, k_cols)), expected,
                               rtol=1e-12, atol=1e-12)


def test_leading_axes_broadcast_like_one_call_per_pair():
    images, kernels = rng.standard_normal((2, 1, 5, 5)), rng.standard_normal((1, 3, 2, 2))
    for function in (correlate2d_loops, convolve2d_loops, full_convolve2d_loops):
        stacked = function(images, kernels)
        assert stacked.shape[:2] == (2, 3)
        for n in range(2):
            for f in range(3):
                np.testing.assert_array_equal(stacked[n, f], function(images[n, 0], kernels[0, f]))


def test_dilation_spreads_cells_onto_the_stride_grid():
    np.testing.assert_array_equal(dilate2d(np.array([[1.0, 2.0], [3.0, 4.0]]), (2, 3)),
                                  [[1, 0, 0, 2], [0, 0, 0, 0], [3, 0, 0, 4]])


def test_against_scipy_signal():
    signal = pytest.importorskip("scipy.signal", reason="scipy is optional; the tests above do not need it")
    np.testing.assert_allclose(correlate2d_loops(IMAGE, KERNEL), signal.correlate2d(IMAGE, KERNEL, "valid"),
                               rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(convolve2d_loops(IMAGE, KERNEL), signal.convolve2d(IMAGE, KERNEL, "valid"),
                               rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(full_convolve2d_loops(IMAGE, KERNEL), signal.convolve2d(IMAGE, KERNEL, "full"),
                               rtol=1e-13, atol=1e-13)
