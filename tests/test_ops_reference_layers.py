"""Dense, global pooling, batch normalization (inference) and Rescaling held to their plain loops, in float64."""

import numpy as np
import pytest

from convscope import layers
from convscope.arraymath import reference

pytestmark = pytest.mark.usefixtures("float64")


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("shape, units, use_bias", [((3, 5), 4, True), ((2, 3, 4, 5), 3, False), ((1, 7), 1, True)])
def test_dense(shape, units, use_bias):
    layer = layers.Dense(units, use_bias=use_bias)
    layer.build((None, *shape[1:]))
    layer.set_weights([rand(*w.shape, seed=1) for w in layer.get_weights()])
    x = rand(*shape, seed=2)
    expected = reference.dense_loops(x, layer.kernel.value, layer.bias.value if use_bias else None)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls, kind", [(layers.GlobalAveragePooling2D, "average"), (layers.GlobalMaxPooling2D, "max")])
def test_global_pooling(cls, kind):
    x = rand(3, 5, 7, 2, seed=3)
    np.testing.assert_allclose(cls().forward(x), reference.global_pool2d_loops(x, kind), rtol=1e-12, atol=1e-12)


def test_batch_normalization_inference():
    layer = layers.BatchNormalization(epsilon=1e-2)
    layer.build((None, 4, 5, 3))
    gamma, beta, mean, var = rand(3, seed=4), rand(3, seed=5), rand(3, seed=6), np.abs(rand(3, seed=7)) + 0.1
    layer.set_weights([gamma, beta, mean, var])
    x = rand(2, 4, 5, 3, seed=8)
    np.testing.assert_allclose(layer.forward(x, training=False),
                               reference.batch_normalization_loops(x, gamma, beta, mean, var, 1e-2), rtol=1e-12)


@pytest.mark.parametrize("scale, offset", [(1 / 255, 0.0), ([0.5, 2.0, -1.0], [1.0, 0.0, 0.5]), (2.0, -1.0)])
def test_rescaling(scale, offset):
    x = rand(2, 3, 4, 3, seed=9)
    np.testing.assert_allclose(layers.Rescaling(scale, offset).forward(x), reference.rescaling_loops(x, scale, offset),
                               rtol=1e-12, atol=1e-15)
