"""The cross-entropies: categorical (one-hot), sparse (integer labels) and binary.

Probabilities are clipped to ``[1e-7, 1 - 1e-7]`` as Keras does (the gradient is
zero where clipping bites); ``from_logits=True`` uses log-softmax / log-sigmoid
forms that stay finite for logits of any size. Each class carries
``output_activation`` (``"softmax"`` / ``"sigmoid"``) and ``with_logits()``, so a
model ending in that activation can hand the loss its logits and get the
well-conditioned gradient ``p - y`` per sample.
"""

from __future__ import annotations

from .. import backend
from .base import Loss, MeanOverLastAxis
from .inputs import (EPSILON, as_pair, check_bool, check_fraction, check_last_axis, one_hot, smoothed_one_hot,
                     sparse_labels)
from .reduction import DEFAULT


def _log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - backend.xp.log(backend.xp.exp(shifted).sum(axis=-1, keepdims=True))


def _sigmoid(z):
    """``1 / (1 + e^-z)`` written so that ``exp`` never overflows."""
    xp = backend.xp
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _categorical_ce(y, y_pred, from_logits: bool, with_gradient: bool):
    """Per-row ``-sum(y * log p)`` over the last axis, and d(row value)/dy_pred if asked.

    From logits z: ``log p = log_softmax(z)``, gradient ``softmax(z) * sum(y) - y``.
    From probabilities (Keras): ``q = p / sum(p)``, ``c = clip(q, eps, 1 - eps)``,
    ``log p = log c``; with ``g = -y / c`` where unclipped (0 elsewhere) the
    gradient through the normalisation is ``(g - sum(g * q)) / sum(p)``.
    """
    xp = backend.xp
    if from_logits:
        log_p = _log_softmax(y_pred)
        values = -(y * log_p).sum(axis=-1)
        grad = xp.exp(log_p) * y.sum(axis=-1, keepdims=True) - y if with_gradient else None
        return values, grad
    total = y_pred.sum(axis=-1, keepdims=True)
    q = y_pred / total
    c = xp.clip(q, EPSILON, 1 - EPSILON)
    values = -(y * xp.log(c)).sum(axis=-1)
    if not with_gradient:
        return values, None
    g = xp.where(c == q, -y / c, 0)
    return values, (g - (g * q).sum(axis=-1, keepdims=True)) / total


def _check_ignore_class(owner: str, ignore_class) -> None:
    if ignore_class is not None:
        raise ValueError(f'{owner}: argument "ignore_class" is only supported at its default None, '
                         f"received {ignore_class!r}")


class _CrossEntropy(Loss):
    """What the cross-entropies share: ``from_logits`` and ``with_logits()``."""

    def __init__(self, from_logits: bool = False, reduction=DEFAULT, name: str | None = None):
        super().__init__(name, reduction)
        self.from_logits = check_bool(type(self).__name__, "from_logits", from_logits)

    def with_logits(self) -> "_CrossEntropy":
        """The same loss reading logits: for a model that fuses its final ``output_activation`` into the loss."""
        return type(self).from_config({**self.get_config(), "from_logits": True})

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits}


class CategoricalCrossentropy(_CrossEntropy):
    """``-sum_k y_k log p_k`` per row for one-hot ``y_true`` of ``y_pred``'s shape ``(n, ..., k)``.

    Per-sample values ``(n, ...)``. ``label_smoothing`` s replaces ``y`` by
    ``y (1 - s) + s / k``. Example: ``y_true = [[0, 1, 0], [0, 0, 1]]``,
    ``y_pred = [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]`` -> values ``[0.0513, 2.3026]``, loss 1.177.
    """

    default_name = "categorical_crossentropy"
    output_activation = "softmax"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction=DEFAULT, name: str | None = None):
        super().__init__(from_logits, reduction, name)
        owner = type(self).__name__
        self.label_smoothing = check_fraction(owner, "label_smoothing", label_smoothing)
        self.axis = check_last_axis(owner, axis)

    def _prepare(self, y_true, y_pred):
        return smoothed_one_hot(type(self).__name__, y_true, y_pred, self.label_smoothing)

    def _compute(self, y_true, y_pred, with_gradient):
        return _categorical_ce(y_true, y_pred, self.from_logits, with_gradient)

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing, "axis": self.axis}


class SparseCategoricalCrossentropy(_CrossEntropy):
    """``-log p[label]`` per row, labels of shape ``(n,)`` or ``(n, 1)`` against ``y_pred`` ``(n, k)``.

    Per-sample values ``(n,)``. Example: labels ``[1, 2]``,
    ``y_pred = [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]`` -> values ``[0.0513, 2.3026]``.
    """

    default_name = "sparse_categorical_crossentropy"
    output_activation = "softmax"

    def __init__(self, from_logits: bool = False, ignore_class=None, reduction=DEFAULT, name: str | None = None):
        super().__init__(from_logits, reduction, name)
        _check_ignore_class(type(self).__name__, ignore_class)

    def _prepare(self, y_true, y_pred):
        owner = type(self).__name__
        y_true, y_pred = as_pair(owner, y_true, y_pred, min_rank=2)
        labels = sparse_labels(owner, y_true, y_pred)
        return one_hot(labels, y_pred.shape[-1], y_pred.dtype), y_pred

    def _compute(self, y_true, y_pred, with_gradient):
        return _categorical_ce(y_true, y_pred, self.from_logits, with_gradient)


class BinaryCrossentropy(_CrossEntropy, MeanOverLastAxis):
    """``-(y log p + (1 - y) log(1 - p))`` per element, averaged over the last axis per sample.

    From logits z it is ``max(z, 0) - z y + log(1 + e^-|z|)`` with gradient
    ``sigmoid(z) - y``. ``label_smoothing`` s replaces ``y`` by ``y (1 - s) + s / 2``.
    Example: ``y_true = [[0, 1], [0, 0]]``, ``y_pred = [[0.6, 0.4], [0.4, 0.6]]``
    -> values ``[0.916, 0.714]``, loss 0.815.
    """

    default_name = "binary_crossentropy"
    output_activation = "sigmoid"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction=DEFAULT, name: str | None = None):
        super().__init__(from_logits, reduction, name)
        owner = type(self).__name__
        self.label_smoothing = check_fraction(owner, "label_smoothing", label_smoothing)
        self.axis = check_last_axis(owner, axis)

    def _prepare(self, y_true, y_pred):
        y_true, y_pred = super()._prepare(y_true, y_pred)
        if self.label_smoothing:
            y_true = y_true * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        return y_true, y_pred

    def _elements(self, y, z, with_gradient):
        xp = backend.xp
        if self.from_logits:
            values = xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))
            return values, (_sigmoid(z) - y if with_gradient else None)
        c = xp.clip(z, EPSILON, 1 - EPSILON)
        values = -(y * xp.log(c) + (1 - y) * xp.log(1 - c))
        return values, (xp.where(c == z, (c - y) / (c * (1 - c)), 0) if with_gradient else None)

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing, "axis": self.axis}


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample ``-sum_k y_k log p_k`` ``(n, ...)``, as ``keras.losses.categorical_crossentropy``;
    see ``CategoricalCrossentropy``."""
    return CategoricalCrossentropy(from_logits, label_smoothing, axis, reduction=None)(y_true, y_pred)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    """Per-sample ``-log p[label]`` ``(n, ...)``, as ``keras.losses.sparse_categorical_crossentropy``;
    ``ignore_class`` is supported at its default None. See ``SparseCategoricalCrossentropy``."""
    check_last_axis("sparse_categorical_crossentropy", axis)
    return SparseCategoricalCrossentropy(from_logits, ignore_class, reduction=None)(y_true, y_pred)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample ``mean(-(y log p + (1 - y) log(1 - p)), axis=-1)``, as
    ``keras.losses.binary_crossentropy``; see ``BinaryCrossentropy``."""
    return BinaryCrossentropy(from_logits, label_smoothing, axis, reduction=None)(y_true, y_pred)
