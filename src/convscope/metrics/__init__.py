"""Metrics, as in ``keras.metrics``: per-sample functions and the metrics that accumulate them over an epoch.

A metric object keeps state across the batches of an epoch:
``update_state(y_true, y_pred, sample_weight=None)`` adds a batch, ``result()``
reads the value (0.0 before any update), ``reset_state()`` starts over
(``update`` / ``reset`` are the same methods under convscope's names). Mean
metrics average per-sample values, weighted as Keras does:
``sum(w_i v_i) / sum(w_i)``. Confusion-matrix metrics (``Precision``,
``Recall``, ``AUC``) count (weighted) true/false positives/negatives instead.

The functions under Keras's names (``metrics.sparse_categorical_accuracy``,
``metrics.mean_squared_error``, ...) return per-sample values, and ``get``
resolves them: ``compile(metrics=[metrics.sparse_categorical_accuracy])`` logs
"sparse_categorical_accuracy", as Keras does.

``get("accuracy", loss)`` picks the accuracy that matches the loss, as Keras's
``compile(metrics=["accuracy"])`` does, and keeps the name the user wrote.
Other names resolve as in ``keras.metrics.get``: the class name, its snake case
(``"auc"``, ``"top_k_categorical_accuracy"``) and ``"mse"``/``"MSE"``, ``"mae"``/``"MAE"``, ...
"""

from __future__ import annotations

import re

from .. import backend, losses
from ..losses import (binary_crossentropy, categorical_crossentropy, categorical_hinge, hinge, huber, kl_divergence,
                      log_cosh, mean_absolute_error, mean_absolute_percentage_error, mean_squared_error,
                      mean_squared_logarithmic_error, poisson, sparse_categorical_crossentropy, squared_hinge)
from .accuracy import (Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
                       SparseTopKCategoricalAccuracy, TopKCategoricalAccuracy, accuracy, binary_accuracy,
                       categorical_accuracy, sparse_categorical_accuracy, sparse_top_k_categorical_accuracy,
                       top_k_categorical_accuracy)
from .base import Mean, MeanMetricWrapper, Metric, Sum
from .confusion import AUC, Precision, Recall
from .loss_means import (BinaryCrossentropy, CategoricalCrossentropy, CategoricalHinge, CosineSimilarity, Hinge,
                         KLDivergence, LogCoshError, MeanAbsoluteError, MeanAbsolutePercentageError,
                         MeanSquaredError, MeanSquaredLogarithmicError, Poisson, RootMeanSquaredError,
                         SparseCategoricalCrossentropy, SquaredHinge, cosine_similarity)

mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error

# The function each class averages: get(function) builds the class, named after the function.
_FUNCTION_CLASSES = {
    accuracy: Accuracy, binary_accuracy: BinaryAccuracy, categorical_accuracy: CategoricalAccuracy,
    sparse_categorical_accuracy: SparseCategoricalAccuracy, top_k_categorical_accuracy: TopKCategoricalAccuracy,
    sparse_top_k_categorical_accuracy: SparseTopKCategoricalAccuracy,
    mean_squared_error: MeanSquaredError, mean_absolute_error: MeanAbsoluteError,
    mean_absolute_percentage_error: MeanAbsolutePercentageError,
    mean_squared_logarithmic_error: MeanSquaredLogarithmicError, log_cosh: LogCoshError,
    cosine_similarity: CosineSimilarity, kl_divergence: KLDivergence, poisson: Poisson, hinge: Hinge,
    squared_hinge: SquaredHinge, categorical_hinge: CategoricalHinge, binary_crossentropy: BinaryCrossentropy,
    categorical_crossentropy: CategoricalCrossentropy, sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
}
_CLASSES = (*_FUNCTION_CLASSES.values(), RootMeanSquaredError, Precision, Recall, AUC, Mean, Sum)


def _snake(name: str) -> str:
    """Keras's ``to_snake_case``: ``"TopKCategoricalAccuracy"`` -> ``"top_k_categorical_accuracy"``, ``"AUC"`` -> ``"auc"``."""
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


_BY_NAME = {
    **{_snake(cls.__name__): cls for cls in _CLASSES},
    **{cls.default_name: cls for cls in _CLASSES},
    **{cls.__name__: cls for cls in _CLASSES},
    "mse": MeanSquaredError, "MSE": MeanSquaredError, "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError, "MAPE": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError, "MSLE": MeanSquaredLogarithmicError,
    "bce": BinaryCrossentropy, "BCE": BinaryCrossentropy,
}
_ACCURACY_FOR_LOSS = (
    (losses.SparseCategoricalCrossentropy, SparseCategoricalAccuracy),
    (losses.CategoricalCrossentropy, CategoricalAccuracy),
    (losses.BinaryCrossentropy, BinaryAccuracy),
)


class ShapeChosenAccuracy(Metric):
    """``"accuracy"`` beside a loss that does not name it (a function, MSE): Keras 3's rule, from the first
    batch's shapes. Binary when y_pred's last axis is 1; sparse categorical when y_true has a lower rank than
    y_pred, or a last axis of 1 against a wider y_pred; categorical otherwise."""

    default_name = "accuracy"

    def __init__(self, name: str | None = None, dtype=None):
        super().__init__(name, dtype)
        self.chosen = None

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        if self.chosen is None:
            t, p = backend.xp.shape(y_true), backend.xp.shape(y_pred)
            if p[-1:] == (1,):
                self.chosen = BinaryAccuracy(name=self.name)
            elif len(t) < len(p) or (t[-1:] == (1,) and p[-1] > 1):
                self.chosen = SparseCategoricalAccuracy(name=self.name)
            else:
                self.chosen = CategoricalAccuracy(name=self.name)
        self.chosen.update_state(y_true, y_pred, sample_weight=sample_weight)

    def result(self) -> float:
        return 0.0 if self.chosen is None else self.chosen.result()

    def reset_state(self) -> None:
        if self.chosen is not None:
            self.chosen.reset_state()


def _from_function(fn) -> Metric:
    """The metric averaging ``fn``, named after it: its class for the functions here, else a ``MeanMetricWrapper``."""
    # Keras's get_object_name: a loss object's name, else the function's
    name = getattr(fn, "name", None) or getattr(fn, "__name__", None) or type(fn).__name__
    cls = _FUNCTION_CLASSES.get(fn)
    return cls(name=name) if cls is not None else MeanMetricWrapper(fn, name=name)


def _wrapper_from_config(config: dict) -> MeanMetricWrapper:
    """A ``MeanMetricWrapper`` from its config, whose ``fn`` names one of the functions here
    (as convscope writes it, or as Keras does: ``{"class_name": "function", "config": <name>}``)."""
    fn = config.pop("fn", None)
    name = fn.get("config") if isinstance(fn, dict) else fn
    functions = {f.__name__: f for f in (*_FUNCTION_CLASSES, huber)}
    if name not in functions:
        raise ValueError(f"MeanMetricWrapper: unknown function {name!r}; known: {sorted(functions)}")
    config.pop("dtype", None)
    return MeanMetricWrapper(functions[name], **config)


def get(identifier, loss=None) -> Metric:
    """A new metric from a name, a function (this module's, or any ``fn(y_true, y_pred)`` returning
    per-sample values, wrapped in ``MeanMetricWrapper``), a ``Metric`` class, a
    ``{"class_name", "config"}`` dict, or a ``Metric`` (returned as is).

    A name or a function's name becomes the metric's ``name`` (Keras's History
    keys). ``"accuracy"`` and ``"acc"`` need ``loss`` (a ``Loss`` or anything
    ``losses.get`` takes): sparse categorical, categorical or binary
    cross-entropy select the matching accuracy.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric) and identifier is not Metric:
        return identifier()
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        if name == "function":  # Keras's form for a function: its name is the config
            functions = {fn.__name__: fn for fn in _FUNCTION_CLASSES}
            if identifier.get("config") not in functions:
                raise ValueError(f"Unknown metric function {identifier.get('config')!r}; known: {sorted(functions)}")
            return _from_function(functions[identifier["config"]])
        if name == "MeanMetricWrapper":
            return _wrapper_from_config(dict(identifier.get("config") or {}))
        cls = _BY_NAME.get(name)
        if cls is None:
            raise ValueError(f"Unknown metric class {name!r}; known: {sorted(_BY_NAME)}")
        return cls.from_config(identifier.get("config") or {})
    if callable(identifier) and not isinstance(identifier, type):
        return _from_function(identifier)
    if not isinstance(identifier, str):
        raise TypeError(
            "metrics.get: expected a metric name, a function, a {'class_name', 'config'} dict or a Metric, "
            f"received {identifier!r} ({type(identifier).__name__})"
        )
    if identifier.lower() in ("accuracy", "acc"):
        for loss_cls, metric_cls in _ACCURACY_FOR_LOSS:
            if isinstance(loss, loss_cls) or (isinstance(loss, (str, dict)) and isinstance(losses.get(loss), loss_cls)):
                return metric_cls(name=identifier)
        return ShapeChosenAccuracy(name=identifier)
    if identifier not in _BY_NAME:
        raise ValueError(f"Unknown metric {identifier!r}; known: {sorted(_BY_NAME | {'accuracy': None, 'acc': None})}")
    return _BY_NAME[identifier](name=identifier)


def serialize(metric) -> dict:
    """``{"class_name": ..., "config": ...}`` of a ``Metric``, which ``get`` turns back into an equal metric;
    for one of this module's functions Keras's form ``{"class_name": "function", "config": <its name>, ...}``."""
    if not isinstance(metric, Metric) and callable(metric) and metric in _FUNCTION_CLASSES:
        return {"module": "builtins", "class_name": "function", "config": metric.__name__,
                "registered_name": "function"}
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


__all__ = [
    "Metric", "Mean", "Sum", "MeanMetricWrapper", "get", "serialize", "mse", "MSE", "mae", "MAE", "huber",
    *(cls.__name__ for cls in _CLASSES), *(fn.__name__ for fn in _FUNCTION_CLASSES),
]
