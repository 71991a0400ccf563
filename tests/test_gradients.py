"""Central-difference gradient checks, in float64, of every layer and of a whole model.

For a layer with output y = f(x; params) the scalar objective is L = sum(y * R)
with a fixed random R, so dL/dy = R: ``backward(R)`` must return dL/dx and fill
every parameter's ``.grad`` with dL/dp. Each is compared with

    dL/dv[i] ~ (L(v[i] + eps) - L(v[i] - eps)) / (2 eps)

through the relative error ||a - b|| / max(||a|| + ||b||, tiny) < 1e-6, plus an
element-wise tolerance so a single wrong entry cannot hide in the norm.
Inputs avoid kinks (ReLU's threshold, max pooling's near-ties).
"""

from __future__ import annotations

import numpy as np
import pytest

from convscope import layers
from convscope.models import Sequential

# Every check here runs on both the NumPy ops and the compiled kernels.
pytestmark = pytest.mark.usefixtures("kernel_path", "float64")

EPS = 1e-6
MAX_REL_ERR = 1e-6


def rel_error(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-30))


def numeric_grad(loss, value) -> np.ndarray:
    """d loss() / d value by central differences, perturbing ``value`` in place (and restoring it)."""
    grad = np.zeros_like(value)
    for i in np.ndindex(value.shape):
        original = value[i]
        value[i] = original + EPS
        plus = loss()
        value[i] = original - EPS
        minus = loss()
        value[i] = original
        grad[i] = (plus - minus) / (2 * EPS)
    return grad


def assert_grad_close(analytic, numeric, what: str) -> None:
    assert analytic.shape == numeric.shape, f"{what}: shape {analytic.shape} != {numeric.shape}"
    err = rel_error(analytic, numeric)
    assert err < MAX_REL_ERR, f"{what}: relative error {err:.2e}"
    scale = max(np.abs(numeric).max(), 1.0)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7 * scale, err_msg=what)


def check_layer(layer, x, training=False, seed=0, fresh_forward=None):
    """Check dL/dx and dL/d(every trainable parameter) of ``layer`` at ``x`` against finite differences.

    ``fresh_forward`` (optional) replaces ``layer.forward`` for the numeric side, for layers whose
    forward draws randomness (dropout re-seeded on every call).
    """
    x = np.array(x, dtype=np.float64)
    if not layer.built:
        layer.build((None, *x.shape[1:]))
    forward = fresh_forward or (lambda inp: layer.forward(inp, training=training))
    for p in layer.parameters:
        p.grad[...] = 0
    y = layer.forward(x, training=training)
    assert y.dtype == np.float64
    R = np.random.default_rng(seed + 1000).standard_normal(y.shape)
    dx = layer.backward(R.copy())

    def loss():
        return float(np.sum(forward(x) * R))

    analytic = {p.name: p.grad.copy() for p in layer.trainable_parameters}
    assert_grad_close(dx, numeric_grad(loss, x), f"{layer.name} input")
    for p in layer.trainable_parameters:
        assert p.value.dtype == np.float64
        assert_grad_close(analytic[p.name], numeric_grad(loss, p.value), p.name)
    return y, dx, analytic


def randomize(layer, seed=0, scale=0.5):
    """Random weights (biases too, so they matter) with a fixed seed."""
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.standard_normal(w.shape) * scale for w in layer.get_weights()])


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def distinct(*shape, seed=0, spacing=0.05):
    """A shuffled grid of values at least ``spacing`` apart: max pooling has no near-ties."""
    values = np.arange(np.prod(shape)) * spacing - np.prod(shape) * spacing / 2
    return np.random.default_rng(seed).permutation(values).reshape(shape)


# ---------------------------------------------------------------- Conv2D
# (hw, channels, filters, kernel_size, strides, padding, dilation_rate, groups)
CONV_GRID = [
    pytest.param((5, 6), 2, 3, 1, 1, "valid", 1, 1, id="k1"),
    pytest.param((5, 6), 2, 3, 2, 1, "same", 1, 1, id="k2-same"),
    pytest.param((5, 6), 2, 3, 3, 1, "valid", 1, 1, id="k3-valid"),
    pytest.param((5, 6), 2, 2, 3, 1, "same", 1, 1, id="k3-same"),
    pytest.param((5, 7), 1, 2, 5, 1, "same", 1, 1, id="k5-same"),
    pytest.param((5, 6), 2, 2, (3, 2), (2, 1), "same", 1, 1, id="k3x2-s2x1-same"),
    pytest.param((5, 6), 2, 2, (1, 3), (1, 2), "valid", 1, 1, id="k1x3-s1x2-valid"),
    pytest.param((7, 9), 1, 2, 3, 2, "valid", 1, 1, id="k3-s2-overlap-valid"),
    pytest.param((7, 9), 1, 2, 3, 2, "same", 1, 1, id="k3-s2-overlap-same"),
    pytest.param((7, 8), 1, 2, 5, 3, "same", 1, 1, id="k5-s3-overlap-same"),
    pytest.param((6, 7), 2, 2, 3, 1, "valid", 2, 1, id="k3-d2-valid"),
    pytest.param((5, 6), 2, 2, 3, 1, "same", 2, 1, id="k3-d2-same"),
    pytest.param((5, 6), 4, 4, 3, 1, "valid", 1, 2, id="groups2"),
    pytest.param((5, 6), 4, 2, 3, 2, "same", 1, 2, id="groups2-s2-same"),
    pytest.param((5, 6), 3, 3, 3, 1, "same", 1, 3, id="depthwise"),
    pytest.param((5, 6), 2, 4, 3, 1, "same", 2, 2, id="depthwise-x2-d2-same"),
]


@pytest.mark.parametrize("use_bias, activation", [(True, None), (False, "tanh")], ids=["bias", "nobias-tanh"])
@pytest.mark.parametrize("hw, channels, filters, kernel_size, strides, padding, dilation, groups", CONV_GRID)
def test_conv2d(hw, channels, filters, kernel_size, strides, padding, dilation, groups, use_bias, activation):
    layer = layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, dilation_rate=dilation, groups=groups,
        use_bias=use_bias, activation=activation,
    )
    layer.build((None, *hw, channels))
    randomize(layer, seed=1)
    assert [p.name.rsplit("/", 1)[1] for p in layer.trainable_parameters] == ["kernel", "bias"][: 1 + use_bias]
    check_layer(layer, randn(2, *hw, channels, seed=2))


@pytest.mark.parametrize("activation", ["sigmoid", "softmax", "elu", "gelu"])
def test_conv2d_smooth_activations(activation):
    layer = layers.Conv2D(3, 3, padding="same", activation=activation)
    layer.build((None, 4, 5, 2))
    randomize(layer, seed=3)
    check_layer(layer, randn(2, 4, 5, 2, seed=4))


def test_conv2d_relu_away_from_the_kink():
    layer = layers.Conv2D(3, 3, strides=2, padding="same", activation="relu")
    layer.build((None, 6, 7, 2))
    randomize(layer, seed=5)
    x = randn(2, 6, 7, 2, seed=6)
    z = layer.forward(x)
    assert np.abs(layer.preactivation).min() > 1e-3  # no pre-activation within reach of eps of 0
    assert (z == 0).any() and (z > 0).any()  # both sides of the kink are exercised
    check_layer(layer, x)


# ---------------------------------------------------------------- Dense
@pytest.mark.parametrize(
    "shape, units, use_bias, activation",
    [
        ((3, 5), 4, True, None),
        ((3, 5), 4, False, "tanh"),
        ((3, 5), 4, True, "softmax"),
        ((2, 3, 4, 5), 3, True, "sigmoid"),  # rank 4: acts on the last axis, a 1x1 convolution
        ((2, 3, 4, 5), 2, False, None),
    ],
)
def test_dense(shape, units, use_bias, activation):
    layer = layers.Dense(units, use_bias=use_bias, activation=activation)
    layer.build((None, *shape[1:]))
    randomize(layer, seed=7)
    y, _, _ = check_layer(layer, randn(*shape, seed=8))
    assert y.shape == (*shape[:-1], units)


# ---------------------------------------------------------------- pooling
POOL_GRID = [
    pytest.param((6, 8), 2, None, "valid", id="p2"),
    pytest.param((7, 9), 2, None, "same", id="p2-same-odd"),
    pytest.param((7, 9), 3, 2, "valid", id="p3-s2-overlap"),
    pytest.param((7, 9), 3, 2, "same", id="p3-s2-overlap-same"),
    pytest.param((5, 6), 3, 1, "same", id="p3-s1-same"),
    pytest.param((5, 7), (2, 3), (1, 2), "valid", id="p2x3-s1x2"),
    pytest.param((7, 9), (3, 2), (2, 3), "same", id="p3x2-s2x3-same"),
]


@pytest.mark.parametrize("hw, pool_size, strides, padding", POOL_GRID)
def test_max_pooling(hw, pool_size, strides, padding):
    layer = layers.MaxPooling2D(pool_size, strides=strides, padding=padding)
    check_layer(layer, distinct(2, *hw, 2, seed=9))


@pytest.mark.parametrize("hw, pool_size, strides, padding", POOL_GRID)
def test_average_pooling(hw, pool_size, strides, padding):
    layer = layers.AveragePooling2D(pool_size, strides=strides, padding=padding)
    check_layer(layer, randn(2, *hw, 2, seed=10))


def test_global_average_pooling():
    check_layer(layers.GlobalAveragePooling2D(keepdims=True), randn(2, 3, 4, 3, seed=13))
    check_layer(layers.GlobalMaxPooling2D(keepdims=True), distinct(2, 3, 4, 3, seed=14))
    y, _, _ = check_layer(layers.GlobalAveragePooling2D(), randn(2, 3, 4, 3, seed=11))
    assert y.shape == (2, 3)


def test_global_max_pooling():
    y, _, _ = check_layer(layers.GlobalMaxPooling2D(), distinct(2, 3, 4, 3, seed=12))
    assert y.shape == (2, 3)


# ---------------------------------------------------------------- reshape, activations, dropout
def test_flatten():
    y, dx, _ = check_layer(layers.Flatten(), randn(2, 3, 4, 2, seed=13))
    assert y.shape == (2, 24)
    assert dx.shape == (2, 3, 4, 2)


@pytest.mark.parametrize(
    "activation",
    ["linear", "tanh", "sigmoid", "softmax", "elu", "selu", "gelu", "softplus", "softsign", "silu", "relu", "leaky_relu"],
)
def test_activation_layer(activation):
    x = randn(3, 4, 5, seed=14)
    x = np.where(np.abs(x) < 1e-3, 0.5, x)  # keep away from the kink of relu / leaky_relu / elu at 0
    check_layer(layers.Activation(activation), x)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"max_value": 0.8},
        {"negative_slope": 0.3},
        {"threshold": 0.4},
        {"max_value": 1.2, "negative_slope": 0.2, "threshold": 0.3},
    ],
    ids=["plain", "max_value", "negative_slope", "threshold", "all"],
)
def test_relu_layer(kwargs):
    x = randn(2, 4, 5, 3, seed=15)
    kinks = [0.0, kwargs.get("threshold", 0.0)] + ([kwargs["max_value"]] if "max_value" in kwargs else [])
    for k in kinks:
        x = np.where(np.abs(x - k) < 1e-2, k + 0.05, x)
    layer = layers.ReLU(**kwargs)
    y, dx, _ = check_layer(layer, x)
    if "max_value" in kwargs:
        assert y.max() == kwargs["max_value"] and (dx == 0).any()


@pytest.mark.parametrize("noise_shape", [None, (None, 1, 1, 3)], ids=["elementwise", "noise_shape"])
def test_dropout_training_with_a_fixed_mask(noise_shape):
    rate, seed = 0.4, 123
    x = randn(2, 3, 4, 3, seed=16)
    layer = layers.Dropout(rate, noise_shape=noise_shape, seed=seed)

    def fresh_forward(inp):  # a new layer with the same seed draws the same mask on its first call
        return layers.Dropout(rate, noise_shape=noise_shape, seed=seed).forward(inp, training=True)

    y, dx, _ = check_layer(layer, x, training=True, fresh_forward=fresh_forward)
    np.testing.assert_array_equal(y, fresh_forward(x))
    dropped = y == 0
    assert dropped.any() and (~dropped).any()
    np.testing.assert_allclose(y[~dropped], x[~dropped] / (1 - rate), rtol=1e-15)


def test_dropout_inference_is_identity():
    x = randn(2, 3, 4, 3, seed=17)
    y, _, _ = check_layer(layers.Dropout(0.5, seed=1), x, training=False)
    np.testing.assert_array_equal(y, x)


# ---------------------------------------------------------------- batch normalization
@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
@pytest.mark.parametrize(
    "shape, kwargs",
    [
        ((4, 3, 3, 2), {}),
        ((5, 3), {}),
        ((4, 3, 3, 2), {"center": False}),
        ((4, 3, 3, 2), {"scale": False, "epsilon": 0.01}),
    ],
    ids=["4d", "2d", "no-center", "no-scale"],
)
def test_batch_normalization(shape, kwargs, training):
    layer = layers.BatchNormalization(**kwargs)
    layer.build((None, *shape[1:]))
    rng = np.random.default_rng(18)
    layer.set_weights([
        np.abs(rng.standard_normal(w.shape)) + 0.5 if p.name.endswith("variance") else rng.standard_normal(w.shape)
        for p, w in zip(layer.parameters, layer.get_weights())
    ])
    x = randn(*shape, seed=19) * 2 + 1
    check_layer(layer, x, training=training)
    for p in layer.parameters:
        if not p.trainable:
            assert not p.grad.any(), f"{p.name}: a moving statistic got a gradient"


# ---------------------------------------------------------------- a whole model through trace()
def _small_model(x_shape, seed, units=3, activation="softmax", loss="categorical_crossentropy"):
    model = Sequential([
        layers.Conv2D(4, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(4, 3, strides=2, padding="same", activation="tanh"),
        layers.Flatten(),
        layers.Dense(units, activation=activation),
    ])
    model.compile(optimizer="sgd", loss=loss)
    model.build((None, *x_shape[1:]))
    rng = np.random.default_rng(seed)
    model.set_weights([rng.standard_normal(w.shape) * 0.5 for w in model.get_weights()])
    return model


def _check_model_trace(model, x, y):
    records = model.trace(x, y)

    def loss():
        return float(model.loss(y, model.forward(x, training=False)))

    assert records[-1].output.dtype == np.float64
    assert_grad_close(records[0].grad_input, numeric_grad(loss, x), "model input")
    checked = 0
    for layer, record in zip(model.layers, records):
        assert set(record.param_grads) == {p.name.rsplit("/", 1)[1] for p in layer.parameters}
        for p in layer.trainable_parameters:
            short = p.name.rsplit("/", 1)[1]
            assert_grad_close(record.param_grads[short], numeric_grad(loss, p.value), p.name)
            checked += 1
    # trace leaves the model as it was: no gradient is left behind in .grad
    assert all(not p.grad.any() for p in model.parameters)
    return records, checked


@pytest.mark.parametrize(
    "units, activation, loss, y",
    [
        (3, "softmax", "categorical_crossentropy", np.eye(3)[[0, 2, 1]]),  # fused: backward starts at the logits
        (3, "softmax", "sparse_categorical_crossentropy", np.array([0, 2, 1])),
        (1, "sigmoid", "binary_crossentropy", np.array([[1.0], [0.0], [1.0]])),
        (3, "softmax", "mse", np.eye(3)[[0, 2, 1]]),  # not fused: through the softmax's own gradient
    ],
    ids=["categorical", "sparse", "binary", "mse-softmax"],
)
def test_model_trace_gradients_match_finite_differences(units, activation, loss, y):
    x = randn(3, 8, 8, 2, seed=20)
    model = _small_model(x.shape, seed=21, units=units, activation=activation, loss=loss)
    records, checked = _check_model_trace(model, x, y)
    assert checked == 6
    pre = records[0].preactivation
    assert np.abs(pre).min() > 1e-4, "a relu pre-activation is within reach of eps of the kink"
    # the traced per-layer gradients chain: each layer's grad_input is the previous layer's grad_output
    for before, after in zip(records[:-1], records[1:]):
        np.testing.assert_allclose(before.grad_output, after.grad_input, rtol=1e-12, atol=1e-15)


def test_model_trace_with_integer_labels_equals_one_hot():
    x = randn(3, 8, 8, 2, seed=22)
    labels = np.array([2, 0, 1])
    model = _small_model(x.shape, seed=23)
    by_label = model.trace(x, labels)
    by_one_hot = model.trace(x, np.eye(3)[labels])
    for a, b in zip(by_label, by_one_hot):
        np.testing.assert_allclose(a.grad_input, b.grad_input, rtol=1e-12, atol=1e-15)


def test_model_trace_through_parameterless_and_relu_layers():
    """ReLU, BatchNormalization (inference statistics), Dropout (off), pooling layers, all inside trace."""
    model = Sequential([
        layers.Conv2D(3, 3, padding="same"),
        layers.BatchNormalization(),
        layers.ReLU(negative_slope=0.1, max_value=1.5),
        layers.AveragePooling2D(2, strides=1, padding="same"),
        layers.Dropout(0.5),
        layers.Conv2D(4, 2, strides=2),
        layers.Activation("tanh"),
        layers.GlobalMaxPooling2D(),
        layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x = randn(2, 6, 6, 2, seed=24)
    model.build((None, *x.shape[1:]))
    rng = np.random.default_rng(25)
    model.set_weights([np.abs(rng.standard_normal(w.shape)) + 0.5 if "variance" in p.name else rng.standard_normal(w.shape)
                       for p, w in zip(model.parameters, model.get_weights())])
    y = np.eye(3)[[1, 2]]
    records = model.trace(x, y)
    relu_in = records[2].input
    assert (relu_in < 0).any() and (relu_in > 1.5).any()  # every branch of the ReLU is used
    for k in (0.0, 1.5):
        assert np.abs(relu_in - k).min() > 1e-4
    _, checked = _check_model_trace(model, x, y)
    assert checked == 8


# ---------------------------------------------------------------- Rescaling
@pytest.mark.parametrize("scale, offset", [(1 / 255, 0.0), ([0.5, -2.0], [1.0, 0.25])])
def test_rescaling(scale, offset):
    check_layer(layers.Rescaling(scale, offset=offset), randn(2, 3, 4, 2, seed=31))
