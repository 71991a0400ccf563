"""Accuracies, as ``keras.metrics``: per-sample functions and the classes that average them.

Each function returns 1.0 where the prediction is right and 0.0 where not, per
sample (``binary_accuracy`` and ``accuracy``: per element), as floats of
``backend.floatx()``; each class is the weighted running mean of its function.
"""

from __future__ import annotations

from .. import backend
from ..losses.inputs import as_pair, dense_targets, sparse_labels
from .base import MeanMetricWrapper


def _check_k(owner: str, k) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f'{owner}: argument "k" must be an integer >= 1, received {k!r}')
    return k


def _check_threshold(owner: str, threshold) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise ValueError(f'{owner}: argument "threshold" must be a number in [0, 1], received {threshold!r}')
    return float(threshold)


def _in_top_k(target_scores, y_pred, k: int):
    """Keras's ``in_top_k``: the target's score is at least the k-th largest, so ties at the boundary count."""
    return (y_pred > target_scores[..., None]).sum(axis=-1) < k


def _accuracy(owner, y_true, y_pred):
    y_true, y_pred = as_pair(owner, y_true, y_pred)
    return backend.cast(dense_targets(owner, y_true, y_pred) == y_pred)


def _binary(owner, y_true, y_pred, threshold):
    y_true, y_pred = as_pair(owner, y_true, y_pred)
    return backend.cast(dense_targets(owner, y_true, y_pred) == (y_pred > threshold))


def _categorical(owner, y_true, y_pred):
    y_true, y_pred = as_pair(owner, y_true, y_pred, min_rank=2)
    y_true = dense_targets(owner, y_true, y_pred, one_hot=True)
    return backend.cast(y_true.argmax(axis=-1) == y_pred.argmax(axis=-1))


def _sparse_categorical(owner, y_true, y_pred):
    y_true, y_pred = as_pair(owner, y_true, y_pred, min_rank=2)
    return backend.cast(sparse_labels(owner, y_true, y_pred) == y_pred.argmax(axis=-1))


def _top_k(owner, y_true, y_pred, k):
    y_true, y_pred = as_pair(owner, y_true, y_pred, min_rank=2)
    y_true = dense_targets(owner, y_true, y_pred, one_hot=True)
    target = backend.xp.take_along_axis(y_pred, y_true.argmax(axis=-1)[..., None], axis=-1)[..., 0]
    return backend.cast(_in_top_k(target, y_pred, k))


def _sparse_top_k(owner, y_true, y_pred, k, from_sorted_ids):
    xp = backend.xp
    y_true, y_pred = as_pair(owner, y_true, y_pred, min_rank=2)
    if from_sorted_ids:
        rows = y_pred.shape[:-1]
        if y_true.shape not in (rows, rows + (1,)):
            raise ValueError(f"{owner}: expected labels of shape {rows} or {rows + (1,)}, received shape {y_true.shape}")
        return backend.cast((y_true.reshape(rows)[..., None] == y_pred[..., :k]).any(axis=-1))
    labels = sparse_labels(owner, y_true, y_pred)
    target = xp.take_along_axis(y_pred, labels[..., None], axis=-1)[..., 0]
    return backend.cast(_in_top_k(target, y_pred, k))


def accuracy(y_true, y_pred):
    """Per element ``y_true == y_pred`` (1.0 / 0.0), as ``keras.metrics.accuracy``."""
    return _accuracy("accuracy", y_true, y_pred)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Per element ``y_true == (y_pred > threshold)`` (1.0 / 0.0), as ``keras.metrics.binary_accuracy``."""
    return _binary("binary_accuracy", y_true, y_pred, _check_threshold("binary_accuracy", threshold))


def categorical_accuracy(y_true, y_pred):
    """Per row ``argmax(y_true) == argmax(y_pred)`` for one-hot ``y_true``, as ``keras.metrics.categorical_accuracy``."""
    return _categorical("categorical_accuracy", y_true, y_pred)


def sparse_categorical_accuracy(y_true, y_pred):
    """Per row ``label == argmax(y_pred)``, labels ``(n,)`` or ``(n, 1)``, as
    ``keras.metrics.sparse_categorical_accuracy``. Example: ``([2, 1], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]])`` -> ``[0, 1]``."""
    return _sparse_categorical("sparse_categorical_accuracy", y_true, y_pred)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """Per row: ``argmax(y_true)`` among the ``k`` highest scores (ties with the k-th count), as Keras's."""
    owner = "top_k_categorical_accuracy"
    return _top_k(owner, y_true, y_pred, _check_k(owner, k))


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5, from_sorted_ids=False):
    """Per row: the integer label among the ``k`` highest scores, as Keras's; with ``from_sorted_ids``
    ``y_pred`` holds class ids by decreasing score and the label must be in the first ``k``."""
    owner = "sparse_top_k_categorical_accuracy"
    return _sparse_top_k(owner, y_true, y_pred, _check_k(owner, k), from_sorted_ids)


class Accuracy(MeanMetricWrapper):
    """The fraction of elements where ``y_true == y_pred``."""

    default_name = "accuracy"

    def __init__(self, name: str | None = None):
        super().__init__(accuracy, name)

    def _values(self, y_true, y_pred):
        return _accuracy(type(self).__name__, y_true, y_pred)

    def get_config(self) -> dict:
        return {"name": self.name}


class CategoricalAccuracy(MeanMetricWrapper):
    """The fraction of rows where ``argmax(y_true) == argmax(y_pred)``; one-hot ``y_true`` of ``y_pred``'s shape."""

    default_name = "categorical_accuracy"

    def __init__(self, name: str | None = None):
        super().__init__(categorical_accuracy, name)

    def _values(self, y_true, y_pred):
        return _categorical(type(self).__name__, y_true, y_pred)

    def get_config(self) -> dict:
        return {"name": self.name}


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """The fraction of rows where ``label == argmax(y_pred)``; labels ``(n,)`` or ``(n, 1)``."""

    default_name = "sparse_categorical_accuracy"

    def __init__(self, name: str | None = None):
        super().__init__(sparse_categorical_accuracy, name)

    def _values(self, y_true, y_pred):
        return _sparse_categorical(type(self).__name__, y_true, y_pred)

    def get_config(self) -> dict:
        return {"name": self.name}


class BinaryAccuracy(MeanMetricWrapper):
    """The fraction of elements where ``y_true == (y_pred > threshold)`` (per sample, then over samples)."""

    default_name = "binary_accuracy"

    def __init__(self, threshold: float = 0.5, name: str | None = None):
        self.threshold = _check_threshold(type(self).__name__, threshold)
        super().__init__(binary_accuracy, name, threshold=self.threshold)

    def _values(self, y_true, y_pred):
        return _binary(type(self).__name__, y_true, y_pred, self.threshold)

    def get_config(self) -> dict:
        return {"name": self.name, "threshold": self.threshold}


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """The fraction of rows whose ``argmax(y_true)`` is among the ``k`` highest scores of ``y_pred``
    (a class tied with the k-th score counts); one-hot ``y_true`` of ``y_pred``'s shape ``(n, num_classes)``."""

    default_name = "top_k_categorical_accuracy"

    def __init__(self, k: int = 5, name: str | None = None):
        self.k = _check_k(type(self).__name__, k)
        super().__init__(top_k_categorical_accuracy, name, k=self.k)

    def _values(self, y_true, y_pred):
        return _top_k(type(self).__name__, y_true, y_pred, self.k)

    def get_config(self) -> dict:
        return {"name": self.name, "k": self.k}


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """The fraction of rows whose integer label is among the ``k`` highest scores of ``y_pred`` ``(n, num_classes)``.

    With ``from_sorted_ids`` ``y_pred`` holds class ids sorted by decreasing
    score ``(n, N)``, and a row counts when its label is in the first ``k``.
    """

    default_name = "sparse_top_k_categorical_accuracy"

    def __init__(self, k: int = 5, name: str | None = None, from_sorted_ids: bool = False):
        owner = type(self).__name__
        self.k = _check_k(owner, k)
        if not isinstance(from_sorted_ids, bool):
            raise TypeError(f'{owner}: argument "from_sorted_ids" must be a bool, received {from_sorted_ids!r}')
        self.from_sorted_ids = from_sorted_ids
        super().__init__(sparse_top_k_categorical_accuracy, name, k=self.k, from_sorted_ids=from_sorted_ids)

    def _values(self, y_true, y_pred):
        return _sparse_top_k(type(self).__name__, y_true, y_pred, self.k, self.from_sorted_ids)

    def get_config(self) -> dict:
        config = {"name": self.name, "k": self.k}
        if self.from_sorted_ids:  # Keras writes the key only when set
            config["from_sorted_ids"] = True
        return config
