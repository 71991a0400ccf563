"""Losses between distributions and counts: Kullback-Leibler divergence and Poisson."""

from __future__ import annotations

from .. import backend
from .base import Loss, MeanOverLastAxis
from .inputs import EPSILON
from .reduction import DEFAULT


class KLDivergence(Loss):
    """``sum(y log(y / p), axis=-1)`` with both clipped to ``[1e-7, 1]``, per sample.

    Gradient ``-y / p`` where ``p`` is inside the clip range, 0 elsewhere.
    Example: ``y_true = [[0, 1], [0, 0]]``, ``y_pred = [[0.6, 0.4], [0.4, 0.6]]`` -> loss 0.458.
    """

    default_name = "kl_divergence"

    def __init__(self, reduction=DEFAULT, name: str | None = None):
        super().__init__(name, reduction)

    def _compute(self, y, p, with_gradient):
        xp = backend.xp
        y = xp.clip(y, EPSILON, 1)
        c = xp.clip(p, EPSILON, 1)
        values = (y * xp.log(y / c)).sum(axis=-1)
        return values, (xp.where(c == p, -y / c, 0) if with_gradient else None)


class Poisson(MeanOverLastAxis):
    """``mean(p - y log(p + 1e-7), axis=-1)``; element gradient ``1 - y / (p + 1e-7)``.

    Example: ``y_true = [[0, 1], [0, 0]]``, ``y_pred = [[1, 1], [0, 0]]`` -> loss 0.5.
    """

    default_name = "poisson"

    def __init__(self, reduction=DEFAULT, name: str | None = None):
        super().__init__(name, reduction)

    def _elements(self, y, p, with_gradient):
        shifted = p + EPSILON
        return p - y * backend.xp.log(shifted), (1 - y / shifted if with_gradient else None)


def kl_divergence(y_true, y_pred):
    """Per-sample ``sum(y log(y / p), axis=-1)`` (both clipped to [1e-7, 1]), as ``keras.losses.kl_divergence``."""
    return KLDivergence(reduction=None)(y_true, y_pred)


def poisson(y_true, y_pred):
    """Per-sample ``mean(p - y log(p + 1e-7), axis=-1)``, as ``keras.losses.poisson``."""
    return Poisson(reduction=None)(y_true, y_pred)
