"""Precision, Recall, AUC and top-k accuracies: formulas written out here, Keras's numbers, names, config."""

import json
import math

import numpy as np
import pytest

from convscope import metrics
from convscope.metrics import (AUC, MeanSquaredError, Precision, Recall, SparseTopKCategoricalAccuracy,
                               TopKCategoricalAccuracy)


def keras_data():
    """The batch the Keras reference numbers below were computed on (keras 3.15.1, torch backend, float32)."""
    rng = np.random.default_rng(3)
    y_true = (rng.random(60) < 0.4).astype(np.float32)
    y_pred = rng.random(60).astype(np.float32)
    y_pred[:5] = [0.0, 1.0, 0.5, 100 / 199, 0.25]  # ends, a default threshold, a threshold of AUC's grid
    scores = rng.random((8, 5)).astype(np.float32)
    labels = rng.integers(0, 5, 8)
    return y_true, y_pred, scores, labels


def counts_by_loop(y_true, y_pred, thresholds):
    """tp, fp, tn, fn per threshold, by the definition: predicted positive when p > t."""
    out = []
    for t in thresholds:
        tp = fp = tn = fn = 0
        for label, p in zip(np.ravel(y_true), np.ravel(y_pred)):
            positive = p > t
            if label:
                tp, fn = tp + positive, fn + (not positive)
            else:
                fp, tn = fp + positive, tn + (not positive)
        out.append((tp, fp, tn, fn))
    return out


def ratio(a, b):
    return a / b if b else 0.0


def roc_auc_by_hand(y_true, y_pred, num_thresholds=200):
    thresholds = [-1e-7] + [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)] + [1 + 1e-7]
    points = [(ratio(fp, fp + tn), ratio(tp, tp + fn)) for tp, fp, tn, fn in counts_by_loop(y_true, y_pred, thresholds)]
    return sum((x0 - x1) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(points, points[1:]))


# -- Precision and Recall ---------------------------------------------------------------------
def test_precision_recall_keras_docstring_examples():
    p, r = Precision(), Recall()
    for m in (p, r):
        m.update([0, 1, 1, 1], [1, 0, 1, 1])
    assert p.result() == pytest.approx(2 / 3) and r.result() == pytest.approx(2 / 3)
    assert (p.name, r.name) == ("precision", "recall")


def test_precision_recall_accumulate_over_batches_and_reset():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 2, (3, 10, 2)), rng.random((3, 10, 2))
    p, r = Precision(thresholds=0.3), Recall(thresholds=0.3)
    for m in (p, r):
        for a, b in zip(y_true, y_pred):
            m.update(a, b)
    (tp, fp, _, fn), = counts_by_loop(y_true, y_pred, [0.3])
    assert p.result() == pytest.approx(tp / (tp + fp), rel=1e-15)
    assert r.result() == pytest.approx(tp / (tp + fn), rel=1e-15)
    p.reset()
    assert p.result() == 0.0  # 0 / 0 is 0, as Keras's divide_no_nan


def test_several_thresholds_give_an_array():
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 2, 40), rng.random(40)
    p = Precision(thresholds=[0.2, 0.5, 0.8])
    p.update(y_true, y_pred)
    expected = [ratio(tp, tp + fp) for tp, fp, _, _ in counts_by_loop(y_true, y_pred, [0.2, 0.5, 0.8])]
    np.testing.assert_allclose(p.result(), expected, rtol=1e-15)


def test_top_k_and_class_id():
    scores = np.array([[0.9, 0.8, 0.1, 0.3], [0.2, 0.6, 0.7, 0.1]])
    labels = np.array([[1, 0, 0, 1], [0, 0, 1, 0]])
    p = Precision(top_k=2)  # positives: {0, 1} and {1, 2}; correct: 0 and 2
    p.update(labels, scores)
    assert p.result() == 0.5
    r = Recall(top_k=1)  # predicted {0}, {2}: 2 of the 3 positive labels
    r.update(labels, scores)
    assert r.result() == pytest.approx(2 / 3)
    r = Recall(class_id=3, thresholds=0.2)  # column 3: label 1 with 0.3 (found), label 0 with 0.1
    r.update(labels, scores)
    assert r.result() == 1.0


def test_precision_recall_match_keras():
    y_true, y_pred, scores, labels = keras_data()
    one_hot = np.eye(5, dtype=np.float32)[labels]
    cases = [
        (Precision(), y_true, y_pred, 0.4000000059604645),
        (Recall(), y_true, y_pred, 0.5),
        (Precision(thresholds=[0.2, 0.5, 0.8]), y_true, y_pred, [0.36734694242477417, 0.4000000059604645,
                                                                0.4444444477558136]),
        (Recall(thresholds=[0.0, 0.5, 1.0]), y_true, y_pred, [0.9583333134651184, 0.5, 0.0]),  # Keras's bucket path
        (Precision(top_k=2), one_hot, scores, 0.125),
        (Recall(class_id=1, thresholds=0.3), one_hot, scores, 1.0),
    ]
    for metric, a, b, expected in cases:
        metric.update(a, b)
        np.testing.assert_allclose(metric.result(), expected, rtol=1e-6)


# -- AUC ------------------------------------------------------------------------------------------
def test_auc_keras_docstring_example():
    m = AUC(num_thresholds=3)
    m.update([0, 0, 1, 1], [0, 0.5, 0.3, 0.9])
    assert m.result() == pytest.approx(0.75)
    assert m.name == "auc"


def test_auc_default_is_200_threshold_roc_interpolation():
    rng = np.random.default_rng(2)
    y_true, y_pred = rng.integers(0, 2, 300), rng.random(300)
    m = AUC()
    m.update(y_true[:150], y_pred[:150])
    m.update(y_true[150:], y_pred[150:])
    assert len(m.thresholds) == 200 and m.thresholds[0] == -1e-7 and m.thresholds[-1] == 1 + 1e-7
    assert m.result() == pytest.approx(roc_auc_by_hand(y_true, y_pred), rel=1e-13)


def test_auc_of_separable_and_constant_predictions():
    perfect = AUC()
    perfect.update([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert perfect.result() == pytest.approx(1.0)
    constant = AUC()
    constant.update([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])
    assert constant.result() == pytest.approx(0.5)


def test_auc_from_logits_applies_the_sigmoid():
    rng = np.random.default_rng(4)
    y_true, logits = rng.integers(0, 2, 50), rng.normal(scale=3, size=50)
    a, b = AUC(from_logits=True), AUC()
    a.update(y_true, logits)
    b.update(y_true, 1 / (1 + np.exp(-logits)))
    assert a.result() == pytest.approx(b.result(), rel=1e-12)


def test_auc_pr_summations_by_hand():
    y_true, y_pred = [0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.9]
    thresholds = [-1e-7, 0.25, 0.5, 0.75, 1 + 1e-7]
    c = counts_by_loop(y_true, y_pred, thresholds)
    recall = [ratio(tp, tp + fn) for tp, fp, tn, fn in c]
    precision = [ratio(tp, tp + fp) for tp, fp, tn, fn in c]
    for method, height in (("minoring", min), ("majoring", max)):
        m = AUC(num_thresholds=5, curve="PR", summation_method=method)
        m.update(y_true, y_pred)
        expected = sum((recall[i] - recall[i + 1]) * height(precision[i], precision[i + 1]) for i in range(4))
        assert m.result() == pytest.approx(expected, rel=1e-14)
    # Davis & Goadrich: precision interpolated through tp and P = tp + fp between thresholds
    expected = 0.0
    for (tp0, fp0, _, _), (tp1, fp1, _, fn1) in zip(c, c[1:]):
        p0, p1 = tp0 + fp0, tp1 + fp1
        dtp, dp = tp0 - tp1, p0 - p1
        slope = ratio(dtp, max(dp, 0))
        intercept = tp1 - slope * p1
        log_ratio = math.log(p0 / p1) if p0 > 0 and p1 > 0 else 0.0
        expected += ratio(slope * (dtp + intercept * log_ratio), max(tp1 + fn1, 0))
    m = AUC(num_thresholds=5, curve="PR")
    m.update(y_true, y_pred)
    assert m.result() == pytest.approx(expected, rel=1e-14)


def test_auc_matches_keras():
    y_true, y_pred, _, _ = keras_data()
    cases = [
        (AUC(), 0.5017361044883728),
        (AUC(curve="PR"), 0.432935893535614),
        (AUC(summation_method="minoring"), 0.49768513441085815),
        (AUC(curve="PR", summation_method="majoring"), 0.4448607265949249),
        (AUC(curve="PRGAIN"), 0.06255784630775452),
        (AUC(num_thresholds=10), 0.5028935670852661),
        (AUC(thresholds=[0.3, 0.6, 0.1]), 0.5549768209457397),
        (AUC(thresholds=[0.25, 0.5, 0.75]), 0.4756944179534912),
    ]
    for metric, expected in cases:
        metric.update(y_true, y_pred)
        assert metric.result() == pytest.approx(expected, rel=1e-6), metric.get_config()


def test_auc_config_is_keras_and_round_trips():
    m = AUC(thresholds=[0.3, 0.6, 0.1])
    config = m.get_config()
    # keras 3.15.1's AUC(thresholds=[0.3, 0.6, 0.1]).get_config(), name and dtype aside
    assert config == {"name": "auc", "num_thresholds": 5, "curve": "ROC", "summation_method": "interpolation",
                      "multi_label": False, "num_labels": None, "label_weights": None, "from_logits": False,
                      "thresholds": [0.1, 0.3, 0.6]}
    again = metrics.get({"class_name": "AUC", "config": json.loads(json.dumps({**config, "dtype": "float32"}))})
    assert again.get_config() == config and again.thresholds == m.thresholds
    pr = AUC(num_thresholds=50, curve="pr", summation_method="Majoring", from_logits=True)
    assert AUC.from_config(pr.get_config()).get_config() == pr.get_config()
    assert pr.get_config()["curve"] == "PR" and pr.get_config()["summation_method"] == "majoring"


# -- top-k accuracies ---------------------------------------------------------------------------
def test_top_k_keras_docstring_examples():
    m = TopKCategoricalAccuracy(k=1)
    m.update([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
    assert m.result() == 0.5 and m.name == "top_k_categorical_accuracy"
    s = SparseTopKCategoricalAccuracy(k=1)
    s.update([2, 1], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
    assert s.result() == 0.5 and s.name == "sparse_top_k_categorical_accuracy"


def test_top_k_by_hand_and_ties_count():
    rng = np.random.default_rng(5)
    scores = rng.random((20, 7))
    labels = rng.integers(0, 7, 20)
    for k in (1, 3, 7):
        m = SparseTopKCategoricalAccuracy(k=k)
        m.update(labels, scores)
        expected = np.mean([labels[i] in np.argsort(-scores[i])[:k] for i in range(20)])
        assert m.result() == pytest.approx(expected)
        d = TopKCategoricalAccuracy(k=k)
        d.update(np.eye(7)[labels], scores)
        assert d.result() == m.result()
    tied = SparseTopKCategoricalAccuracy(k=1)
    tied.update([1], [[0.5, 0.5, 0.0]])  # Keras's in_top_k: a score equal to the k-th counts
    assert tied.result() == 1.0


def test_sparse_top_k_from_sorted_ids():
    m = SparseTopKCategoricalAccuracy(k=2, from_sorted_ids=True)
    m.update([[3], [1], [0]], [[3, 0, 2], [2, 0, 1], [4, 0, 9]])
    assert m.result() == pytest.approx(2 / 3)
    assert m.get_config() == {"name": "sparse_top_k_categorical_accuracy", "k": 2, "from_sorted_ids": True}
    assert SparseTopKCategoricalAccuracy().get_config() == {"name": "sparse_top_k_categorical_accuracy", "k": 5}


def test_top_k_match_keras():
    _, _, scores, labels = keras_data()
    d, s = TopKCategoricalAccuracy(k=2), SparseTopKCategoricalAccuracy(k=2)
    d.update(np.eye(5, dtype=np.float32)[labels], scores)
    s.update(labels, scores)
    assert d.result() == s.result() == 0.25


# -- names ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, cls", [
    ("precision", Precision), ("Precision", Precision), ("recall", Recall), ("Recall", Recall),
    ("auc", AUC), ("AUC", AUC), ("top_k_categorical_accuracy", TopKCategoricalAccuracy),
    ("TopKCategoricalAccuracy", TopKCategoricalAccuracy),
    ("sparse_top_k_categorical_accuracy", SparseTopKCategoricalAccuracy),
    ("mse", MeanSquaredError), ("MSE", MeanSquaredError), ("mean_squared_error", MeanSquaredError),
    ("MeanSquaredError", MeanSquaredError), ("MAE", metrics.MeanAbsoluteError),
])
def test_keras_string_names(name, cls):
    m = metrics.get(name)
    assert type(m) is cls and m.name == name


@pytest.mark.parametrize("metric", [Precision(thresholds=[0.2, 0.7], name="p"), Recall(top_k=3, class_id=1),
                                    TopKCategoricalAccuracy(k=3), AUC(num_thresholds=17, curve="PR")],
                         ids=lambda m: type(m).__name__)
def test_config_round_trip(metric):
    config = json.loads(json.dumps(metric.get_config()))
    again = metrics.get({"class_name": type(metric).__name__, "config": config})
    assert type(again) is type(metric) and again.get_config() == metric.get_config()


# -- validation --------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, error, message", [
    (lambda: Precision(thresholds=1.5), ValueError,
     r'Precision: argument "thresholds" must hold values in \[0, 1\], received 1.5'),
    (lambda: Recall(thresholds=[0.2, "x"]), TypeError,
     r"Recall: argument \"thresholds\" must be a number or a list of numbers, received \[0.2, 'x'\]"),
    (lambda: Precision(thresholds=[]), ValueError, r'Precision: argument "thresholds" must hold values in \[0, 1\]'),
    (lambda: Precision(top_k=0), ValueError, r'Precision: argument "top_k" must be None or an integer >= 1, received 0'),
    (lambda: Recall(class_id=-1), ValueError, r'Recall: argument "class_id" must be None or an integer >= 0'),
    (lambda: AUC(num_thresholds=1), ValueError, r'AUC: argument "num_thresholds" must be an integer > 1, received 1'),
    (lambda: AUC(curve="Roc"), ValueError,
     r"AUC: argument \"curve\" must be one of \[\"PR\", \"ROC\", \"PRGAIN\"\], received 'Roc'"),
    (lambda: AUC(summation_method="trapezoid"), ValueError,
     r"AUC: argument \"summation_method\" must be one of \['interpolation', 'minoring', 'majoring'\], "
     r"received 'trapezoid'"),
    (lambda: AUC(multi_label=True), ValueError,
     r"AUC: multi_label, num_labels and label_weights are only supported at their defaults"),
    (lambda: AUC(from_logits=1), TypeError, r'AUC: argument "from_logits" must be a bool, received 1'),
    (lambda: AUC(thresholds=[-0.1]), ValueError, r'AUC: argument "thresholds" must hold values in \[0, 1\]'),
    (lambda: TopKCategoricalAccuracy(k=0), ValueError,
     r'TopKCategoricalAccuracy: argument "k" must be an integer >= 1, received 0'),
    (lambda: SparseTopKCategoricalAccuracy(k=2.5), ValueError,
     r'SparseTopKCategoricalAccuracy: argument "k" must be an integer >= 1, received 2.5'),
    (lambda: SparseTopKCategoricalAccuracy(from_sorted_ids="yes"), TypeError,
     r'SparseTopKCategoricalAccuracy: argument "from_sorted_ids" must be a bool'),
])
def test_argument_validation(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_update_validation():
    with pytest.raises(ValueError, match=r"Precision: expected y_true of shape \(2, 3\) like y_pred"):
        Precision().update([1, 0], np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"AUC: y_true and y_pred must hold the same number of samples"):
        AUC().update([1, 0, 1], [0.2, 0.4])
    with pytest.raises(ValueError, match=r"Recall: class_id 3 needs y_pred of shape \(n, num_classes\) with more "
                                         r"than 3 classes, received shape \(2, 3\)"):
        Recall(class_id=3).update(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"TopKCategoricalAccuracy: expected y_true of shape \(2, 3\)"):
        TopKCategoricalAccuracy().update([0, 1], np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"SparseTopKCategoricalAccuracy: expected labels in \[0, 3\)"):
        SparseTopKCategoricalAccuracy().update([0, 5], np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"SparseTopKCategoricalAccuracy: expected labels of shape \(2,\) or "
                                         r"\(2, 1\), received shape \(2, 2\)"):
        SparseTopKCategoricalAccuracy(from_sorted_ids=True).update([[0, 1], [1, 2]], np.zeros((2, 3)))
