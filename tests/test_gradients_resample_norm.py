"""Central-difference gradient checks (float64) of UpSampling2D, Normalization and LayerNormalization.

Same objective and tolerances as tests/test_gradients.py: L = sum(y * R), ``backward(R)`` must return
dL/dx and add dL/dp to every trainable parameter's ``.grad``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_gradients import check_layer, randn, randomize

from convscope.layers.normalization import LayerNormalization
from convscope.layers.preprocessing import Normalization
from convscope.layers.resampling import UpSampling2D

# Every check here runs on both the NumPy ops and the compiled kernels.
pytestmark = pytest.mark.usefixtures("kernel_path", "float64")


# ---------------------------------------------------------------- UpSampling2D
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("size", [2, (2, 3)], ids=["2", "2x3"])
def test_upsampling2d(size, interpolation):
    layer = UpSampling2D(size, interpolation=interpolation)
    check_layer(layer, randn(2, 3, 5, 2, seed=1))
    assert layer.parameters == []


# ---------------------------------------------------------------- Normalization
@pytest.mark.parametrize("invert", [False, True])
@pytest.mark.parametrize("axis", [-1, (1, 3), None], ids=["last", "h-and-c", "scalar"])
def test_normalization_adapted(axis, invert):
    layer = Normalization(axis=axis, invert=invert)
    layer.adapt(randn(6, 3, 4, 2, seed=2) * 2 + 1)
    assert layer.trainable_parameters == []
    check_layer(layer, randn(2, 3, 4, 2, seed=3))


@pytest.mark.parametrize("invert", [False, True])
def test_normalization_given(invert):
    layer = Normalization(mean=[0.5, -1.0, 2.0], variance=[4.0, 0.25, 1.0], invert=invert)
    check_layer(layer, randn(2, 3, 4, 3, seed=4))


def test_normalization_zero_variance_uses_the_floor():
    """A constant feature: std is Keras's epsilon 1e-7, so the gradient is 1e7 (finite)."""
    layer = Normalization(mean=[0.0, 1.0], variance=[0.0, 1.0])
    x = randn(2, 2, seed=5)
    layer(x)
    np.testing.assert_allclose(layer.backward(np.ones((2, 2))), [[1e7, 1.0], [1e7, 1.0]], rtol=1e-12)


# ---------------------------------------------------------------- LayerNormalization
@pytest.mark.parametrize("center, scale", [(True, True), (False, True), (True, False), (False, False)],
                         ids=["center-scale", "scale", "center", "neither"])
@pytest.mark.parametrize("axis", [-1, [1, 2, 3], [1, 3]], ids=["last", "all-but-batch", "h-and-c"])
def test_layer_normalization(axis, center, scale):
    layer = LayerNormalization(axis=axis, center=center, scale=scale)
    layer.build((None, 3, 4, 3))
    randomize(layer, seed=6)
    names = [p.name.rsplit("/", 1)[1] for p in layer.trainable_parameters]
    assert names == ["gamma"] * scale + ["beta"] * center
    check_layer(layer, randn(2, 3, 4, 3, seed=7) * 2 + 0.5)


@pytest.mark.parametrize("axis", [-1, [1, 2, 3]], ids=["last", "all-but-batch"])
def test_layer_normalization_rms_scaling(axis):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        layer = LayerNormalization(axis=axis, rms_scaling=True)
    layer.build((None, 3, 4, 3))
    randomize(layer, seed=8)
    assert [p.name.rsplit("/", 1)[1] for p in layer.trainable_parameters] == ["gamma"]
    check_layer(layer, randn(2, 3, 4, 3, seed=9) * 2 + 0.5)


def test_layer_normalization_dense_input():
    layer = LayerNormalization()
    layer.build((None, 7))
    randomize(layer, seed=10)
    check_layer(layer, randn(3, 7, seed=11))


def test_layer_normalization_accumulates_gradients():
    """Two backward passes add their parameter gradients (a layer called twice in a graph)."""
    layer = LayerNormalization()
    layer.build((None, 4, 5))
    randomize(layer, seed=12)
    x, dy = randn(2, 4, 5, seed=13), randn(2, 4, 5, seed=14)
    layer.forward(x)
    layer.backward(dy)
    once = [p.grad.copy() for p in layer.parameters]
    layer.forward(x)
    layer.backward(dy)
    for first, p in zip(once, layer.parameters):
        np.testing.assert_allclose(p.grad, 2 * first, rtol=1e-14)
