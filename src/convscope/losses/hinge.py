"""Hinge losses for labels in {-1, 1} (labels in {0, 1} are mapped to them) and one-hot classes."""

from __future__ import annotations

from .. import backend
from .base import Loss, MeanOverLastAxis
from .inputs import dense_targets, as_pair
from .reduction import DEFAULT


def _signed(y):
    """Keras's label conversion: if every label is 0 or 1, ``2 y - 1``; other labels are used as they are."""
    xp = backend.xp
    return 2 * y - 1 if bool(xp.all((y == 0) | (y == 1))) else y


class Hinge(MeanOverLastAxis):
    """``mean(max(1 - y p, 0), axis=-1)`` for ``y`` in {-1, 1}; element gradient ``-y`` where ``1 - y p > 0``.

    Example: ``y_true = [[0, 1], [0, 0]]`` (read as ``[[-1, 1], [-1, -1]]``),
    ``y_pred = [[0.6, 0.4], [0.4, 0.6]]`` -> loss 1.3.
    """

    default_name = "hinge"

    def __init__(self, reduction=DEFAULT, name: str | None = None):
        super().__init__(name, reduction)

    def _elements(self, y, p, with_gradient):
        y = _signed(y)
        margin = 1 - y * p
        return backend.xp.maximum(margin, 0), (backend.xp.where(margin > 0, -y, 0) if with_gradient else None)


class SquaredHinge(MeanOverLastAxis):
    """``mean(max(1 - y p, 0)^2, axis=-1)`` for ``y`` in {-1, 1}; element gradient ``-2 y max(1 - y p, 0)``.

    Example: as ``Hinge``'s -> loss 1.86.
    """

    default_name = "squared_hinge"

    def __init__(self, reduction=DEFAULT, name: str | None = None):
        super().__init__(name, reduction)

    def _elements(self, y, p, with_gradient):
        y = _signed(y)
        margin = backend.xp.maximum(1 - y * p, 0)
        return margin * margin, (-2 * y * margin if with_gradient else None)


class CategoricalHinge(Loss):
    """``max(neg - pos + 1, 0)`` per row with ``pos = sum(y p)``, ``neg = max((1 - y) p)``; one-hot ``y``.

    Gradient where positive: ``(1 - y) * [k == argmax((1 - y) p)] - y`` (the first maximum on ties).
    Example: ``y_true = [[0, 1], [0, 0]]``, ``y_pred = [[0.6, 0.4], [0.4, 0.6]]`` -> values ``[1.2, 1.6]``.
    """

    default_name = "categorical_hinge"

    def __init__(self, reduction=DEFAULT, name: str | None = None):
        super().__init__(name, reduction)

    def _prepare(self, y_true, y_pred):
        owner = type(self).__name__
        y_true, y_pred = as_pair(owner, y_true, y_pred, min_rank=2)
        return dense_targets(owner, y_true, y_pred), y_pred

    def _compute(self, y, p, with_gradient):
        xp = backend.xp
        others = (1 - y) * p
        margin = others.max(axis=-1) - (y * p).sum(axis=-1) + 1
        values = xp.maximum(margin, 0)
        if not with_gradient:
            return values, None
        top = xp.zeros_like(p)
        xp.put_along_axis(top, others.argmax(axis=-1)[..., None], 1, axis=-1)
        return values, xp.where((margin > 0)[..., None], top * (1 - y) - y, 0)


def hinge(y_true, y_pred):
    """Per-sample ``mean(max(1 - y p, 0), axis=-1)`` ({0, 1} labels read as {-1, 1}), as ``keras.losses.hinge``."""
    return Hinge(reduction=None)(y_true, y_pred)


def squared_hinge(y_true, y_pred):
    """Per-sample ``mean(max(1 - y p, 0)^2, axis=-1)``, as ``keras.losses.squared_hinge``."""
    return SquaredHinge(reduction=None)(y_true, y_pred)


def categorical_hinge(y_true, y_pred):
    """Per-sample ``max(max((1 - y) p) - sum(y p) + 1, 0)``, as ``keras.losses.categorical_hinge``."""
    return CategoricalHinge(reduction=None)(y_true, y_pred)
