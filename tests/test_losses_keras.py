"""Losses against Keras 3: per-sample functions, every reduction with and without sample weights,
gradients of the weighted reductions against central differences, and lookup by function.

The reference values come from real Keras (tests/fixtures/losses_metrics/make_fixture.py, float64).
"""

import json
import pathlib

import numpy as np
import pytest

from convscope import losses

FIXTURE = json.loads((pathlib.Path(__file__).parent / "fixtures" / "losses_metrics" / "keras_values.json").read_text())
INPUTS = {k: np.array(v) for k, v in FIXTURE["inputs"].items()}
INPUTS["labels"] = INPUTS["labels"].astype(int)
WEIGHTS = {"none": None, "per_sample": INPUTS["weights"], "column": INPUTS["weights"][:, None]}
CASES = FIXTURE["losses"]


def numeric_gradient(f, x, h=1e-6):
    """Central differences of the scalar ``f`` at every entry of ``x`` (float64)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        x_plus, x_minus = x.copy(), x.copy()
        x_plus[i] += h
        x_minus[i] -= h
        grad[i] = (f(x_plus) - f(x_minus)) / (2 * h)
    return grad


def pair(case):
    return INPUTS[case["y_true"]], INPUTS[case["y_pred"]]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_function_gives_keras_per_sample_values(case):
    values = getattr(losses, case["function"])(*pair(case), **case["kwargs"])
    assert isinstance(values, np.ndarray) and values.shape == (len(INPUTS["weights"]),)
    np.testing.assert_allclose(values, case["per_sample"], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("weights", list(WEIGHTS))
@pytest.mark.parametrize("reduction", losses.REDUCTIONS[:-1])
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_class_reductions_and_sample_weights_match_keras(case, reduction, weights):
    loss = getattr(losses, case["class"])(reduction=reduction, **case["kwargs"])
    value = loss(*pair(case), sample_weight=WEIGHTS[weights])
    expected = case["reduced"][reduction][weights]
    if reduction == "none":
        # Keras keeps (n, 1) weights' column on the weighted values; convscope keeps one value per sample.
        expected = np.ravel(expected)
    np.testing.assert_allclose(value, expected, rtol=1e-6, atol=1e-9)


def _away_from_clipping(case, y_pred):
    """Predictions for central differences: the deliberately clipped zero probability moved inside (0, 1)."""
    return np.where(y_pred == 0, 0.3, y_pred) if case["y_pred"] == "probs" else y_pred


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "mean_with_sample_weight"])
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_weighted_gradient_matches_central_differences(case, reduction):
    loss = getattr(losses, case["class"])(reduction=reduction, **case["kwargs"])
    y_true, y_pred = pair(case)
    y_pred = _away_from_clipping(case, y_pred)
    weights = WEIGHTS["per_sample"]
    value, grad = loss.value_and_gradient(y_true, y_pred, sample_weight=weights)
    assert value == loss(y_true, y_pred, sample_weight=weights)
    numeric = numeric_gradient(lambda p: loss(y_true, p, sample_weight=weights), y_pred)
    assert grad.shape == y_pred.shape and grad.dtype == np.float64
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(grad[2], 0)  # the sample of weight 0 gets no gradient


def test_reductions_by_hand():
    # per-sample squared errors [1, 4, 9, 16] with weights [1, 0, 1, 2]
    y_true, y_pred, w = np.zeros((4, 1)), np.array([[1.0], [2.0], [3.0], [4.0]]), np.array([1.0, 0.0, 1.0, 2.0])
    expected = {"sum_over_batch_size": 42 / 4, "mean": 42 / 4, "sum": 42.0, "mean_with_sample_weight": 42 / 4}
    for reduction, value in expected.items():
        assert losses.MeanSquaredError(reduction=reduction)(y_true, y_pred, sample_weight=w) == pytest.approx(value)
    np.testing.assert_array_equal(losses.MeanSquaredError(reduction="none")(y_true, y_pred, w), [1, 0, 9, 32])
    # sum_over_batch_size divides by the number of values, not the sum of the weights
    assert losses.MeanSquaredError()(y_true, y_pred, sample_weight=[2, 2, 2, 2]) == pytest.approx(15.0)
    assert losses.MeanSquaredError(reduction="mean_with_sample_weight")(y_true, y_pred, [2, 2, 2, 2]) == 7.5


def test_all_zero_weights_give_zero_like_keras():
    loss = losses.MeanSquaredError(reduction="mean_with_sample_weight")
    value, grad = loss.value_and_gradient(np.zeros((2, 2)), np.ones((2, 2)), sample_weight=[0, 0])
    assert value == 0.0 and not grad.any()


def test_weights_repeat_over_the_axes_after_the_sample():
    # values of shape (2, 3) (a sequence of 3 steps per sample): (n,) weights weigh every step of their sample
    y_pred = np.arange(12.0).reshape(2, 3, 2)
    loss = losses.MeanSquaredError(reduction="sum")
    per_step = losses.mean_squared_error(np.zeros_like(y_pred), y_pred)
    assert per_step.shape == (2, 3)
    assert loss(np.zeros_like(y_pred), y_pred, sample_weight=[1.0, 2.0]) == pytest.approx(
        per_step[0].sum() + 2 * per_step[1].sum())


def test_sample_weight_validation():
    with pytest.raises(ValueError, match=r"MeanSquaredError: expected sample_weight of shape \(4,\) \(one weight per "
                                         r"sample\), received shape \(3,\)"):
        losses.MeanSquaredError()(np.zeros((4, 2)), np.ones((4, 2)), sample_weight=[1, 2, 3])
    with pytest.raises(ValueError, match=r"expected sample_weight of shape \(2,\) \(one weight per sample\) or "
                                         r"\(2, 3\), received shape \(2, 2\)"):
        losses.MeanSquaredError()(np.zeros((2, 3, 2)), np.ones((2, 3, 2)), sample_weight=np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"MeanSquaredError: expected numeric sample weights, received dtype <U1"):
        losses.MeanSquaredError()(np.zeros((2, 2)), np.ones((2, 2)), sample_weight=["a", "b"])


def test_unreduced_loss_has_no_gradient():
    with pytest.raises(ValueError, match=r"Hinge: a gradient needs a loss reduced to one number, received "
                                         r"reduction='none'"):
        losses.Hinge(reduction="none").value_and_gradient(np.ones((2, 2)), np.ones((2, 2)))


# -- lookup by function, serialization -----------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_get_of_a_function_is_its_class(case):
    fn = getattr(losses, case["function"])
    loss = losses.get(fn)
    assert type(loss) is getattr(losses, case["class"])
    assert losses.serialize(fn) == {"module": "builtins", "class_name": "function", "config": case["function"],
                                    "registered_name": "function"}
    assert type(losses.get(losses.serialize(fn))) is type(loss)


def test_short_names_are_the_functions():
    assert losses.mse is losses.MSE is losses.mean_squared_error
    assert losses.mae is losses.mean_absolute_error and losses.kld is losses.kl_divergence
    assert type(losses.get("kld")) is losses.KLDivergence and type(losses.get("log_cosh")) is losses.LogCosh
    assert type(losses.get(losses.Poisson)) is losses.Poisson


def test_a_users_function_is_refused_with_a_type_error():
    def my_loss(y_true, y_pred):
        return (y_true - y_pred) ** 2

    with pytest.raises(TypeError, match=r"losses.get: expected a loss name, a \{'class_name', 'config'\} dict, a Loss "
                                        r"or one of convscope.losses' functions, received <function .*my_loss"):
        losses.get(my_loss)
    with pytest.raises(ValueError, match=r"Unknown loss function 'my_loss'"):
        losses.get({"class_name": "function", "config": "my_loss"})


@pytest.mark.parametrize("loss", [losses.KLDivergence(reduction="sum"), losses.Huber(0.3, reduction="none"),
                                  losses.CategoricalHinge(name="ch"), losses.CosineSimilarity(),
                                  losses.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=1.0),
                                  losses.CategoricalFocalCrossentropy(alpha=0.5, from_logits=True),
                                  losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean")],
                         ids=lambda l: type(l).__name__)
def test_config_round_trip_keeps_the_reduction(loss):
    again = losses.get(json.loads(json.dumps(losses.serialize(loss))))
    assert type(again) is type(loss) and again.get_config() == loss.get_config()


def test_focal_argument_validation():
    with pytest.raises(ValueError, match=r'BinaryFocalCrossentropy: argument "gamma" must be a number >= 0, '
                                         r"received -1"):
        losses.BinaryFocalCrossentropy(gamma=-1)
    with pytest.raises(ValueError, match=r'BinaryFocalCrossentropy: argument "alpha" must be a number in \[0, 1\]'):
        losses.BinaryFocalCrossentropy(alpha=2)
    with pytest.raises(TypeError, match=r'CategoricalFocalCrossentropy: argument "alpha" must be a number, '
                                        r"received \[0.2, 0.8\]"):
        losses.CategoricalFocalCrossentropy(alpha=[0.2, 0.8])


def test_focal_with_gamma_0_is_the_cross_entropy():
    y, p = INPUTS["binary"], INPUTS["binary_probs"]
    assert losses.BinaryFocalCrossentropy(gamma=0)(y, p) == pytest.approx(losses.BinaryCrossentropy()(y, p))
    y, p = INPUTS["one_hot"], INPUTS["probs"]
    assert losses.CategoricalFocalCrossentropy(alpha=1, gamma=0)(y, p) == pytest.approx(
        losses.CategoricalCrossentropy()(y, p))


def test_keras_only_options_are_refused_at_other_values():
    with pytest.raises(ValueError, match=r'CategoricalCrossentropy: argument "axis" is only supported at its '
                                         r"default -1, received 1"):
        losses.CategoricalCrossentropy(axis=1)
    with pytest.raises(ValueError, match=r'sparse_categorical_crossentropy: argument "axis" is only supported'):
        losses.sparse_categorical_crossentropy([0], [[1.0, 0.0]], axis=0)
    with pytest.raises(ValueError, match=r'SparseCategoricalCrossentropy: argument "ignore_class" is only supported '
                                         r"at its default None, received 255"):
        losses.sparse_categorical_crossentropy([0], [[1.0, 0.0]], ignore_class=255)
