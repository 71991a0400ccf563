"""Central-difference gradient checks, in float64, of the reshaping layers (Reshape, Permute, ZeroPadding2D,
Cropping2D) and of the Softmax and LeakyReLU layers, through ``check_layer`` of test_gradients.py."""

from __future__ import annotations

import numpy as np
import pytest
from test_gradients import check_layer, randn

from convscope.layers.activation import LeakyReLU, Softmax
from convscope.layers.reshaping import Cropping2D, Permute, Reshape, ZeroPadding2D

# Every check here runs on both the NumPy ops and the compiled kernels.
pytestmark = pytest.mark.usefixtures("kernel_path", "float64")


@pytest.mark.parametrize(
    "make, shape, expected",
    [
        (lambda: Reshape((-1, 2)), (2, 3, 4), (2, 6, 2)),
        (lambda: Reshape((4, 6)), (2, 3, 4, 2), (2, 4, 6)),
        (lambda: Reshape((2, -1, 3)), (3, 12), (3, 2, 2, 3)),
    ],
)
def test_reshape(make, shape, expected):
    y, _, _ = check_layer(make(), randn(*shape, seed=1))
    assert y.shape == expected


@pytest.mark.parametrize(
    "make, shape, expected",
    [
        (lambda: Permute((2, 1)), (2, 3, 4), (2, 4, 3)),
        (lambda: Permute((3, 1, 2)), (2, 3, 4, 2), (2, 2, 3, 4)),
        (lambda: Permute((2, 3, 1)), (2, 3, 4, 2), (2, 4, 2, 3)),
    ],
)
def test_permute(make, shape, expected):
    y, _, _ = check_layer(make(), randn(*shape, seed=2))
    assert y.shape == expected


@pytest.mark.parametrize(
    "make, expected_hw",
    [
        (lambda: ZeroPadding2D(), (6, 7)),
        (lambda: ZeroPadding2D(2), (8, 9)),
        (lambda: ZeroPadding2D((2, 0)), (8, 5)),
        (lambda: ZeroPadding2D(((1, 2), (0, 3))), (7, 8)),
    ],
    ids=["default", "int", "symmetric", "pairs"],
)
def test_zero_padding(make, expected_hw):
    y, dx, _ = check_layer(make(), randn(2, 4, 5, 2, seed=3))
    assert y.shape[1:3] == expected_hw and dx.shape == (2, 4, 5, 2)


@pytest.mark.parametrize(
    "make, expected_hw",
    [
        (lambda: Cropping2D(), (5, 6)),
        (lambda: Cropping2D(1), (3, 4)),
        (lambda: Cropping2D((2, 1)), (1, 4)),
        (lambda: Cropping2D(((0, 2), (3, 1))), (3, 2)),
    ],
    ids=["default", "int", "symmetric", "pairs"],
)
def test_cropping(make, expected_hw):
    y, dx, _ = check_layer(make(), randn(2, 5, 6, 2, seed=4))
    assert y.shape[1:3] == expected_hw and dx.shape == (2, 5, 6, 2)
    assert (dx[:, 0] == 0).all() == (make().cropping[0][0] > 0)  # cropped rows get no gradient


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: Softmax(), (2, 3, 4)),
        (lambda: Softmax(axis=-1), (2, 3, 4, 3)),
        (lambda: Softmax(axis=1), (2, 3, 4)),
        (lambda: Softmax(axis=1), (2, 3, 4, 2)),
        (lambda: Softmax(axis=2), (2, 3, 4, 2)),
        (lambda: Softmax(axis=[1, 2]), (2, 3, 2, 2)),
    ],
    ids=["last", "last-4d", "axis1", "axis1-4d", "axis2-4d", "axes12"],
)
def test_softmax(make, shape):
    layer = make()
    y, _, _ = check_layer(layer, randn(*shape, seed=5) * 2)
    axes = tuple(layer.axis) if isinstance(layer.axis, list) else layer.axis
    np.testing.assert_allclose(y.sum(axis=axes), 1.0, rtol=1e-12)


@pytest.mark.parametrize("make", [lambda: LeakyReLU(), lambda: LeakyReLU(negative_slope=0.1),
                                  lambda: LeakyReLU(negative_slope=0)], ids=["default", "0.1", "0"])
def test_leaky_relu_away_from_zero(make):
    x = randn(2, 3, 4, 2, seed=6)
    x = np.where(np.abs(x) < 1e-2, 0.05, x)  # no input within reach of eps of the kink at 0
    assert (x < 0).any() and (x > 0).any()
    layer = make()
    _, dx, _ = check_layer(layer, x)
    R = np.random.default_rng(1000).standard_normal(x.shape)  # check_layer's upstream gradient for seed 0
    np.testing.assert_allclose(dx, np.where(x > 0, R, layer.negative_slope * R), rtol=1e-15)
