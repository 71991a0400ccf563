"""Metrics, as in ``keras.metrics``: running means over the batches of an epoch.

A metric turns each batch into values (one per row for class accuracies, one
per element for the others), ``update`` adds their sum and count, ``result``
returns ``sum / count`` (0.0 before any update) and ``reset`` starts over.
Because every row has the same number of elements, the element mean equals
Keras's mean over rows of the mean over the last axis.

``get("accuracy", loss)`` picks the accuracy that matches the loss, as Keras's
``compile(metrics=["accuracy"])`` does, and keeps the name the user wrote.
"""

from __future__ import annotations

from . import backend, losses
from .losses import _as_pair, _dense_targets, _sparse_labels


class Metric:
    """Base class: name, running sum and count, config.

    Subclasses implement ``_values(y_true, y_pred)`` returning the batch's values.
    """

    default_name = "metric"

    def __init__(self, name: str | None = None):
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f'{type(self).__name__}: argument "name" must be a non-empty string, received {name!r}')
        self.name = name or self.default_name
        self.reset()

    def reset(self) -> None:
        self._total = 0.0
        self._count = 0

    def update(self, y_true, y_pred) -> None:
        values = self._values(*_as_pair(type(self).__name__, y_true, y_pred))
        self._total += float(values.sum())
        self._count += values.size

    def result(self) -> float:
        return self._total / self._count if self._count else 0.0

    def _values(self, y_true, y_pred):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> "Metric":
        config = dict(config)
        config.pop("dtype", None)  # Keras records it; results here are Python floats
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} result={self.result():.4f}>"


class CategoricalAccuracy(Metric):
    """1 for each row where ``argmax(y_true) == argmax(y_pred)``; one-hot ``y_true`` of ``y_pred``'s shape."""

    default_name = "categorical_accuracy"

    def _values(self, y_true, y_pred):
        y_true = _dense_targets(type(self).__name__, y_true, y_pred, one_hot=True)
        return y_true.argmax(axis=-1) == y_pred.argmax(axis=-1)


class SparseCategoricalAccuracy(Metric):
    """1 for each row where ``label == argmax(y_pred)``; labels ``(n,)`` or ``(n, 1)``."""

    default_name = "sparse_categorical_accuracy"

    def _values(self, y_true, y_pred):
        return _sparse_labels(type(self).__name__, y_true, y_pred) == y_pred.argmax(axis=-1)


class BinaryAccuracy(Metric):
    """1 for each element where ``y_true == (y_pred > threshold)``."""

    default_name = "binary_accuracy"

    def __init__(self, threshold: float = 0.5, name: str | None = None):
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise ValueError(f'BinaryAccuracy: argument "threshold" must be a number in [0, 1], received {threshold!r}')
        self.threshold = float(threshold)
        super().__init__(name)

    def _values(self, y_true, y_pred):
        return _dense_targets(type(self).__name__, y_true, y_pred) == (y_pred > self.threshold)

    def get_config(self) -> dict:
        return {**super().get_config(), "threshold": self.threshold}


class MeanSquaredError(Metric):
    """``(y_pred - y_true)^2`` per element."""

    default_name = "mean_squared_error"

    def _values(self, y_true, y_pred):
        error = y_pred - _dense_targets(type(self).__name__, y_true, y_pred)
        return error * error


class MeanAbsoluteError(Metric):
    """``|y_pred - y_true|`` per element."""

    default_name = "mean_absolute_error"

    def _values(self, y_true, y_pred):
        return backend.xp.abs(y_pred - _dense_targets(type(self).__name__, y_true, y_pred))


# -- lookup -------------------------------------------------------------------
_CLASSES = (CategoricalAccuracy, SparseCategoricalAccuracy, BinaryAccuracy, MeanSquaredError, MeanAbsoluteError)
_BY_NAME = {
    **{cls.__name__: cls for cls in _CLASSES},
    **{cls.default_name: cls for cls in _CLASSES},
    "mse": MeanSquaredError,
    "mae": MeanAbsoluteError,
}
_ACCURACY_FOR_LOSS = (
    (losses.SparseCategoricalCrossentropy, SparseCategoricalAccuracy),
    (losses.CategoricalCrossentropy, CategoricalAccuracy),
    (losses.BinaryCrossentropy, BinaryAccuracy),
)


def get(identifier, loss=None) -> Metric:
    """A new metric from a name, a ``{"class_name", "config"}`` dict, or a ``Metric`` (returned as is).

    A name becomes the metric's ``name`` (Keras's History keys). ``"accuracy"``
    and ``"acc"`` need ``loss`` (a ``Loss`` or anything ``losses.get`` takes):
    sparse categorical, categorical or binary cross-entropy select the
    matching accuracy.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, dict):
        cls = _BY_NAME.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"Unknown metric class {identifier.get('class_name')!r}; known: {sorted(_BY_NAME)}")
        return cls.from_config(identifier.get("config") or {})
    if not isinstance(identifier, str):
        raise TypeError(
            "metrics.get: expected a metric name, a {'class_name', 'config'} dict or a Metric, "
            f"received {identifier!r} ({type(identifier).__name__})"
        )
    if identifier.lower() in ("accuracy", "acc"):
        loss = None if loss is None else losses.get(loss)
        for loss_cls, metric_cls in _ACCURACY_FOR_LOSS:
            if isinstance(loss, loss_cls):
                return metric_cls(name=identifier)
        raise ValueError(
            f"Metric {identifier!r} is chosen from the loss, which must be a sparse categorical, categorical or "
            f"binary cross-entropy, received {loss!r}; name the metric instead, e.g. 'categorical_accuracy'"
        )
    if identifier not in _BY_NAME:
        raise ValueError(f"Unknown metric {identifier!r}; known: {sorted(_BY_NAME | {'accuracy': None, 'acc': None})}")
    return _BY_NAME[identifier](name=identifier)
