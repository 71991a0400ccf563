import json
import math
import re

import numpy as np
import pytest

from convscope import activations, backend
from convscope.activations import ELU, GELU, LeakyReLU
from convscope.layers import Conv2D, Dense
from convscope.layers.activation import LeakyReLU as LeakyReLULayer
from convscope.layers.activation import Softmax
from convscope.arraymath.reference_softmax import softmax_loops

NAMES = [
    "linear", "relu", "leaky_relu", "elu", "selu", "gelu", "sigmoid",
    "tanh", "softplus", "softsign", "silu", "swish", "softmax",
    "relu6", "hard_sigmoid", "hard_silu", "hard_swish",
]  # fmt: skip
ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}

ACTIVATIONS = {name: activations.get(name) for name in NAMES}
ACTIVATIONS.update(
    {
        "leaky_relu(0.1)": LeakyReLU(negative_slope=0.1),
        "elu(0.5)": ELU(alpha=0.5),
        "gelu(approximate)": GELU(approximate=True),
    }
)


@pytest.fixture
def float64():
    backend.set_floatx("float64")
    yield
    backend.set_floatx("float32")


def _away_from_kink(shape, seed):
    rng = np.random.default_rng(seed)
    # |x| >= 0.1 keeps the central difference off relu's, leaky_relu's and elu's kink at 0.
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.1, 3.0, shape)


def _numerical_gradient(f, x, dy, h=1e-5):
    """d(sum(f(x) * dy))/dx by central differences, one element at a time."""
    dx = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = h
        dx[i] = (np.sum(f(x + step) * dy) - np.sum(f(x - step) * dy)) / (2 * h)
    return dx


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_gradient_matches_central_difference(name, float64):
    act = ACTIVATIONS[name]
    x = _away_from_kink((4, 5), seed=0)
    dy = np.random.default_rng(1).normal(size=x.shape)
    y = act(x)
    analytic = act.gradient(x, y, dy)
    numeric = _numerical_gradient(act, x, dy)
    assert analytic.dtype == np.float64
    error = np.linalg.norm(analytic - numeric) / max(np.linalg.norm(analytic), np.linalg.norm(numeric))
    assert error < 1e-6


def test_softmax_gradient_is_full_jacobian_product(float64):
    x = np.random.default_rng(2).normal(size=(3, 6))
    dy = np.random.default_rng(3).normal(size=(3, 6))
    y = activations.softmax(x)
    for row in range(3):
        jacobian = np.diag(y[row]) - np.outer(y[row], y[row])
        assert np.allclose(activations.softmax.gradient(x, y, dy)[row], jacobian @ dy[row], atol=1e-12)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(name, dtype):
    act = ACTIVATIONS[name]
    x = _away_from_kink((2, 3), seed=4).astype(dtype)
    y = act(x)
    assert y.dtype == dtype
    assert act.gradient(x, y, np.ones_like(x)).dtype == dtype


def test_integer_input_becomes_floatx(float64):
    assert activations.relu(np.array([-1, 2])).dtype == np.float64


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_inputs_stay_finite(name, dtype):
    act = ACTIVATIONS[name]
    x = np.array([[-1e4, -1e3, -30.0, 0.0, 30.0, 1e3, 1e4]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = act(x)
        dx = act.gradient(x, y, np.ones_like(x))
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))


def test_extreme_values():
    big = np.array([-1e4, 1e4], dtype=np.float32)
    assert np.array_equal(activations.sigmoid(big), [0.0, 1.0])
    assert np.array_equal(activations.softplus(big), [0.0, 1e4])
    assert np.allclose(activations.softmax(big), [0.0, 1.0])
    assert np.allclose(activations.softmax(np.array([1e4, 1e4])), [0.5, 0.5])


def test_keras_defaults_and_constants():
    x = np.array([-1.0, 1.0])
    assert np.allclose(activations.leaky_relu(x), [-0.2, 1.0])
    assert np.allclose(activations.elu(x), [math.expm1(-1.0), 1.0])
    assert np.allclose(activations.selu(x), [1.05070098 * 1.67326324 * math.expm1(-1.0), 1.05070098])
    # Exact gelu: x * Phi(x); the tanh approximation differs in the 4th decimal.
    phi = 0.5 * (1 + math.erf(1 / math.sqrt(2)))
    assert activations.gelu(np.array([1.0]))[0] == pytest.approx(phi, abs=1e-12)
    assert GELU(approximate=True)(np.array([1.0]))[0] != pytest.approx(phi, abs=1e-6)
    assert np.allclose(activations.silu(x), x / (1 + np.exp(-x)))
    assert np.allclose(activations.softsign(x), [-0.5, 0.5])
    assert np.allclose(activations.softmax(np.array([[1.0, 2.0, 3.0]])).sum(axis=-1), 1.0)


def test_gelu_without_scipy_matches(monkeypatch):
    x = np.linspace(-5, 5, 41, dtype=np.float32)
    expected = 0.5 * x * (1 + np.array([math.erf(v / math.sqrt(2)) for v in x.astype(np.float64)]))
    monkeypatch.setattr(activations, "_erf", None)
    y = activations.gelu(x)
    assert y.dtype == np.float32
    assert np.allclose(y, expected, atol=1e-6)


def test_module_level_functions():
    x = np.array([-2.0, 3.0])
    assert np.array_equal(activations.relu(x), [0.0, 3.0])
    assert np.array_equal(activations.linear(x), x)
    assert activations.swish is activations.silu
    assert activations.hard_swish is activations.hard_silu


@pytest.mark.parametrize("name", NAMES)
def test_get_serialize_round_trip(name):
    act = activations.get(name)
    assert activations.get(activations.serialize(act)) is act
    assert act.name == ALIASES.get(name, name)
    assert activations.get(act) is act


def test_get_none_is_linear():
    assert activations.get(None) is activations.linear


def test_get_unknown_name():
    with pytest.raises(ValueError, match=r"activations.get: argument `identifier` expected one of .*'relu'.*received 'rleu'"):
        activations.get("rleu")


def test_get_and_serialize_bad_types():
    with pytest.raises(TypeError, match=r"received <built-in function abs> of type builtin_function_or_method"):
        activations.get(abs)
    with pytest.raises(TypeError, match=r"activations.serialize: argument `activation` expected an Activation, received 'relu'"):
        activations.serialize("relu")


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_docstring_states_function_and_derivative(name):
    doc = type(ACTIVATIONS[name]).__doc__
    assert "f(x)" in doc and "f'" in doc or "df_i/dx_j" in doc


# ---------------------------------------------------------------- relu6, hard_sigmoid, hard_silu
# Points on every piece of each function, at least 0.05 from its kinks (relu6: 0 and 6; hard_*: -3 and 3).
PIECEWISE_X = np.array([[-7.5, -4.0, -3.05, -2.95, -1.2, -0.05, 0.05, 0.7],
                        [1.9, 2.95, 3.05, 4.4, 5.95, 6.05, 8.0, 11.0]])

KERAS_FORMULAS = {
    "relu6": (lambda x: np.minimum(np.maximum(x, 0.0), 6.0), lambda x: ((x > 0) & (x < 6)) * 1.0),
    "hard_sigmoid": (lambda x: np.clip(x / 6 + 0.5, 0.0, 1.0), lambda x: ((x > -3) & (x < 3)) / 6.0),
    "hard_silu": (lambda x: x * np.clip(x / 6 + 0.5, 0.0, 1.0),
                  lambda x: np.where(x >= 3, 1.0, np.where(x > -3, (2 * x + 3) / 6, 0.0))),
}


@pytest.mark.parametrize("name", KERAS_FORMULAS)
def test_piecewise_values_and_gradients_match_keras_formulas(name, float64):
    act = activations.get(name)
    value, slope = KERAS_FORMULAS[name]
    x = PIECEWISE_X
    y = act(x)
    np.testing.assert_allclose(y, value(x), rtol=1e-15, atol=1e-15)
    dy = np.random.default_rng(5).normal(size=x.shape)
    np.testing.assert_allclose(act.gradient(x, y, dy), slope(x) * dy, rtol=1e-14, atol=1e-15)
    numeric = _numerical_gradient(act, x, dy)
    np.testing.assert_allclose(act.gradient(x, y, dy), numeric, rtol=1e-6, atol=1e-8)


def test_piecewise_keras_values_at_the_kinks():
    x = np.array([-3.0, 0.0, 3.0, 6.0])
    np.testing.assert_array_equal(activations.relu6(x), [0.0, 0.0, 3.0, 6.0])
    np.testing.assert_array_equal(activations.hard_sigmoid(x), [0.0, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(activations.hard_silu(x), [0.0, 0.0, 3.0, 6.0])
    # hard_sigmoid is relu6(x + 3) / 6, as Keras 3 defines it
    np.testing.assert_allclose(activations.hard_sigmoid(PIECEWISE_X), activations.relu6(PIECEWISE_X + 3) / 6,
                               rtol=1e-15)


@pytest.mark.parametrize("name", ["relu6", "hard_sigmoid", "hard_silu", "hard_swish"])
def test_piecewise_activations_usable_by_name_in_layers(name):
    layer = Conv2D(2, 3, activation=name)
    assert layer.activation is activations.get(name)
    assert layer.get_config()["activation"] == ALIASES.get(name, name)
    dense = Dense(3, activation=name)
    y = dense(np.random.default_rng(6).normal(size=(2, 4)).astype(np.float32) * 8)
    assert y.dtype == np.float32 and y.shape == (2, 3)


def test_leaky_relu_function_keeps_keras_default_of_0_2():
    assert activations.leaky_relu.negative_slope == 0.2
    assert LeakyReLU().negative_slope == 0.2


# ---------------------------------------------------------------- the Softmax and LeakyReLU layers
def test_leaky_relu_layer_default_is_keras_3s_0_3():
    layer = LeakyReLULayer()
    assert layer.negative_slope == 0.3
    np.testing.assert_allclose(layer(np.array([[-10.0, -5.0, 0.0, 5.0, 10.0]])), [[-3.0, -1.5, 0.0, 5.0, 10.0]])
    y = LeakyReLULayer(negative_slope=0.5)(np.array([[-10.0, 5.0]], dtype=np.float32))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [[-5.0, 5.0]])


@pytest.mark.parametrize("value", [-0.1, None, "0.3", True])
def test_leaky_relu_layer_refuses_bad_slopes(value):
    with pytest.raises(ValueError, match=r'LeakyReLU "[a-z0-9_]+": argument "negative_slope" must be a number >= 0, '
                                         rf"received {re.escape(repr(value))}"):
        LeakyReLULayer(negative_slope=value)


@pytest.mark.parametrize("axis", [-1, 1, 2, -2, [1, 2], [-1, 1]])
def test_softmax_layer_normalizes_along_its_axis(axis, float64):
    x = np.random.default_rng(7).normal(size=(2, 3, 4, 5)) * 3
    y = Softmax(axis=axis)(x)
    axes = tuple(axis) if isinstance(axis, list) else axis
    e = np.exp(x - x.max(axis=axes, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(axis=axes, keepdims=True), rtol=1e-13)
    np.testing.assert_allclose(y.sum(axis=axes), 1.0, rtol=1e-13)


def test_softmax_layer_on_the_last_axis_shares_the_fusable_softmax():
    assert Softmax().activation is activations.softmax
    assert Softmax(axis=[-1]).activation is activations.softmax
    # any other axis must not look like "softmax" to the model, which fuses that with a last-axis cross-entropy
    assert Softmax(axis=1).activation.name != "softmax"
    assert Softmax(axis=1)(np.zeros((2, 4, 3), np.float32)).dtype == np.float32


@pytest.mark.parametrize(
    "axis, pattern",
    [
        (1.0, r'argument "axis" must be an int or a non-empty list of ints, received 1\.0'),
        ([], r'argument "axis" must be an int or a non-empty list of ints, received \[\]'),
        (True, r'argument "axis" must be an int or a non-empty list of ints, received True'),
    ],
)
def test_softmax_layer_refuses_bad_axis_types(axis, pattern):
    with pytest.raises(TypeError, match=r'Softmax "[a-z0-9_]+": ' + pattern):
        Softmax(axis=axis)


@pytest.mark.parametrize("axis", [0, -4, 4, [1, -3]])
def test_softmax_layer_refuses_the_batch_axis_and_missing_axes(axis):
    with pytest.raises(ValueError, match=r'Softmax "[a-z0-9_]+": argument "axis" must name distinct non-batch axes '
                                         rf"of the rank-4 input, received axis={re.escape(repr(axis))} "
                                         r"for input shape \(None, 2, 3, 4\)"):
        Softmax(axis=axis).build((None, 2, 3, 4))


@pytest.mark.parametrize(
    "make, key, value",
    [
        (lambda: Softmax(axis=2, name="sm"), "axis", 2),
        (lambda: Softmax(axis=[1, 2]), "axis", [1, 2]),
        (lambda: LeakyReLULayer(negative_slope=0.1, trainable=False), "negative_slope", 0.1),
    ],
)
def test_softmax_and_leaky_relu_layer_configs_round_trip(make, key, value):
    layer = make()
    config = layer.get_config()
    assert config[key] == value and "activation" not in config
    json.dumps(config)
    rebuilt = type(layer).from_config(config)
    assert rebuilt.get_config() == config
    x = np.random.default_rng(8).normal(size=(2, 3, 4))
    np.testing.assert_array_equal(rebuilt(x), layer(x))


def test_softmax_and_leaky_relu_layers_name_their_loop_reference():
    assert Softmax.LOOP_REFERENCE == "convscope.arraymath.reference_softmax.softmax_loops"
    x = np.random.default_rng(9).normal(size=(2, 3, 4))
    np.testing.assert_allclose(Softmax(axis=1)(x), softmax_loops(x, 1), rtol=1e-12)
    assert LeakyReLULayer.LOOP_REFERENCE.startswith("none: ")
