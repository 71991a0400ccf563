"""The fast upsampling and normalization ops agree with the plain-loop references.

``ops.reference_resample`` spells nearest / bilinear upsampling (forward and backward), layer
normalization (forward and backward), Normalization and its statistics out one value at a time;
``ops.upsampling`` and ``ops.normalization`` are held to them in float64 to ~1e-12, over a grid
of factors, odd and even sizes, axes and the rms variant. Inputs stay tiny: the loops are Python.
"""

from __future__ import annotations

import numpy as np
import pytest

from convscope.arraymath import reference_resample as ref
from convscope.arraymath.normalization import (
    layer_norm_backward,
    layer_norm_forward,
    moments,
    normalize,
    normalize_backward,
)
from convscope.arraymath.upsampling import bilinear_matrix, upsample2d, upsample2d_backward

# Every check here runs on both the NumPy ops and the compiled kernels.
pytestmark = pytest.mark.usefixtures("kernel_path")

TOL = dict(rtol=1e-12, atol=1e-12)


def _randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ---------------------------------------------------------------- upsampling
UPSAMPLE_GRID = [
    pytest.param((1, 1), (1, 1), id="identity"),
    pytest.param((2, 2), (3, 5), id="2-odd"),
    pytest.param((2, 2), (4, 4), id="2-even"),
    pytest.param((3, 3), (3, 4), id="3"),
    pytest.param((2, 3), (5, 3), id="2x3"),
    pytest.param((1, 4), (2, 3), id="1x4"),
    pytest.param((3, 1), (1, 2), id="3x1-one-row"),
]


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("size, hw", UPSAMPLE_GRID)
def test_upsample2d_matches_loops(size, hw, interpolation):
    x = _randn(2, *hw, 3, seed=1)
    y = upsample2d(x, size, interpolation)
    expected = ref.upsample2d_loops(x, size, interpolation)
    assert y.shape == (2, hw[0] * size[0], hw[1] * size[1], 3) and y.dtype == np.float64
    np.testing.assert_allclose(y, expected, **TOL)
    dy = _randn(*y.shape, seed=2)
    np.testing.assert_allclose(upsample2d_backward(dy, x.shape, size, interpolation),
                               ref.upsample2d_backward_loops(dy, x.shape, size, interpolation), **TOL)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_upsample2d_backward_is_the_adjoint(interpolation):
    """<upsample(x), dy> == <x, backward(dy)> for any x, dy: the backward is the transpose of the linear map."""
    x, size = _randn(2, 3, 5, 2, seed=3), (2, 3)
    dy = _randn(2, 6, 15, 2, seed=4)
    assert np.isclose(np.sum(upsample2d(x, size, interpolation) * dy),
                      np.sum(x * upsample2d_backward(dy, x.shape, size, interpolation)), rtol=1e-12)


@pytest.mark.parametrize("n_in, factor", [(1, 3), (2, 2), (5, 2), (4, 3), (3, 4)])
def test_bilinear_matrix_rows_are_convex_weights(n_in, factor):
    """Every output is an average of at most two neighbouring inputs; the two edge rows copy the edge."""
    matrix = bilinear_matrix(n_in, factor, np.float64)
    assert matrix.shape == (n_in * factor, n_in)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    assert (matrix >= 0).all() and ((matrix > 0).sum(axis=1) <= 2).all()
    assert matrix[0, 0] == 1.0 and matrix[-1, -1] == 1.0


def test_bilinear_matrix_by_hand():
    """Factor 2 on 3 cells: centres at -0.25, 0.25, 0.75, 1.25, 1.75, 2.25 (in input cells)."""
    expected = np.array([[1, 0, 0], [0.75, 0.25, 0], [0.25, 0.75, 0], [0, 0.75, 0.25], [0, 0.25, 0.75], [0, 0, 1]])
    np.testing.assert_array_equal(bilinear_matrix(3, 2, np.float64), expected)


def test_bilinear_matrix_float32_weights():
    matrix = bilinear_matrix(5, 3, np.float32)
    assert matrix.dtype == np.float32
    np.testing.assert_allclose(matrix, bilinear_matrix(5, 3, np.float64), rtol=0, atol=1e-6)


# ---------------------------------------------------------------- layer normalization
LAYER_NORM_GRID = [
    pytest.param((2, 3, 4, 5), (3,), id="last"),
    pytest.param((2, 3, 4, 5), (1, 2, 3), id="all-but-batch"),
    pytest.param((2, 3, 4, 5), (1, 3), id="h-and-c"),
    pytest.param((2, 3, 4, 5), (2,), id="middle"),
    pytest.param((3, 6), (1,), id="dense"),
]


# (with_gamma, with_beta, rms_scaling): rms_scaling never has a beta
PARAM_VARIANTS = [
    pytest.param(True, True, False, id="gamma-beta"),
    pytest.param(True, False, False, id="gamma"),
    pytest.param(False, True, False, id="beta"),
    pytest.param(False, False, False, id="none"),
    pytest.param(True, False, True, id="rms-gamma"),
    pytest.param(False, False, True, id="rms-none"),
]


@pytest.mark.parametrize("with_gamma, with_beta, rms_scaling", PARAM_VARIANTS)
@pytest.mark.parametrize("shape, axes", LAYER_NORM_GRID)
def test_layer_norm_matches_loops(shape, axes, with_gamma, with_beta, rms_scaling):
    x = _randn(*shape, seed=5) * 2 + 0.5
    param_shape = tuple(shape[d] for d in axes)
    gamma = _randn(*param_shape, seed=6) if with_gamma else None
    beta = _randn(*param_shape, seed=7) if with_beta else None
    bshape = [shape[d] if d in axes else 1 for d in range(len(shape))]

    def broadcast(p):
        return None if p is None else p.reshape(bshape)

    y, mean, inv_std = layer_norm_forward(x, broadcast(gamma), broadcast(beta), axes, 1e-3, rms_scaling)
    np.testing.assert_allclose(y, ref.layer_normalization_loops(x, gamma, beta, axes, 1e-3, rms_scaling), **TOL)
    dy = _randn(*shape, seed=8)
    dx, dgamma, dbeta = layer_norm_backward(dy, x, mean, inv_std, broadcast(gamma), axes, rms_scaling)
    edx, edgamma, edbeta = ref.layer_normalization_backward_loops(dy, x, gamma, axes, 1e-3, rms_scaling)
    np.testing.assert_allclose(dx, edx, **TOL)
    np.testing.assert_allclose(dgamma, edgamma, **TOL)
    np.testing.assert_allclose(dbeta, edbeta, **TOL)
    assert dgamma.shape == dbeta.shape == param_shape


def test_layer_norm_output_statistics():
    """Without gamma and beta each group comes out with mean 0 and variance var / (var + eps)."""
    x = _randn(4, 10, seed=9) * 3
    y, _, _ = layer_norm_forward(x, None, None, (1,), 1e-3)
    np.testing.assert_allclose(y.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=1), x.var(axis=1) / (x.var(axis=1) + 1e-3), rtol=1e-12)


# ---------------------------------------------------------------- Normalization
@pytest.mark.parametrize("invert", [False, True])
def test_normalize_matches_loops(invert):
    x = _randn(2, 3, 4, seed=10)
    mean = _randn(1, 1, 4, seed=11)
    variance = np.array([0.5, 2.0, 0.0, 1e-20]).reshape(1, 1, 4)  # zero and tiny: the 1e-7 floor
    np.testing.assert_allclose(normalize(x, mean, variance, invert), ref.normalization_loops(x, mean, variance, invert),
                               **TOL)
    dy = _randn(*x.shape, seed=12)
    std = np.maximum(np.sqrt(variance), 1e-7)
    np.testing.assert_allclose(normalize_backward(dy, variance, invert), dy * std if invert else dy / std, **TOL)


@pytest.mark.parametrize("shape, keep", [((6, 4), (1,)), ((3, 4, 5, 2), (3,)), ((3, 4, 5, 2), (1, 3)),
                                         ((7,), ()), ((3, 4), (0, 1))])
def test_moments_match_loops(shape, keep):
    data = _randn(*shape, seed=13) * 4 + 10
    reduce_axes = tuple(d for d in range(len(shape)) if d not in keep)
    mean, variance = moments(data, reduce_axes)
    expected_mean, expected_variance = ref.moments_loops(data, keep)
    np.testing.assert_allclose(mean, expected_mean, **TOL)
    np.testing.assert_allclose(variance, expected_variance, **TOL)
