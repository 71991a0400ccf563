"""Regression losses: squared, absolute, percentage and logarithmic errors, Huber, log-cosh, cosine similarity.

Each per-sample value is a mean over the last axis of per-element values of the
error ``e = y_pred - y_true`` (cosine similarity: a sum over the last axis), so
the per-sample values have shape ``y_pred.shape[:-1]``.
"""

from __future__ import annotations

import math

from .. import backend
from .base import Loss, MeanOverLastAxis
from .inputs import EPSILON, check_last_axis
from .reduction import DEFAULT


class MeanSquaredError(MeanOverLastAxis):
    """``mean((p - y)^2, axis=-1)``; element gradient ``2 (p - y)``.

    Example: ``y_true = [[0, 1], [0, 0]]``, ``y_pred = [[1, 1], [1, 0]]`` -> values ``[0.5, 0.5]``.
    """

    default_name = "mean_squared_error"

    def __init__(self, reduction=DEFAULT, name: str | None = None):
        super().__init__(name, reduction)

    def _elements(self, y, p, with_gradient):
        error = p - y
        return error * error, (2 * error if with_gradient else None)


class MeanAbsoluteError(MeanOverLastAxis):
    """``mean(|p - y|, axis=-1)``; element gradient ``sign(p - y)`` (0 where equal)."""

    default_name = "mean_absolute_error"

    def __init__(self, reduction=DEFAULT, name: str | None = None):
        super().__init__(name, reduction)

    def _elements(self, y, p, with_gradient):
        error = p - y
        return backend.xp.abs(error), (backend.xp.sign(error) if with_gradient else None)


class MeanAbsolutePercentageError(MeanOverLastAxis):
    """``100 mean(|y - p| / max(|y|, 1e-7), axis=-1)``; element gradient ``100 sign(p - y) / max(|y|, 1e-7)``.

    Example: ``y_true = [[1, 2]]``, ``y_pred = [[1.5, 1]]`` -> ``100 (0.5 + 0.5) / 2 = 50``.
    """

    default_name = "mean_absolute_percentage_error"

    def __init__(self, reduction=DEFAULT, name: str | None = None):
        super().__init__(name, reduction)

    def _elements(self, y, p, with_gradient):
        xp = backend.xp
        scale = 100 / xp.maximum(xp.abs(y), EPSILON)
        error = p - y
        return xp.abs(error) * scale, (xp.sign(error) * scale if with_gradient else None)


class MeanSquaredLogarithmicError(MeanOverLastAxis):
    """``mean((log(max(p, eps) + 1) - log(max(y, eps) + 1))^2, axis=-1)``, eps = 1e-7.

    Element gradient ``2 d / (p + 1)`` with ``d`` the difference of logs (0 where ``p < eps``).
    """

    default_name = "mean_squared_logarithmic_error"

    def __init__(self, reduction=DEFAULT, name: str | None = None):
        super().__init__(name, reduction)

    def _elements(self, y, p, with_gradient):
        xp = backend.xp
        shifted = xp.maximum(p, EPSILON) + 1
        diff = xp.log(shifted) - xp.log(xp.maximum(y, EPSILON) + 1)
        return diff * diff, (xp.where(p >= EPSILON, 2 * diff / shifted, 0) if with_gradient else None)


class Huber(MeanOverLastAxis):
    """With ``e = p - y``: ``e^2 / 2`` where ``|e| <= delta``, else ``delta (|e| - delta / 2)``;
    averaged over the last axis.

    Element gradient: ``e`` inside, ``delta sign(e)`` outside.
    Example: ``y_true = [[0, 1], [0, 0]]``, ``y_pred = [[0.6, 0.4], [0.4, 0.6]]`` -> loss 0.155.
    """

    default_name = "huber_loss"

    def __init__(self, delta: float = 1.0, reduction=DEFAULT, name: str | None = None):
        super().__init__(name, reduction)
        if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not delta > 0:
            raise ValueError(f'Huber: argument "delta" must be a number > 0, received {delta!r}')
        self.delta = float(delta)

    def _elements(self, y, p, with_gradient):
        xp = backend.xp
        error = p - y
        inside = xp.abs(error) <= self.delta
        values = xp.where(inside, 0.5 * error * error, self.delta * xp.abs(error) - 0.5 * self.delta**2)
        return values, (xp.where(inside, error, self.delta * xp.sign(error)) if with_gradient else None)

    def get_config(self) -> dict:
        return {**super().get_config(), "delta": self.delta}


class LogCosh(MeanOverLastAxis):
    """``mean(log(cosh(e)), axis=-1)`` with ``e = p - y``, computed as ``e + softplus(-2 e) - log 2``
    (finite for any ``e``); element gradient ``tanh(e)``.

    Example: ``y_true = [[0, 1], [0, 0]]``, ``y_pred = [[1, 1], [0, 0]]`` -> loss 0.108.
    """

    default_name = "log_cosh"

    def __init__(self, reduction=DEFAULT, name: str | None = None):
        super().__init__(name, reduction)

    def _elements(self, y, p, with_gradient):
        xp = backend.xp
        e = p - y
        softplus = xp.maximum(-2 * e, 0) + xp.log1p(xp.exp(-xp.abs(2 * e)))
        return e + softplus - math.log(2.0), (xp.tanh(e) if with_gradient else None)


def _unit(x):
    """Keras's ``normalize``: ``x * min(1 / |x|, 1 / eps)`` over the last axis, and that factor."""
    xp = backend.xp
    with xp.errstate(divide="ignore"):
        factor = xp.minimum(1 / xp.sqrt((x * x).sum(axis=-1, keepdims=True)), 1 / EPSILON)
    return x * factor, factor


class CosineSimilarity(Loss):
    """``-sum(y_hat * p_hat, axis=-1)`` with ``x_hat = x / max(|x|, 1e-7)`` over the last axis.

    Between -1 (same direction) and 1; 0 if either vector is 0. With ``r = 1 / |p|``
    (unclipped) the gradient is ``-r (y_hat - (y_hat . p_hat) p_hat)``, else ``-y_hat / eps``.
    Example: ``y_true = [[0, 1], [1, 1]]``, ``y_pred = [[1, 0], [1, 1]]`` -> values ``[0, -1]``.
    """

    default_name = "cosine_similarity"

    def __init__(self, axis: int = -1, reduction=DEFAULT, name: str | None = None):
        super().__init__(name, reduction)
        self.axis = check_last_axis(type(self).__name__, axis)

    def _compute(self, y, p, with_gradient):
        y_hat, _ = _unit(y)
        p_hat, factor = _unit(p)
        cosine = (y_hat * p_hat).sum(axis=-1)
        if not with_gradient:
            return -cosine, None
        clipped = factor >= 1 / EPSILON
        grad = backend.xp.where(clipped, -y_hat * factor, -factor * (y_hat - cosine[..., None] * p_hat))
        return -cosine, grad

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


def mean_squared_error(y_true, y_pred):
    """Per-sample ``mean((y_pred - y_true)^2, axis=-1)``, as ``keras.losses.mean_squared_error``."""
    return MeanSquaredError(reduction=None)(y_true, y_pred)


def mean_absolute_error(y_true, y_pred):
    """Per-sample ``mean(|y_pred - y_true|, axis=-1)``, as ``keras.losses.mean_absolute_error``."""
    return MeanAbsoluteError(reduction=None)(y_true, y_pred)


def mean_absolute_percentage_error(y_true, y_pred):
    """Per-sample ``100 mean(|y - p| / max(|y|, 1e-7), axis=-1)``, as Keras's."""
    return MeanAbsolutePercentageError(reduction=None)(y_true, y_pred)


def mean_squared_logarithmic_error(y_true, y_pred):
    """Per-sample ``mean((log(max(p, eps) + 1) - log(max(y, eps) + 1))^2, axis=-1)``, as Keras's."""
    return MeanSquaredLogarithmicError(reduction=None)(y_true, y_pred)


def huber(y_true, y_pred, delta=1.0):
    """Per-sample Huber loss ``mean(h(y_pred - y_true), axis=-1)``, as ``keras.losses.huber``; see ``Huber``."""
    return Huber(delta, reduction=None)(y_true, y_pred)


def log_cosh(y_true, y_pred):
    """Per-sample ``mean(log(cosh(y_pred - y_true)), axis=-1)``, as ``keras.losses.log_cosh``."""
    return LogCosh(reduction=None)(y_true, y_pred)


def cosine_similarity(y_true, y_pred, axis=-1):
    """Per-sample ``-sum(y_hat * p_hat, axis=-1)`` of the unit vectors, as ``keras.losses.cosine_similarity``."""
    return CosineSimilarity(axis, reduction=None)(y_true, y_pred)
