"""Metrics that average a loss's per-sample values, under Keras's metric names.

Each is the weighted running mean (``MeanMetricWrapper``) of the matching
``convscope.losses`` function: e.g. ``MeanSquaredError`` of
``mean((y_pred - y_true)^2, axis=-1)`` per sample, ``CategoricalCrossentropy``
of ``-sum(y log p, axis=-1)``. ``RootMeanSquaredError`` is the square root of
the weighted mean of the squared errors and ``CosineSimilarity`` averages
``+sum(y_hat * p_hat, axis=-1)`` (the loss's negative).
"""

from __future__ import annotations

from .. import backend, losses
from ..losses.inputs import check_last_axis
from .base import Mean, MeanMetricWrapper


class _LossMean(MeanMetricWrapper):
    """The weighted mean of ``loss_class(reduction=None)``'s per-sample values."""

    loss_class = losses.Loss
    loss_function = None

    def __init__(self, name: str | None = None, **loss_kwargs):
        self._loss = self.loss_class(reduction=None, **loss_kwargs)
        super().__init__(type(self).loss_function, name, **loss_kwargs)

    def _values(self, y_true, y_pred):
        return self._loss(y_true, y_pred)

    def get_config(self) -> dict:
        return {"name": self.name, **self._fn_kwargs}


class MeanSquaredError(_LossMean):
    """Mean of ``mean((y_pred - y_true)^2, axis=-1)``."""

    default_name = "mean_squared_error"
    loss_class, loss_function = losses.MeanSquaredError, losses.mean_squared_error


class MeanAbsoluteError(_LossMean):
    """Mean of ``mean(|y_pred - y_true|, axis=-1)``."""

    default_name = "mean_absolute_error"
    loss_class, loss_function = losses.MeanAbsoluteError, losses.mean_absolute_error


class MeanAbsolutePercentageError(_LossMean):
    """Mean of ``100 mean(|y - p| / max(|y|, 1e-7), axis=-1)``."""

    default_name = "mean_absolute_percentage_error"
    loss_class, loss_function = losses.MeanAbsolutePercentageError, losses.mean_absolute_percentage_error


class MeanSquaredLogarithmicError(_LossMean):
    """Mean of ``mean((log(max(p, eps) + 1) - log(max(y, eps) + 1))^2, axis=-1)``."""

    default_name = "mean_squared_logarithmic_error"
    loss_class, loss_function = losses.MeanSquaredLogarithmicError, losses.mean_squared_logarithmic_error


class LogCoshError(_LossMean):
    """Mean of ``mean(log(cosh(y_pred - y_true)), axis=-1)``."""

    default_name = "logcosh"
    loss_class, loss_function = losses.LogCosh, losses.log_cosh


class KLDivergence(_LossMean):
    """Mean of ``sum(y log(y / p), axis=-1)`` (both clipped to [1e-7, 1])."""

    default_name = "kl_divergence"
    loss_class, loss_function = losses.KLDivergence, losses.kl_divergence


class Poisson(_LossMean):
    """Mean of ``mean(p - y log(p + 1e-7), axis=-1)``."""

    default_name = "poisson"
    loss_class, loss_function = losses.Poisson, losses.poisson


class Hinge(_LossMean):
    """Mean of ``mean(max(1 - y p, 0), axis=-1)`` ({0, 1} labels read as {-1, 1})."""

    default_name = "hinge"
    loss_class, loss_function = losses.Hinge, losses.hinge


class SquaredHinge(_LossMean):
    """Mean of ``mean(max(1 - y p, 0)^2, axis=-1)``."""

    default_name = "squared_hinge"
    loss_class, loss_function = losses.SquaredHinge, losses.squared_hinge


class CategoricalHinge(_LossMean):
    """Mean of ``max(max((1 - y) p) - sum(y p) + 1, 0)``."""

    default_name = "categorical_hinge"
    loss_class, loss_function = losses.CategoricalHinge, losses.categorical_hinge


class BinaryCrossentropy(_LossMean):
    """Mean of ``mean(-(y log p + (1 - y) log(1 - p)), axis=-1)``; ``from_logits``, ``label_smoothing`` as the loss."""

    default_name = "binary_crossentropy"
    loss_class, loss_function = losses.BinaryCrossentropy, losses.binary_crossentropy

    def __init__(self, name: str | None = None, from_logits: bool = False, label_smoothing: float = 0.0):
        super().__init__(name, from_logits=from_logits, label_smoothing=label_smoothing)
        self.from_logits, self.label_smoothing = self._loss.from_logits, self._loss.label_smoothing


class CategoricalCrossentropy(_LossMean):
    """Mean of ``-sum(y log p, axis=-1)`` for one-hot ``y``; ``from_logits``, ``label_smoothing`` as the loss."""

    default_name = "categorical_crossentropy"
    loss_class, loss_function = losses.CategoricalCrossentropy, losses.categorical_crossentropy

    def __init__(self, name: str | None = None, from_logits: bool = False, label_smoothing: float = 0.0,
                 axis: int = -1):
        super().__init__(name, from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits, self.label_smoothing, self.axis = from_logits, self._loss.label_smoothing, axis


class SparseCategoricalCrossentropy(_LossMean):
    """Mean of ``-log p[label]``; ``from_logits`` as the loss (``ignore_class``, ``axis`` at their defaults)."""

    default_name = "sparse_categorical_crossentropy"
    loss_class, loss_function = losses.SparseCategoricalCrossentropy, losses.sparse_categorical_crossentropy

    def __init__(self, name: str | None = None, from_logits: bool = False, ignore_class=None, axis: int = -1):
        super().__init__(name, from_logits=from_logits, ignore_class=ignore_class)
        check_last_axis(type(self).__name__, axis)
        self.from_logits, self.ignore_class, self.axis = from_logits, ignore_class, axis

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


def cosine_similarity(y_true, y_pred, axis=-1):
    """Per-sample ``sum(y_hat * p_hat, axis=-1)`` of the unit vectors, as ``keras.metrics``' (the loss's negative)."""
    return -losses.cosine_similarity(y_true, y_pred, axis)


class CosineSimilarity(_LossMean):
    """Mean of ``sum(y_hat * p_hat, axis=-1)``: 1 for the same direction, -1 for opposite ones."""

    default_name = "cosine_similarity"
    loss_class, loss_function = losses.CosineSimilarity, cosine_similarity

    def __init__(self, name: str | None = None, axis: int = -1):
        super().__init__(name, axis=axis)
        self.axis = axis

    def _values(self, y_true, y_pred):
        return -self._loss(y_true, y_pred)


class RootMeanSquaredError(Mean):
    """``sqrt(weighted mean of (y_pred - y_true)^2)``: the square root of ``MeanSquaredError``'s result."""

    default_name = "root_mean_squared_error"

    def __init__(self, name: str | None = None):
        self._squares = losses.MeanSquaredError(reduction=None)
        super().__init__(name)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        super().update_state(self._squares(y_true, y_pred), sample_weight)

    def result(self) -> float:
        return float(backend.xp.sqrt(super().result()))
