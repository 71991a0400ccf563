import math

import numpy as np
import pytest

from convscope import activations, backend
from convscope.activations import ELU, GELU, LeakyReLU

NAMES = [
    "linear", "relu", "leaky_relu", "elu", "selu", "gelu", "sigmoid",
    "tanh", "softplus", "softsign", "silu", "swish", "softmax",
]  # fmt: skip

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


@pytest.mark.parametrize("name", NAMES)
def test_get_serialize_round_trip(name):
    act = activations.get(name)
    assert activations.get(activations.serialize(act)) is act
    assert act.name == ("silu" if name == "swish" else name)
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
