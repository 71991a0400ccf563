"""Metrics against Keras 3: per-sample metric functions, the mean metrics with sample weights over two
batches, Mean / Sum, and lookup of metric functions as compile(metrics=[...]) does it.

The reference values come from real Keras (tests/fixtures/losses_metrics/make_fixture.py).
"""

import json
import pathlib

import numpy as np
import pytest

from convscope import losses, metrics

FIXTURE = json.loads((pathlib.Path(__file__).parent / "fixtures" / "losses_metrics" / "keras_values.json").read_text())
INPUTS = {k: np.array(v) for k, v in FIXTURE["inputs"].items()}
INPUTS["labels"] = INPUTS["labels"].astype(int)
WEIGHTS = {"none": None, "per_sample": INPUTS["weights"], "column": INPUTS["weights"][:, None]}
HALVES = (slice(0, 4), slice(4, None))


@pytest.mark.parametrize("case", FIXTURE["metric_functions"], ids=lambda c: c["id"])
def test_function_gives_keras_per_sample_values(case):
    values = getattr(metrics, case["function"])(INPUTS[case["y_true"]], INPUTS[case["y_pred"]], **case["kwargs"])
    np.testing.assert_allclose(values, case["values"], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("weights", list(WEIGHTS))
@pytest.mark.parametrize("case", FIXTURE["metrics"], ids=lambda c: c["id"])
def test_weighted_result_over_two_batches_matches_keras(case, weights):
    metric = getattr(metrics, case["class"])(**case["kwargs"])
    y_true, y_pred, w = INPUTS[case["y_true"]], INPUTS[case["y_pred"]], WEIGHTS[weights]
    for half in HALVES:
        metric.update_state(y_true[half], y_pred[half], sample_weight=None if w is None else w[half])
    np.testing.assert_allclose(metric.result(), case["results"][weights], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("case", FIXTURE["reduction_metrics"], ids=lambda c: c["class"])
@pytest.mark.parametrize("weights", list(WEIGHTS))
def test_mean_and_sum_match_keras(case, weights):
    metric = getattr(metrics, case["class"])()
    values, w = INPUTS[case["values"]], WEIGHTS[weights]
    metric.update_state(values, sample_weight=w)
    metric.update_state(values[:, 0], sample_weight=None if w is None else w[:, None] if w.ndim == 1 else w)
    assert metric.result() == pytest.approx(case["results"][weights], rel=1e-6)  # Keras keeps float32 totals


def test_mean_and_sum_by_hand():
    mean, total = metrics.Mean(), metrics.Sum()
    mean.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
    total.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
    assert (mean.result(), total.result()) == (2.0, 4.0)
    mean.reset_state()
    assert mean.result() == 0.0
    mean.update_state([1, 3, 5, 7])
    assert mean.result() == 4.0


def test_weighted_mean_divides_by_the_sum_of_weights():
    metric = metrics.SparseCategoricalAccuracy()
    y_pred = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    metric.update([0, 0, 0], y_pred, sample_weight=[3.0, 1.0, 0.0])  # right, wrong, right (weight 0)
    assert metric.result() == pytest.approx(3 / 4)
    metric.reset()
    assert metric.result() == 0.0


def test_weighted_confusion_counts():
    # weights count each entry that many times: tp = 2 (weight 2), fp = 1 (weight 1), fn = 3
    precision, recall = metrics.Precision(), metrics.Recall()
    for m in (precision, recall):
        m.update_state([1, 0, 1, 1], [0.9, 0.8, 0.1, 0.2], sample_weight=[2, 1, 1, 2])
    assert precision.result() == pytest.approx(2 / 3) and recall.result() == pytest.approx(2 / 5)


def test_rmse_is_the_root_of_the_weighted_mse():
    y_true, y_pred, w = INPUTS["targets"], INPUTS["predictions"], INPUTS["weights"]
    rmse, mse = metrics.RootMeanSquaredError(), metrics.MeanSquaredError()
    rmse.update_state(y_true, y_pred, sample_weight=w)
    mse.update_state(y_true, y_pred, sample_weight=w)
    assert rmse.result() == pytest.approx(np.sqrt(mse.result()))


def test_sample_weight_validation():
    with pytest.raises(ValueError, match=r"SparseCategoricalAccuracy: expected sample_weight of shape \(3,\) \(one "
                                         r"weight per sample\), received shape \(2,\)"):
        metrics.SparseCategoricalAccuracy().update([0, 1, 0], np.eye(3)[:, :2], sample_weight=[1, 2])
    with pytest.raises(ValueError, match=r"Precision: expected sample_weight of shape \(2,\) \(one weight per "
                                         r"sample\) or \(2, 3\), received shape \(3,\)"):
        metrics.Precision().update(np.ones((2, 3)), np.ones((2, 3)), sample_weight=[1, 2, 3])


# -- lookup as compile(metrics=[...]) does it ------------------------------------------------------------
@pytest.mark.parametrize("fn, cls", [
    (metrics.sparse_categorical_accuracy, metrics.SparseCategoricalAccuracy),
    (metrics.categorical_accuracy, metrics.CategoricalAccuracy),
    (metrics.binary_accuracy, metrics.BinaryAccuracy),
    (metrics.top_k_categorical_accuracy, metrics.TopKCategoricalAccuracy),
    (metrics.sparse_top_k_categorical_accuracy, metrics.SparseTopKCategoricalAccuracy),
    (metrics.mean_squared_error, metrics.MeanSquaredError),
    (losses.mean_absolute_error, metrics.MeanAbsoluteError),
    (losses.categorical_crossentropy, metrics.CategoricalCrossentropy),
    (losses.kl_divergence, metrics.KLDivergence),
], ids=lambda x: getattr(x, "__name__", None))
def test_get_of_a_function_is_its_class_named_after_it(fn, cls):
    metric = metrics.get(fn)
    assert type(metric) is cls and metric.name == fn.__name__
    assert metrics.serialize(fn)["config"] == fn.__name__
    assert type(metrics.get(metrics.serialize(fn))) is cls


def test_other_functions_are_wrapped_in_a_mean():
    def doubled_error(y_true, y_pred):
        return 2 * np.abs(np.asarray(y_pred) - np.asarray(y_true)).mean(axis=-1)

    metric = metrics.get(doubled_error)
    assert type(metric) is metrics.MeanMetricWrapper and metric.name == "doubled_error"
    metric.update_state([[0.0], [0.0]], [[1.0], [3.0]], sample_weight=[1, 3])
    assert metric.result() == pytest.approx((2 + 18) / 4)
    loss_as_metric = metrics.get(losses.Huber(name="my_huber"))
    assert type(loss_as_metric) is metrics.MeanMetricWrapper and loss_as_metric.name == "my_huber"
    huber = metrics.get(metrics.huber)  # Keras has the function, but no Huber metric
    assert type(huber) is metrics.MeanMetricWrapper and huber.name == "huber"


def test_metric_functions_are_the_loss_functions():
    assert metrics.mean_squared_error is losses.mean_squared_error is metrics.mse
    assert metrics.categorical_crossentropy is losses.categorical_crossentropy
    # cosine similarity as a metric is the loss's negative, as in Keras
    y, p = INPUTS["targets"], INPUTS["predictions"]
    np.testing.assert_array_equal(metrics.cosine_similarity(y, p), -losses.cosine_similarity(y, p))


@pytest.mark.parametrize("name, cls", [
    ("root_mean_squared_error", metrics.RootMeanSquaredError), ("logcosh", metrics.LogCoshError),
    ("kl_divergence", metrics.KLDivergence), ("sparse_categorical_crossentropy", metrics.SparseCategoricalCrossentropy),
    ("mean", metrics.Mean), ("Sum", metrics.Sum), ("mape", metrics.MeanAbsolutePercentageError),
])
def test_keras_names(name, cls):
    metric = metrics.get(name)
    assert type(metric) is cls and metric.name == name


@pytest.mark.parametrize("metric", [metrics.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
                                    metrics.SparseCategoricalCrossentropy(name="sce"), metrics.CosineSimilarity(),
                                    metrics.RootMeanSquaredError(), metrics.Mean(name="m")],
                         ids=lambda m: type(m).__name__)
def test_config_round_trip(metric):
    again = metrics.get(json.loads(json.dumps(metrics.serialize(metric))))
    assert type(again) is type(metric) and again.get_config() == metric.get_config()


def test_reads_keras_configs():
    config = {"module": "keras.metrics", "class_name": "CategoricalCrossentropy", "registered_name": None,
              "config": {"name": "cce", "dtype": "float32", "from_logits": True, "label_smoothing": 0, "axis": -1}}
    metric = metrics.get(config)
    assert type(metric) is metrics.CategoricalCrossentropy and metric.name == "cce" and metric.from_logits


# -- metrics written for Keras: subclasses with their own state ---------------------------------------
class CategoricalTruePositives(metrics.Metric):
    """The Keras guide's custom metric (with NumPy for keras.ops)."""

    def __init__(self, name="categorical_true_positives", **kwargs):
        super().__init__(name=name, **kwargs)
        self.true_positives = self.add_variable(shape=(), name="ctp", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = (np.asarray(y_true).reshape(-1) == np.argmax(y_pred, axis=1)).astype("float32")
        if sample_weight is not None:
            values = values * np.asarray(sample_weight, dtype="float32")
        self.true_positives.assign_add(np.sum(values))

    def result(self):
        return self.true_positives

    def reset_state(self):
        self.true_positives.assign(0)


class RootMeanSquaredError(metrics.Metric):
    """Deep Learning with Python's custom metric: add_weight state, default reset_state."""

    def __init__(self, name="rmse", **kwargs):
        super().__init__(name=name, **kwargs)
        self.mse_sum = self.add_weight(name="mse_sum", initializer="zeros")
        self.total_samples = self.add_weight(name="total_samples", initializer="zeros", dtype="int32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = np.eye(np.shape(y_pred)[1])[y_true]
        self.mse_sum.assign_add(np.sum(np.square(y_true - y_pred)))
        self.total_samples.assign_add(np.shape(y_pred)[0])

    def result(self):
        return np.sqrt(self.mse_sum / self.total_samples)


def test_a_keras_style_metric_subclass_runs_as_written():
    metric = CategoricalTruePositives()
    assert metrics.get(metric) is metric and metric.name == "categorical_true_positives"
    metric.update([0, 1, 2], np.eye(3)[[0, 2, 2]], sample_weight=[1.0, 1.0, 3.0])
    assert float(metric.result()) == 4.0
    metric.reset()
    assert float(metric.result()) == 0.0 and metric.variables == [metric.true_positives]


def test_default_reset_state_restores_the_initial_values():
    metric = RootMeanSquaredError(dtype="float64")
    metric.update_state(np.array([0, 1]), np.array([[1.0, 0.0], [0.0, 0.5]]))
    assert float(metric.result()) == pytest.approx(np.sqrt(0.25 / 2))
    assert metric.total_samples.dtype == np.int32 and metric.mse_sum.dtype == np.float64
    metric.reset_state()
    assert (float(metric.mse_sum), int(metric.total_samples)) == (0.0, 0)
    with pytest.raises(ValueError, match=r'metric variable "mse_sum": expected a value of shape \(\), '
                                         r"received shape \(2,\)"):
        metric.mse_sum.assign([1.0, 2.0])


def test_variables_start_from_their_initializer():
    metric = metrics.Metric(name="m")
    ones = metric.add_variable(shape=(2,), initializer="ones", name="ones")
    seven = metric.add_weight("seven", initializer=7)
    ones.assign_add([1, 2])
    np.testing.assert_array_equal(ones.numpy(), [2.0, 3.0])
    metric.reset_state()
    np.testing.assert_array_equal(np.asarray(ones), [1.0, 1.0])
    assert float(seven) == 7.0 and (ones * 2).tolist() == [2.0, 2.0]
    with pytest.raises(NotImplementedError, match=r"Metric does not implement update_state"):
        metric.update_state([0], [0])


def test_mean_metric_wrapper_config_names_its_function():
    wrapper = metrics.MeanMetricWrapper(metrics.huber, name="h", delta=0.5)
    again = metrics.get(json.loads(json.dumps(metrics.serialize(wrapper))))
    assert type(again) is metrics.MeanMetricWrapper and again.get_config() == {"name": "h", "fn": "huber", "delta": 0.5}
    keras_config = {"class_name": "MeanMetricWrapper", "config": {"name": "mse", "dtype": "float32", "fn": {
        "module": "builtins", "class_name": "function", "config": "mean_squared_error", "registered_name": "function"}}}
    assert metrics.get(keras_config).get_config() == {"name": "mse", "fn": "mean_squared_error"}
    with pytest.raises(ValueError, match=r"MeanMetricWrapper: unknown function 'my_fn'"):
        metrics.get({"class_name": "MeanMetricWrapper", "config": {"fn": "my_fn"}})
