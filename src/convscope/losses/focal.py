"""Focal cross-entropies (Lin et al., 2017): cross-entropies that down-weight well-classified entries.

Both read probabilities, or logits with ``from_logits=True`` (turned into
probabilities first, as Keras does, so the probabilities are clipped to
``[1e-7, 1 - 1e-7]`` in both cases and the gradient is zero where clipping bites).
"""

from __future__ import annotations

from .. import backend
from .base import Loss, MeanOverLastAxis
from .crossentropy import _sigmoid
from .inputs import EPSILON, check_bool, check_fraction, check_last_axis, smoothed_one_hot
from .reduction import DEFAULT


def _check_gamma(owner: str, gamma) -> float:
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or gamma < 0:
        raise ValueError(f'{owner}: argument "gamma" must be a number >= 0, received {gamma!r}')
    return float(gamma)


def _focal_power(base, gamma: float, with_gradient: bool):
    """``base^gamma`` and its derivative ``gamma base^(gamma - 1)`` (0 where ``base`` is 0), for ``base >= 0``."""
    xp = backend.xp
    value = base**gamma
    if not with_gradient:
        return value, None
    with xp.errstate(divide="ignore", invalid="ignore"):
        slope = xp.where(base > 0, gamma * base ** (gamma - 1), 0.0 if gamma != 1 else 1.0)
    return value, slope


class BinaryFocalCrossentropy(MeanOverLastAxis):
    """Per element ``a (1 - p_t)^gamma bce`` averaged over the last axis, where
    ``bce = -(y log c + (1 - y) log(1 - c))`` with ``c = clip(p, 1e-7, 1 - 1e-7)``,
    ``p_t = y p + (1 - y)(1 - p)`` and ``a = y alpha + (1 - y)(1 - alpha)`` with
    ``apply_class_balancing`` (else 1). ``p = sigmoid(z)`` for logits.
    ``label_smoothing`` s replaces ``y`` by ``y (1 - s) + s / 2``. With ``gamma = 0``
    and no balancing it is ``BinaryCrossentropy``.

    Example: ``y_true = [[0, 1], [0, 0]]``, ``y_pred = [[0.6, 0.4], [0.4, 0.6]]``, gamma 2 -> loss 0.2678.
    """

    default_name = "binary_focal_crossentropy"

    def __init__(self, apply_class_balancing: bool = False, alpha: float = 0.25, gamma: float = 2.0,
                 from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1, reduction=DEFAULT,
                 name: str | None = None):
        super().__init__(name, reduction)
        owner = type(self).__name__
        self.apply_class_balancing = check_bool(owner, "apply_class_balancing", apply_class_balancing)
        self.alpha = check_fraction(owner, "alpha", alpha)
        self.gamma = _check_gamma(owner, gamma)
        self.from_logits = check_bool(owner, "from_logits", from_logits)
        self.label_smoothing = check_fraction(owner, "label_smoothing", label_smoothing)
        self.axis = check_last_axis(owner, axis)

    def _prepare(self, y_true, y_pred):
        y_true, y_pred = super()._prepare(y_true, y_pred)
        if self.label_smoothing:
            y_true = y_true * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        return y_true, y_pred

    def _elements(self, y, z, with_gradient):
        xp = backend.xp
        p = _sigmoid(z) if self.from_logits else z
        c = xp.clip(p, EPSILON, 1 - EPSILON)
        bce = -(y * xp.log(c) + (1 - y) * xp.log(1 - c))
        p_t = y * p + (1 - y) * (1 - p)
        factor, slope = _focal_power(1 - p_t, self.gamma, with_gradient)
        balance = y * self.alpha + (1 - y) * (1 - self.alpha) if self.apply_class_balancing else 1.0
        values = balance * factor * bce
        if not with_gradient:
            return values, None
        d_bce = xp.where(c == p, (c - y) / (c * (1 - c)), 0)
        # d(1 - p_t)/dp = 1 - 2y
        grad = balance * (slope * (1 - 2 * y) * bce + factor * d_bce)
        return values, (grad * p * (1 - p) if self.from_logits else grad)

    def get_config(self) -> dict:
        return {**super().get_config(), "apply_class_balancing": self.apply_class_balancing, "alpha": self.alpha,
                "gamma": self.gamma, "from_logits": self.from_logits, "label_smoothing": self.label_smoothing,
                "axis": self.axis}


class CategoricalFocalCrossentropy(Loss):
    """Per row ``sum_k alpha (1 - c_k)^gamma (-y_k log c_k)`` for one-hot ``y``, where
    ``c = clip(p / sum(p), 1e-7, 1 - 1e-7)`` and ``p = softmax(z)`` for logits.
    ``label_smoothing`` s replaces ``y`` by ``y (1 - s) + s / k``.

    Example: ``y_true = [[0, 1, 0], [0, 0, 1]]``, ``y_pred = [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]``
    -> values ``[3.2e-5, 0.4663]``.
    """

    default_name = "categorical_focal_crossentropy"

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, from_logits: bool = False,
                 label_smoothing: float = 0.0, axis: int = -1, reduction=DEFAULT, name: str | None = None):
        super().__init__(name, reduction)
        owner = type(self).__name__
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise TypeError(f'{owner}: argument "alpha" must be a number, received {alpha!r}')
        self.alpha = float(alpha)
        self.gamma = _check_gamma(owner, gamma)
        self.from_logits = check_bool(owner, "from_logits", from_logits)
        self.label_smoothing = check_fraction(owner, "label_smoothing", label_smoothing)
        self.axis = check_last_axis(owner, axis)

    def _prepare(self, y_true, y_pred):
        return smoothed_one_hot(type(self).__name__, y_true, y_pred, self.label_smoothing)

    def _compute(self, y, z, with_gradient):
        xp = backend.xp
        if self.from_logits:
            e = xp.exp(z - z.max(axis=-1, keepdims=True))
            p = e / e.sum(axis=-1, keepdims=True)
        else:
            p = z
        total = p.sum(axis=-1, keepdims=True)
        q = p / total
        c = xp.clip(q, EPSILON, 1 - EPSILON)
        factor, slope = _focal_power(1 - c, self.gamma, with_gradient)
        log_c = xp.log(c)
        values = (self.alpha * factor * -y * log_c).sum(axis=-1)
        if not with_gradient:
            return values, None
        # d/dc_k of alpha (1 - c_k)^gamma (-y_k log c_k), zero where the clip bites
        g = xp.where(c == q, self.alpha * y * (slope * log_c - factor / c), 0)
        grad = (g - (g * q).sum(axis=-1, keepdims=True)) / total  # through q = p / sum(p)
        if self.from_logits:
            grad = p * (grad - (grad * p).sum(axis=-1, keepdims=True))  # through the softmax
        return values, grad

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


def binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=False, alpha=0.25, gamma=2.0,
                              from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample ``mean(a (1 - p_t)^gamma bce, axis=-1)``, as ``keras.losses.binary_focal_crossentropy``;
    see ``BinaryFocalCrossentropy``."""
    return BinaryFocalCrossentropy(apply_class_balancing, alpha, gamma, from_logits, label_smoothing, axis,
                                   reduction=None)(y_true, y_pred)


def categorical_focal_crossentropy(y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0,
                                   axis=-1):
    """Per-sample ``sum_k alpha (1 - c_k)^gamma (-y_k log c_k)``, as
    ``keras.losses.categorical_focal_crossentropy``; see ``CategoricalFocalCrossentropy``."""
    return CategoricalFocalCrossentropy(alpha, gamma, from_logits, label_smoothing, axis,
                                        reduction=None)(y_true, y_pred)
