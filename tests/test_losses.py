"""Losses: Keras's values, gradients against central differences, stability, validation, config."""

import json

import numpy as np
import pytest

from convscope import backend, losses


@pytest.fixture
def float64():
    backend.set_floatx("float64")
    yield
    backend.set_floatx("float32")


def numeric_gradient(f, x, h=1e-6):
    """Central differences of the scalar ``f`` at every entry of ``x`` (float64)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        x_plus, x_minus = x.copy(), x.copy()
        x_plus[i] += h
        x_minus[i] -= h
        grad[i] = (f(x_plus) - f(x_minus)) / (2 * h)
    return grad


def relative_error(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-12)


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


rng = np.random.default_rng(0)
N, K = 5, 4
LABELS = np.array([0, 3, 1, 2, 3])
ONE_HOT = np.eye(K)[LABELS]
PROBS = rng.uniform(0.1, 1.0, size=(N, K))  # rows deliberately not normalised: Keras divides by their sum
LOGITS = rng.normal(0, 3, size=(N, K))
BINARY = rng.integers(0, 2, size=(N, 3)).astype(float)
BINARY_PROBS = rng.uniform(0.05, 0.95, size=(N, 3))
TARGETS = rng.normal(size=(N, 3))
# Regression predictions kept away from the kinks of |e| and of Huber at |e| = delta.
PREDICTIONS = TARGETS + rng.choice([-1, 1], size=(N, 3)) * rng.uniform(0.1, 0.8, size=(N, 3))
PREDICTIONS[0, 0] = TARGETS[0, 0] + 2.5

GRADIENT_CASES = [
    ("cce", losses.CategoricalCrossentropy(), ONE_HOT, PROBS),
    ("cce_logits", losses.CategoricalCrossentropy(from_logits=True), ONE_HOT, LOGITS),
    ("cce_smooth", losses.CategoricalCrossentropy(label_smoothing=0.2), ONE_HOT, PROBS),
    ("cce_smooth_logits", losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2), ONE_HOT, LOGITS),
    ("sparse", losses.SparseCategoricalCrossentropy(), LABELS, PROBS),
    ("sparse_logits", losses.SparseCategoricalCrossentropy(from_logits=True), LABELS, LOGITS),
    ("bce", losses.BinaryCrossentropy(), BINARY, BINARY_PROBS),
    ("bce_logits", losses.BinaryCrossentropy(from_logits=True), BINARY, LOGITS[:, :3]),
    ("bce_smooth", losses.BinaryCrossentropy(label_smoothing=0.1), BINARY, BINARY_PROBS),
    ("mse", losses.MeanSquaredError(), TARGETS, PREDICTIONS),
    ("mae", losses.MeanAbsoluteError(), TARGETS, PREDICTIONS),
    ("huber", losses.Huber(), TARGETS, PREDICTIONS),
    ("huber_delta", losses.Huber(delta=0.5), TARGETS, PREDICTIONS + 0.05),
]


@pytest.mark.parametrize("case", GRADIENT_CASES, ids=[c[0] for c in GRADIENT_CASES])
def test_gradient_matches_central_differences(float64, case):
    _, loss, y_true, y_pred = case
    analytic = loss.gradient(y_true, y_pred)
    numeric = numeric_gradient(lambda p: loss(y_true, p), y_pred)
    assert analytic.shape == y_pred.shape
    assert analytic.dtype == np.float64
    assert relative_error(analytic, numeric) < 1e-6


@pytest.mark.parametrize("case", GRADIENT_CASES[:3], ids=[c[0] for c in GRADIENT_CASES[:3]])
def test_value_and_gradient_agree_with_the_separate_calls(case):
    _, loss, y_true, y_pred = case
    value, grad = loss.value_and_gradient(y_true, y_pred)
    assert value == loss(y_true, y_pred)
    np.testing.assert_array_equal(grad, loss.gradient(y_true, y_pred))


# -- values Keras documents -----------------------------------------------------
def test_categorical_crossentropy_keras_example():
    y_true = [[0, 1, 0], [0, 0, 1]]
    y_pred = [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]
    assert losses.CategoricalCrossentropy()(y_true, y_pred) == pytest.approx(1.1769392, rel=1e-5)
    assert losses.SparseCategoricalCrossentropy()([1, 2], y_pred) == pytest.approx(1.1769392, rel=1e-5)


def test_binary_crossentropy_keras_examples():
    y_true = [[0.0, 1.0], [0.0, 0.0]]
    y_pred = [[0.6, 0.4], [0.4, 0.6]]
    assert losses.BinaryCrossentropy()(y_true, y_pred) == pytest.approx(0.81492424, rel=1e-5)
    logits_loss = losses.BinaryCrossentropy(from_logits=True)
    assert logits_loss([0, 1, 0, 0], [-18.6, 0.51, 2.94, -12.8]) == pytest.approx(0.865458, rel=1e-5)


def test_regression_keras_examples():
    y_true = [[0.0, 1.0], [0.0, 0.0]]
    assert losses.MeanSquaredError()(y_true, [[1.0, 1.0], [1.0, 0.0]]) == pytest.approx(0.5)
    assert losses.MeanAbsoluteError()(y_true, [[1.0, 1.0], [1.0, 0.0]]) == pytest.approx(0.5)
    assert losses.Huber()(y_true, [[0.6, 0.4], [0.4, 0.6]]) == pytest.approx(0.155)


def test_huber_linear_part():
    # |e| = 3 > delta = 1: delta * (|e| - delta / 2) = 2.5; gradient delta * sign(e) / n
    assert losses.Huber()([[0.0]], [[3.0]]) == pytest.approx(2.5)
    assert losses.Huber().gradient([[0.0], [0.0]], [[3.0], [-3.0]]).tolist() == [[0.5], [-0.5]]


def test_label_smoothing_by_hand():
    # y = [0, 1] smoothed by 0.2 over 2 classes -> [0.1, 0.9]
    p = np.array([[0.25, 0.75]])
    expected = -(0.1 * np.log(0.25) + 0.9 * np.log(0.75))
    assert losses.CategoricalCrossentropy(label_smoothing=0.2)([[0, 1]], p) == pytest.approx(expected)
    # binary: y = 1 smoothed by 0.2 -> 0.9
    expected = -(0.9 * np.log(0.75) + 0.1 * np.log(0.25))
    assert losses.BinaryCrossentropy(label_smoothing=0.2)([[1.0]], [[0.75]]) == pytest.approx(expected)


def test_mean_over_batch_and_elements():
    # sum_over_batch_size: CE averages rows, elementwise losses average every element
    y_pred = np.array([[0.5, 0.5], [0.9, 0.1]])
    rows = [-np.log(0.5), -np.log(0.9)]
    assert losses.CategoricalCrossentropy()([[1, 0], [1, 0]], y_pred) == pytest.approx(np.mean(rows))
    assert losses.MeanSquaredError()(np.zeros((2, 2)), y_pred) == pytest.approx(np.mean(y_pred**2))


# -- probabilities, clipping and logits ------------------------------------------------
def test_probabilities_are_clipped_like_keras():
    # p = 0 for the true class is read as 1e-7: loss -log(1e-7), and the clipped entry gets no gradient
    loss = losses.CategoricalCrossentropy()
    assert loss([[1, 0]], [[0.0, 1.0]]) == pytest.approx(-np.log(1e-7))
    assert losses.BinaryCrossentropy()([[1.0]], [[0.0]]) == pytest.approx(-np.log(1e-7), rel=1e-6)
    assert losses.BinaryCrossentropy().gradient([[1.0]], [[0.0]]).tolist() == [[0.0]]


@pytest.mark.parametrize("loss", [losses.CategoricalCrossentropy(from_logits=True),
                                  losses.SparseCategoricalCrossentropy(from_logits=True)])
def test_softmax_logits_of_1e4_stay_finite(loss):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype=np.float32)
    y = [0, 0] if isinstance(loss, losses.SparseCategoricalCrossentropy) else [[1, 0, 0], [1, 0, 0]]
    value, grad = loss(y, z), loss.gradient(y, z)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    # row 1: -log_softmax = 0; row 2: -(-1e4 - 1e4 - log 2)
    assert value == pytest.approx((0 + 2e4 + np.log(2)) / 2)
    np.testing.assert_allclose(grad, np.array([[0, 0, 0], [-1, 0.5, 0.5]]) / 2, atol=1e-7)


def test_sigmoid_logits_of_1e4_stay_finite():
    loss = losses.BinaryCrossentropy(from_logits=True)
    z = np.array([[1e4, -1e4], [-1e4, 1e4]], dtype=np.float32)
    y = [[1.0, 0.0], [1.0, 0.0]]
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is harmless
        value, grad = loss(y, z), loss.gradient(y, z)
    assert value == pytest.approx(2e4 / 4)  # the two wrong elements cost 1e4 each, the right ones 0
    np.testing.assert_allclose(grad, np.array([[0, 0], [-1, 1]]) / 4)


@pytest.mark.parametrize("loss", [losses.CategoricalCrossentropy(), losses.SparseCategoricalCrossentropy(),
                                  losses.BinaryCrossentropy()])
def test_with_logits_fuses_the_output_activation(float64, loss):
    if loss.output_activation == "softmax":
        y = LABELS if isinstance(loss, losses.SparseCategoricalCrossentropy) else ONE_HOT
        z, activate = LOGITS, softmax
        one_hot = ONE_HOT
    else:
        y = one_hot = BINARY
        z, activate = LOGITS[:, :3], lambda x: 1 / (1 + np.exp(-x))
    fused = loss.with_logits()
    assert type(fused) is type(loss) and fused.from_logits and not loss.from_logits
    assert fused(y, z) == pytest.approx(loss(y, activate(z)), rel=1e-9)
    np.testing.assert_allclose(fused.gradient(y, z), (activate(z) - one_hot) / one_hot.shape[0] /
                               (1 if loss.output_activation == "softmax" else one_hot.shape[1]), atol=1e-12)


def test_output_activation_attributes():
    assert losses.CategoricalCrossentropy.output_activation == "softmax"
    assert losses.SparseCategoricalCrossentropy.output_activation == "softmax"
    assert losses.BinaryCrossentropy.output_activation == "sigmoid"
    assert losses.MeanSquaredError.output_activation is None


def test_gradient_keeps_float32():
    g = losses.CategoricalCrossentropy().gradient(ONE_HOT, PROBS.astype(np.float32))
    assert g.dtype == np.float32


def test_sparse_accepts_column_labels_and_whole_floats():
    loss = losses.SparseCategoricalCrossentropy()
    expected = loss(LABELS, PROBS)
    assert loss(LABELS[:, None], PROBS) == expected
    assert loss(LABELS.astype(float), PROBS) == expected


def test_regression_accepts_keras_rank_fix_up():
    y, p = np.array([1.0, 2.0]), np.array([[1.5], [1.0]])
    assert losses.MeanSquaredError()(y, p) == pytest.approx((0.25 + 1.0) / 2)
    assert losses.MeanSquaredError().gradient(y, p).shape == (2, 1)


# -- validation ---------------------------------------------------------------------
ALL_LOSSES = [losses.CategoricalCrossentropy(), losses.SparseCategoricalCrossentropy(),
              losses.BinaryCrossentropy(), losses.MeanSquaredError(), losses.MeanAbsoluteError(), losses.Huber()]


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda l: l.name)
def test_sample_count_mismatch(loss):
    y = LABELS[:3] if isinstance(loss, losses.SparseCategoricalCrossentropy) else ONE_HOT[:3]
    message = rf"{type(loss).__name__}: y_true and y_pred must hold the same number of samples, expected 5 .*received 3"
    with pytest.raises(ValueError, match=message):
        loss(y, PROBS)
    with pytest.raises(ValueError, match=message):
        loss.gradient(y, PROBS)


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda l: l.name)
def test_empty_batch(loss):
    with pytest.raises(ValueError, match=rf"{type(loss).__name__}: expected a non-empty batch, received y_pred of shape \(0, 4\)"):
        loss(np.zeros((0, 4)), np.zeros((0, 4)))


def test_one_hot_width_mismatch():
    with pytest.raises(ValueError, match=r"CategoricalCrossentropy: expected y_true of shape \(5, 4\) \(one-hot rows "
                                         r"as wide as y_pred's last dimension 4\), received shape \(5, 3\)"):
        losses.CategoricalCrossentropy()(ONE_HOT[:, :3], PROBS)


def test_categorical_with_integer_labels_points_to_sparse():
    with pytest.raises(ValueError, match=r"received shape \(5,\); for integer labels use SparseCategoricalCrossentropy"):
        losses.CategoricalCrossentropy()(LABELS, PROBS)


def test_categorical_needs_class_axis():
    with pytest.raises(ValueError, match=r"CategoricalCrossentropy: expected y_pred of shape \(n, num_classes\), "
                                         r"received shape \(4,\)"):
        losses.CategoricalCrossentropy()([1, 0, 0, 0], [0.7, 0.1, 0.1, 0.1])


@pytest.mark.parametrize("y_true", [np.zeros((5, 1)), np.zeros((5, 4))], ids=["column", "wider"])
def test_dense_losses_never_broadcast(y_true):
    with pytest.raises(ValueError, match=r"MeanSquaredError: expected y_true of shape \(5, 3\) like y_pred, received shape"):
        losses.MeanSquaredError()(y_true, TARGETS)


@pytest.mark.parametrize("labels, message", [
    ([0.5, 1, 2, 0, 1], r"expected integer class labels, received non-integer values such as 0.5"),
    (np.array([True, False, True, True, False]), r"expected integer class labels, received dtype bool"),
    ([0, 1, 4, 2, 1], r"expected labels in \[0, 4\), received values in \[0, 4\]"),
    ([0, -1, 3, 2, 1], r"expected labels in \[0, 4\), received values in \[-1, 3\]"),
    (np.zeros((5, 2), dtype=int), r"expected integer labels of shape \(5,\) or \(5, 1\), received shape \(5, 2\)"),
])
def test_sparse_label_validation(labels, message):
    with pytest.raises(ValueError, match=r"SparseCategoricalCrossentropy: " + message):
        losses.SparseCategoricalCrossentropy()(labels, PROBS)


@pytest.mark.parametrize("make, error, message", [
    (lambda: losses.CategoricalCrossentropy(label_smoothing=1.5), ValueError,
     r'CategoricalCrossentropy: argument "label_smoothing" must be a number in \[0, 1\], received 1.5'),
    (lambda: losses.BinaryCrossentropy(from_logits="yes"), TypeError,
     r'BinaryCrossentropy: argument "from_logits" must be a bool'),
    (lambda: losses.Huber(delta=0), ValueError, r'Huber: argument "delta" must be a number > 0, received 0'),
    (lambda: losses.MeanSquaredError(reduction="average"), ValueError,
     r"MeanSquaredError: argument \"reduction\" must be one of \['sum_over_batch_size', 'sum', 'mean', "
     r"'mean_with_sample_weight', 'none', None\], received 'average'"),
])
def test_constructor_validation(make, error, message):
    with pytest.raises(error, match=message):
        make()


# -- names, lookup, config ------------------------------------------------------------
@pytest.mark.parametrize("name, cls", [
    ("categorical_crossentropy", losses.CategoricalCrossentropy),
    ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
    ("binary_crossentropy", losses.BinaryCrossentropy),
    ("mean_squared_error", losses.MeanSquaredError),
    ("mse", losses.MeanSquaredError),
    ("mean_absolute_error", losses.MeanAbsoluteError),
    ("MAE", losses.MeanAbsoluteError),
    ("huber", losses.Huber),
    ("Huber", losses.Huber),
    ("CategoricalCrossentropy", losses.CategoricalCrossentropy),
])
def test_get_by_name(name, cls):
    assert type(losses.get(name)) is cls


def test_keras_default_names():
    assert [l.name for l in ALL_LOSSES] == [
        "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
        "mean_squared_error", "mean_absolute_error", "huber_loss"]


def test_get_unknown_lists_known_names():
    with pytest.raises(ValueError, match=r"Unknown loss 'dice'; known: .*'categorical_crossentropy'"):
        losses.get("dice")
    with pytest.raises(ValueError, match=r"Unknown loss class 'Dice'"):
        losses.get({"class_name": "Dice", "config": {}})
    with pytest.raises(TypeError, match=r"losses.get: expected a loss name"):
        losses.get(3)


def test_get_returns_instances_unchanged():
    loss = losses.Huber(delta=2.0)
    assert losses.get(loss) is loss


@pytest.mark.parametrize("loss", [
    losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1, name="ce"),
    losses.SparseCategoricalCrossentropy(from_logits=True),
    losses.BinaryCrossentropy(label_smoothing=0.05),
    losses.MeanSquaredError(), losses.MeanAbsoluteError(), losses.Huber(delta=0.3),
], ids=lambda l: l.name)
def test_config_round_trip(loss):
    data = json.loads(json.dumps(losses.serialize(loss)))
    again = losses.get(data)
    assert type(again) is type(loss)
    assert again.get_config() == loss.get_config()
    y = LABELS if isinstance(loss, losses.SparseCategoricalCrossentropy) else ONE_HOT
    assert again(y, PROBS) == loss(y, PROBS)


def test_reads_keras_configs():
    keras_config = {"module": "keras.losses", "class_name": "CategoricalCrossentropy", "registered_name": None,
                    "config": {"name": "categorical_crossentropy", "reduction": "sum_over_batch_size",
                               "from_logits": True, "label_smoothing": 0.0, "axis": -1, "dtype": None}}
    assert losses.get(keras_config).from_logits
    keras_config["config"]["axis"] = 1
    with pytest.raises(ValueError, match=r'CategoricalCrossentropy: Keras option "axis" is only supported at its default -1'):
        losses.get(keras_config)
