"""Metrics: small hand-made batches, running means, Keras's choice of "accuracy", validation."""

import numpy as np
import pytest

from convscope import losses, metrics

Y_PRED = np.array([[0.1, 0.9, 0.8], [0.05, 0.95, 0.0]])


def test_categorical_accuracy_running_mean():
    m = metrics.CategoricalAccuracy()
    assert m.name == "categorical_accuracy" and m.result() == 0.0
    m.update([[0, 0, 1], [0, 1, 0]], Y_PRED)  # argmax 1 vs 2 (wrong), 1 vs 1 (right)
    assert m.result() == 0.5
    m.update([[1, 0, 0]], [[0.6, 0.3, 0.1]])
    assert m.result() == pytest.approx(2 / 3)
    m.reset()
    assert m.result() == 0.0


@pytest.mark.parametrize("labels", [[2, 1], [[2], [1]], [2.0, 1.0]], ids=["flat", "column", "whole_floats"])
def test_sparse_categorical_accuracy(labels):
    m = metrics.SparseCategoricalAccuracy()
    m.update(labels, Y_PRED)
    assert m.name == "sparse_categorical_accuracy" and m.result() == 0.5


def test_binary_accuracy_keras_example():
    m = metrics.BinaryAccuracy()
    m.update([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]])
    assert m.name == "binary_accuracy" and m.result() == 0.75


def test_binary_accuracy_threshold_is_strict():
    m = metrics.BinaryAccuracy(threshold=0.7)
    m.update([1, 1, 0, 0], [[0.98], [0.7], [0.0], [0.6]])  # 0.7 is not above 0.7
    assert m.result() == 0.75


def test_binary_accuracy_counts_every_label_of_multi_label_rows():
    m = metrics.BinaryAccuracy()
    m.update([[1, 0, 1], [0, 0, 1]], [[0.9, 0.2, 0.3], [0.1, 0.1, 0.8]])
    assert m.result() == pytest.approx(5 / 6)


def test_regression_metrics():
    mse, mae = metrics.MeanSquaredError(), metrics.MeanAbsoluteError()
    for m in (mse, mae):
        m.update([[0.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 0.0]])
        m.update([[2.0, 2.0]], [[0.0, 2.0]])
    assert mse.result() == pytest.approx((1 + 0 + 1 + 0 + 4 + 0) / 6)
    assert mae.result() == pytest.approx((1 + 0 + 1 + 0 + 2 + 0) / 6)
    assert (mse.name, mae.name) == ("mean_squared_error", "mean_absolute_error")


# -- "accuracy" follows the loss ------------------------------------------------------
@pytest.mark.parametrize("loss, cls", [
    ("sparse_categorical_crossentropy", metrics.SparseCategoricalAccuracy),
    ("categorical_crossentropy", metrics.CategoricalAccuracy),
    ("binary_crossentropy", metrics.BinaryAccuracy),
    (losses.SparseCategoricalCrossentropy(from_logits=True), metrics.SparseCategoricalAccuracy),
    (losses.CategoricalCrossentropy(label_smoothing=0.1), metrics.CategoricalAccuracy),
    (losses.BinaryCrossentropy(from_logits=True), metrics.BinaryAccuracy),
])
def test_accuracy_is_chosen_from_the_loss(loss, cls):
    m = metrics.get("accuracy", loss)
    assert type(m) is cls and m.name == "accuracy"


def test_acc_keeps_its_name_as_in_keras():
    assert metrics.get("acc", "sparse_categorical_crossentropy").name == "acc"


@pytest.mark.parametrize("y_true, y_pred, expected", [
    (np.array([1, 0]), np.array([[0.2, 0.8], [0.3, 0.7]]), 0.5),          # lower rank: sparse categorical
    (np.array([[1], [0]]), np.array([[0.2, 0.8], [0.3, 0.7]]), 0.5),      # a last axis of 1: sparse too
    (np.array([[0, 1], [1, 0]]), np.array([[0.2, 0.8], [0.9, 0.1]]), 1.0),  # same shape: categorical
    (np.array([[1], [0]]), np.array([[0.7], [0.6]]), 0.5),                # y_pred's last axis 1: binary
])
def test_accuracy_without_a_cross_entropy_follows_keras_3s_shape_rule(y_true, y_pred, expected):
    for loss in ("mse", None):
        metric = metrics.get("accuracy", loss)
        metric.update_state(y_true, y_pred)
        assert metric.name == "accuracy" and metric.result() == pytest.approx(expected)


@pytest.mark.parametrize("name, cls", [
    ("categorical_accuracy", metrics.CategoricalAccuracy),
    ("sparse_categorical_accuracy", metrics.SparseCategoricalAccuracy),
    ("binary_accuracy", metrics.BinaryAccuracy),
    ("mse", metrics.MeanSquaredError),
    ("mean_absolute_error", metrics.MeanAbsoluteError),
])
def test_get_by_name_keeps_the_name(name, cls):
    m = metrics.get(name)
    assert type(m) is cls and m.name == name


def test_get_unknown_lists_known_names():
    with pytest.raises(ValueError, match=r"Unknown metric 'f1_score'; known: .*'accuracy'.*'binary_accuracy'"):
        metrics.get("f1_score")
    with pytest.raises(TypeError, match=r"metrics.get: expected a metric name"):
        metrics.get(1)


def test_get_instance_and_config_round_trip():
    m = metrics.BinaryAccuracy(threshold=0.3, name="acc_03")
    assert metrics.get(m) is m
    again = metrics.get({"class_name": "BinaryAccuracy", "config": m.get_config()})
    assert again.get_config() == {"name": "acc_03", "threshold": 0.3}


# -- validation ---------------------------------------------------------------------
def test_update_rejects_mismatched_batches():
    with pytest.raises(ValueError, match=r"CategoricalAccuracy: y_true and y_pred must hold the same number of "
                                         r"samples, expected 2 .*received 1"):
        metrics.CategoricalAccuracy().update([[0, 1, 0]], Y_PRED)
    with pytest.raises(ValueError, match=r"CategoricalAccuracy: expected y_true of shape \(2, 3\)"):
        metrics.CategoricalAccuracy().update([[0, 1], [1, 0]], Y_PRED)
    with pytest.raises(ValueError, match=r"SparseCategoricalAccuracy: expected labels in \[0, 3\), received values in \[1, 3\]"):
        metrics.SparseCategoricalAccuracy().update([3, 1], Y_PRED)
    with pytest.raises(ValueError, match=r"BinaryAccuracy: expected y_true of shape \(2, 3\) like y_pred"):
        metrics.BinaryAccuracy().update([1, 0], Y_PRED)


def test_threshold_validation():
    with pytest.raises(ValueError, match=r'BinaryAccuracy: argument "threshold" must be a number in \[0, 1\], received 2'):
        metrics.BinaryAccuracy(threshold=2)
