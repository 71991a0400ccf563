"""Confusion-matrix metrics, as ``keras.metrics``: ``Precision``, ``Recall`` and ``AUC``.

They count true/false positives/negatives at thresholds over all batches: a
prediction ``p`` is positive at threshold ``t`` when ``p > t`` and a label is
positive when nonzero. With ``sample_weight`` (one per sample, ``(n,)`` or
``(n, 1)``, repeated over each sample's entries, or one per entry) each entry
counts with its weight, as in Keras. ``result`` is a ratio of the counts, not a
mean of batch values.
"""

from __future__ import annotations

from .. import backend
from ..losses.inputs import as_pair, dense_targets
from ..losses.reduction import sample_weights
from .base import Metric

_EPSILON = 1e-7  # Keras's backend.epsilon(): AUC's end thresholds sit just outside [0, 1]
_NEG_INF = -1e10  # Keras's threshold with top_k: every kept prediction is positive


def _divide_no_nan(a, b):
    """``a / b``, 0 where ``b == 0`` (Keras's ``ops.divide_no_nan``)."""
    xp = backend.xp
    return xp.where(b == 0, 0.0, a / xp.where(b == 0, 1.0, b))


def _evenly_distributed(thresholds) -> bool:
    """Keras's test for thresholds ``i / (n - 1)``, for which it counts by buckets instead of comparing."""
    n = len(thresholds)
    if n < 3:
        return False
    xp = backend.xp
    return bool(xp.allclose(thresholds, xp.arange(n, dtype=xp.float32) / (n - 1), atol=_EPSILON))


def _check_thresholds(owner: str, thresholds) -> list:
    values = thresholds if isinstance(thresholds, (list, tuple)) else [thresholds]
    for t in values:
        if isinstance(t, bool) or not isinstance(t, (int, float)):
            raise TypeError(f'{owner}: argument "thresholds" must be a number or a list of numbers, '
                            f"received {thresholds!r}")
    invalid = [t for t in values if not 0 <= t <= 1]
    if invalid or not values:
        raise ValueError(f'{owner}: argument "thresholds" must hold values in [0, 1], received {thresholds!r}')
    return [float(t) for t in values]


def _confusion_counts(labels, scores, weights, thresholds, evenly: bool):
    """``(tp, fp, tn, fn)``, float64 arrays ``(len(thresholds),)``, for flat boolean ``labels``, ``scores``
    and ``weights`` (each entry counts ``weight`` times).

    Positive at threshold i means ``score > thresholds[i]``. For evenly spaced
    thresholds Keras sorts predictions into buckets ``ceil(p (T - 1)) - 1``
    (``p`` clipped to [0, 1]; with end thresholds outside [0, 1] bucket -1 joins
    bucket 0) and accumulates from the top; the counts agree with the
    comparison up to rounding of ``p (T - 1)``, and are reproduced here exactly.
    """
    xp = backend.xp
    num = len(thresholds)
    positives = labels * weights
    negatives = ~labels * weights
    if evenly:
        scores = xp.clip(scores, 0.0, 1.0)
        buckets = (xp.ceil(scores * (num - 1)) - 1).astype(xp.int64)
        if thresholds[0] < 0.0 or thresholds[-1] > 1.0:
            buckets = xp.maximum(buckets, 0)
        keep = buckets >= 0
        tp = xp.bincount(buckets[keep], weights=positives[keep], minlength=num)[::-1].cumsum()[::-1]
        fp = xp.bincount(buckets[keep], weights=negatives[keep], minlength=num)[::-1].cumsum()[::-1]
    else:
        predicted = scores[None, :] > xp.asarray(thresholds, dtype=scores.dtype)[:, None]
        tp = predicted.astype(xp.float64) @ positives
        fp = predicted.astype(xp.float64) @ negatives
    total_true = positives.sum()
    return tp, fp, negatives.sum() - fp, total_true - tp


class _ConfusionMetric(Metric):
    """Accumulates confusion counts at ``self._thresholds`` (set before ``Metric.__init__``)."""

    def __init__(self, name: str | None = None):
        super().__init__(name)
        self.reset_state()

    def reset_state(self) -> None:
        xp = backend.xp
        n = len(self._thresholds)
        self.true_positives, self.false_positives = xp.zeros(n), xp.zeros(n)
        self.true_negatives, self.false_negatives = xp.zeros(n), xp.zeros(n)

    def _prepare(self, y_true, y_pred, weights):
        """Flat boolean labels, float scores and float64 weights for the counts."""
        y_true = dense_targets(type(self).__name__, y_true, y_pred)
        return (y_true != 0).reshape(-1), y_pred.reshape(-1), weights.reshape(-1)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        owner = type(self).__name__
        y_true, y_pred = as_pair(owner, y_true, y_pred)
        weights = sample_weights(owner, sample_weight, y_pred.shape, backend.xp.float64)
        weights = backend.xp.ones(y_pred.shape) if weights is None else weights
        counts = _confusion_counts(*self._prepare(y_true, y_pred, weights), self._thresholds, self._evenly)
        for total, batch in zip((self.true_positives, self.false_positives, self.true_negatives,
                                 self.false_negatives), counts):
            total += batch


class _ThresholdMetric(_ConfusionMetric):
    """Precision and recall: ``thresholds`` (default 0.5), ``top_k`` and ``class_id`` as in Keras."""

    def __init__(self, thresholds=None, top_k: int | None = None, class_id: int | None = None,
                 name: str | None = None):
        owner = type(self).__name__
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f'{owner}: argument "top_k" must be None or an integer >= 1, received {top_k!r}')
        if class_id is not None and (isinstance(class_id, bool) or not isinstance(class_id, int) or class_id < 0):
            raise ValueError(f'{owner}: argument "class_id" must be None or an integer >= 0, received {class_id!r}')
        self.init_thresholds = thresholds
        self.top_k, self.class_id = top_k, class_id
        if thresholds is None:
            self._thresholds = [0.5 if top_k is None else _NEG_INF]
        else:
            self._thresholds = _check_thresholds(owner, thresholds)
        self._evenly = _evenly_distributed(self._thresholds)
        super().__init__(name)

    @property
    def thresholds(self) -> list:
        return list(self._thresholds)

    def _prepare(self, y_true, y_pred, weights):
        xp = backend.xp
        owner = type(self).__name__
        y_true = dense_targets(owner, y_true, y_pred)
        if self.top_k is not None:
            # Keras keeps the top_k scores of each row and pushes the others to -1e10.
            order = xp.argsort(-y_pred, axis=-1, kind="stable")[..., :self.top_k]
            kept = xp.zeros(y_pred.shape, dtype=bool)
            xp.put_along_axis(kept, order, True, axis=-1)
            y_pred = xp.where(kept, y_pred, _NEG_INF)
        if self.class_id is not None:
            if y_pred.ndim < 2 or self.class_id >= y_pred.shape[-1]:
                raise ValueError(f"{owner}: class_id {self.class_id} needs y_pred of shape (n, num_classes) with "
                                 f"more than {self.class_id} classes, received shape {y_pred.shape}")
            y_true, y_pred = y_true[..., self.class_id], y_pred[..., self.class_id]
            weights = weights[..., self.class_id]
        return (y_true != 0).reshape(-1), y_pred.reshape(-1), weights.reshape(-1)

    def _ratio(self, other):
        values = _divide_no_nan(self.true_positives, self.true_positives + other)
        return float(values[0]) if len(self._thresholds) == 1 else values

    def get_config(self) -> dict:
        return {**super().get_config(), "thresholds": self.init_thresholds, "top_k": self.top_k,
                "class_id": self.class_id}


class Precision(_ThresholdMetric):
    """``tp / (tp + fp)`` over all batches (0 when nothing is predicted positive).

    ``y_pred`` in [0, 1] of any shape, ``y_true`` of the same shape (nonzero =
    positive). ``thresholds``: a number or list (then ``result`` is an array,
    one precision per threshold); ``top_k``: only each row's k highest scores
    can be positive; ``class_id``: only that column counts.

    Example: ``Precision().update([0, 1, 1, 1], [1, 0, 1, 1])`` -> ``2 / 3``.
    """

    default_name = "precision"

    def result(self):
        return self._ratio(self.false_positives)


class Recall(_ThresholdMetric):
    """``tp / (tp + fn)`` over all batches (0 without positive labels); arguments as ``Precision``.

    Example: ``Recall().update([0, 1, 1, 1], [1, 0, 1, 1])`` -> ``2 / 3``.
    """

    default_name = "recall"

    def result(self):
        return self._ratio(self.false_negatives)


_CURVES = {"roc": "ROC", "pr": "PR", "prgain": "PRGAIN"}
_SUMMATIONS = ("interpolation", "minoring", "majoring")


class AUC(_ConfusionMetric):
    """Area under the ROC (default) or precision-recall curve, by a Riemann sum over thresholds.

    Thresholds ``[-1e-7, 1/(T-1), ..., (T-2)/(T-1), 1 + 1e-7]`` for
    ``num_thresholds`` T (default 200), or the sorted ``thresholds`` given
    between the same two ends. At each threshold i: recall ``r_i = tp/(tp+fn)``,
    false-positive rate ``f_i = fp/(fp+tn)``, precision ``p_i = tp/(tp+fp)``
    (each 0 when its denominator is). For the ROC curve (``x = f``, ``y = r``)
    and the PR curve (``x = r``, ``y = p``, with ``minoring`` / ``majoring``):
    ``AUC = sum_i (x_i - x_{i+1}) h_i`` with ``h_i = (y_i + y_{i+1}) / 2``
    ("interpolation"), ``min`` ("minoring") or ``max`` ("majoring"). PR with
    "interpolation" follows Davis & Goadrich (2006) as Keras: between two
    thresholds precision is interpolated through the true/false positives,
    ``sum_i slope_i (dtp_i + c_i log(P_i / P_{i+1})) / (tp_{i+1} + fn_{i+1})``
    with ``P = tp + fp``, ``slope_i = dtp_i / dP_i`` and
    ``c_i = tp_{i+1} - slope_i P_{i+1}``. "PRGAIN" uses Keras's precision/recall gains.

    ``y_pred`` scores in [0, 1] (probabilities, or logits with
    ``from_logits``) of any shape, ``y_true`` of the same shape, nonzero =
    positive; all elements are pooled (``multi_label=False``).

    Example: ``AUC().update([0, 0, 1, 1], [0, 0.5, 0.3, 0.9])`` -> 0.75 (ROC).
    """

    default_name = "auc"

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC", summation_method: str = "interpolation",
                 name: str | None = None, thresholds=None, multi_label: bool = False, num_labels: int | None = None,
                 label_weights=None, from_logits: bool = False):
        owner = type(self).__name__
        if not isinstance(curve, str) or curve.lower() not in _CURVES or curve not in (curve.lower(), curve.upper()):
            raise ValueError(f'{owner}: argument "curve" must be one of ["PR", "ROC", "PRGAIN"], received {curve!r}')
        if summation_method not in _SUMMATIONS + ("Interpolation", "Minoring", "Majoring"):
            raise ValueError(f'{owner}: argument "summation_method" must be one of {list(_SUMMATIONS)}, '
                             f"received {summation_method!r}")
        if multi_label is not False or num_labels is not None or label_weights is not None:
            raise ValueError(f"{owner}: multi_label, num_labels and label_weights are only supported at their "
                             f"defaults (False, None, None), received {multi_label!r}, {num_labels!r}, "
                             f"{label_weights!r}")
        if not isinstance(from_logits, bool):
            raise TypeError(f'{owner}: argument "from_logits" must be a bool, received {from_logits!r}')
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            inner = sorted(_check_thresholds(owner, thresholds))
            self.num_thresholds = len(inner) + 2
            self._evenly = _evenly_distributed([0.0] + inner + [1.0])
        else:
            if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, int) or num_thresholds <= 1:
                raise ValueError(f'{owner}: argument "num_thresholds" must be an integer > 1, '
                                 f"received {num_thresholds!r}")
            self.num_thresholds = num_thresholds
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._evenly = True
        self._thresholds = [0.0 - _EPSILON] + inner + [1.0 + _EPSILON]
        self.curve = _CURVES[curve.lower()]
        self.summation_method = summation_method.lower()
        self.multi_label, self.num_labels, self.label_weights = False, None, None
        self.from_logits = from_logits
        super().__init__(name)

    @property
    def thresholds(self) -> list:
        return list(self._thresholds)

    def _prepare(self, y_true, y_pred, weights):
        if self.from_logits:
            y_pred = 0.5 * (1.0 + backend.xp.tanh(0.5 * y_pred))  # the sigmoid, without overflow
        return super()._prepare(y_true, y_pred, weights)

    def _interpolated_pr_auc(self) -> float:
        xp = backend.xp
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide_no_nan(dtp, xp.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = xp.where(both, _divide_no_nan(p[:-1], xp.maximum(p[1:], 0)), 1.0)
        return float(_divide_no_nan(slope * (dtp + intercept * xp.log(ratio)), xp.maximum(tp[1:] + fn[1:], 0)).sum())

    def result(self) -> float:
        xp = backend.xp
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolated_pr_auc()
        tp, fp, tn, fn = self.true_positives, self.false_positives, self.true_negatives, self.false_negatives
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide_no_nan(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, _divide_no_nan(tp, tp + fp)
        else:
            # Keras's gains: 0 recall gain and 1 precision gain without true positives, recall gain >= 0.
            scale = _divide_no_nan(tp + fn, tn + fp)
            recall_gain = xp.where(tp == 0, 0.0, 1.0 - scale * _divide_no_nan(fn, tp))
            x = xp.maximum(recall_gain, 0.0)
            y = xp.where(tp == 0, 1.0, 1.0 - scale * _divide_no_nan(fp, tp))
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = xp.minimum(y[:-1], y[1:])
        else:
            heights = xp.maximum(y[:-1], y[1:])
        return float(((x[:-1] - x[1:]) * heights).sum())

    def get_config(self) -> dict:
        config = {**super().get_config(), "num_thresholds": self.num_thresholds, "curve": self.curve,
                  "summation_method": self.summation_method, "multi_label": self.multi_label,
                  "num_labels": self.num_labels, "label_weights": self.label_weights,
                  "from_logits": self.from_logits}
        if self._init_from_thresholds:
            config["thresholds"] = self._thresholds[1:-1]
        return config
