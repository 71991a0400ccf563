"""Rescaling (y = x * scale + offset), the layer added for Keras models that carry their own preprocessing."""

from __future__ import annotations

import numpy as np
import pytest

import convscope
from convscope import backend, layers


@pytest.fixture(autouse=True)
def float64():
    previous = backend.floatx()
    backend.set_floatx("float64")
    layers.clear_session()
    yield
    backend.set_floatx(previous)


@pytest.mark.parametrize("scale, offset", [(1 / 255, 0.0), (2.0, -1.0), ([0.5, -2.0, 3.0], [0.1, 0.0, -0.3])])
def test_forward_and_gradient_by_central_differences(scale, offset):
    rng = np.random.default_rng(0)
    layer = layers.Rescaling(scale, offset=offset)
    x = rng.standard_normal((2, 4, 5, 3))
    y = layer(x)
    np.testing.assert_allclose(y, x * np.asarray(scale) + np.asarray(offset), rtol=1e-15)
    R = rng.standard_normal(y.shape)  # L = sum(y * R), so dL/dy = R
    dx = layer.backward(R)
    eps, numeric = 1e-6, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[i] += eps
        minus[i] -= eps
        numeric[i] = ((layer.forward(plus) - layer.forward(minus)) * R).sum() / (2 * eps)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-9)


def test_integer_input_becomes_floatx():
    y = layers.Rescaling(1 / 255)(np.full((1, 2, 2, 1), 255, dtype=np.uint8))
    assert y.dtype == np.float64 and np.allclose(y, 1.0)


def test_config_round_trip_and_model_file(tmp_path):
    model = convscope.Sequential([
        convscope.Input(shape=(4, 4, 2)), layers.Rescaling([1.0, 0.5], offset=-1.0), layers.Flatten(), layers.Dense(3),
    ])
    spec = layers.serialize(model.layers[0])
    assert spec == {"class_name": "Rescaling",
                    "config": {"name": "rescaling", "trainable": True, "scale": [1.0, 0.5], "offset": -1.0}}
    assert layers.deserialize(spec).get_config() == spec["config"]
    model.save(tmp_path / "m.convscope")
    x = np.random.default_rng(1).uniform(0, 255, (3, 4, 4, 2))
    np.testing.assert_array_equal(convscope.load_model(tmp_path / "m.convscope").predict(x), model.predict(x))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(scale="1/255"), TypeError, r'Rescaling "rescaling": argument "scale" must be a number or a list of numbers'),
    (dict(scale=1.0, offset=[True]), TypeError, r'argument "offset" must be a number or a list'),
    (dict(scale=[]), TypeError, r'argument "scale" must be a number or a list'),
])
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        layers.Rescaling(**kwargs)


def test_per_channel_length_must_match_the_channels():
    with pytest.raises(ValueError, match=r'argument "scale" has 2 entries, the input has 3 channels'):
        layers.Rescaling([1.0, 2.0])(np.zeros((1, 2, 2, 3)))
