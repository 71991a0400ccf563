"""Activation functions with Keras 3's names and defaults, each with its own gradient.

An activation is an object with a ``name``, ``act(x) -> y`` and
``act.gradient(x, y, dy) -> dx`` (dL/dx from the input ``x``, the output
``y = act(x)`` and the upstream gradient ``dy``), so a layer can backpropagate
through it without knowing which one it is. The module-level names (``relu``,
``softmax``, ...) are these objects, so ``activations.relu(x)`` works as in Keras.

Float inputs keep their dtype; other inputs become ``backend.floatx()``. Every
function stays finite for inputs as large as +-1e4.
"""

from __future__ import annotations

import math

from . import backend

try:
    from scipy.special import erf as _erf
except ImportError:  # scipy is optional; math.erf is exact but slower
    _erf = None

_SQRT_2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _math_erf(x):
    """erf of an array through ``math.erf``, for when scipy is absent."""
    xp = backend.xp
    return xp.vectorize(math.erf, otypes=[xp.float64])(x).astype(x.dtype, copy=False)


def erf(x):
    """The error function, element-wise, in ``x``'s dtype."""
    return _math_erf(x) if _erf is None else _erf(x)


def _as_float(x):
    x = backend.xp.asarray(x)
    return x if backend.xp.issubdtype(x.dtype, backend.xp.floating) else x.astype(backend.floatx())


def _stable_sigmoid(x):
    # exp(-|x|) never overflows, so neither branch does.
    e = backend.xp.exp(-backend.xp.abs(x))
    return backend.xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


class Activation:
    """An element-wise (or, for softmax, last-axis) function with its gradient."""

    name = "activation"

    def __call__(self, x):
        return self._forward(_as_float(x))

    def gradient(self, x, y, dy):
        """dL/dx given the input ``x``, the output ``y = f(x)`` and the upstream ``dy = dL/dy``."""
        return self._backward(_as_float(x), backend.xp.asarray(y), backend.xp.asarray(dy))

    def _forward(self, x):
        raise NotImplementedError

    def _backward(self, x, y, dy):
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<activation {self.name}>"


class Linear(Activation):
    """f(x) = x; f'(x) = 1."""

    name = "linear"

    def _forward(self, x):
        return x

    def _backward(self, x, y, dy):
        return dy


class ReLU(Activation):
    """f(x) = max(x, 0); f'(x) = 1 if x > 0 else 0."""

    name = "relu"

    def _forward(self, x):
        return backend.xp.maximum(x, 0.0)

    def _backward(self, x, y, dy):
        # A product with the 0/1 mask, not where(): ten times faster on the unpredictable masks of real maps.
        return dy * (x > 0)


class LeakyReLU(Activation):
    """f(x) = x if x > 0 else negative_slope * x; f'(x) = 1 if x > 0 else negative_slope."""

    name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.2):
        self.negative_slope = float(negative_slope)

    def _forward(self, x):
        return backend.xp.where(x > 0, x, self.negative_slope * x)

    def _backward(self, x, y, dy):
        slope = self.negative_slope
        return dy * (slope + (1 - slope) * (x > 0).astype(dy.dtype))


class ELU(Activation):
    """f(x) = x if x > 0 else alpha * (exp(x) - 1); f'(x) = 1 if x > 0 else alpha * exp(x) = f(x) + alpha."""

    name = "elu"

    def __init__(self, alpha: float = 1.0):
        self.alpha = float(alpha)

    def _forward(self, x):
        # expm1 of min(x, 0) keeps the unused branch from overflowing for large x.
        return backend.xp.where(x > 0, x, self.alpha * backend.xp.expm1(backend.xp.minimum(x, 0.0)))

    def _backward(self, x, y, dy):
        return backend.xp.where(x > 0, dy, (y + self.alpha) * dy)


class SELU(Activation):
    """f(x) = scale * (x if x > 0 else alpha * (exp(x) - 1));
    f'(x) = scale if x > 0 else scale * alpha * exp(x) = f(x) + scale * alpha.

    alpha = 1.67326324, scale = 1.05070098 (Keras's constants).
    """

    name = "selu"
    alpha = 1.67326324
    scale = 1.05070098

    def _forward(self, x):
        neg = self.alpha * backend.xp.expm1(backend.xp.minimum(x, 0.0))
        return self.scale * backend.xp.where(x > 0, x, neg)

    def _backward(self, x, y, dy):
        return backend.xp.where(x > 0, self.scale * dy, (y + self.scale * self.alpha) * dy)


class GELU(Activation):
    """Exact (``approximate=False``, Keras 3's default):
    f(x) = x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2)));
    f'(x) = Phi(x) + x * exp(-x^2 / 2) / sqrt(2 pi).

    Tanh approximation: with u = sqrt(2 / pi) * (x + 0.044715 x^3) and t = tanh(u),
    f(x) = 0.5 * x * (1 + t);
    f'(x) = 0.5 * (1 + t) + 0.5 * x * (1 - t^2) * sqrt(2 / pi) * (1 + 3 * 0.044715 x^2).
    """

    name = "gelu"

    def __init__(self, approximate: bool = False):
        self.approximate = bool(approximate)

    def _tanh_u(self, x):
        return backend.xp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x**3))

    def _forward(self, x):
        if self.approximate:
            return 0.5 * x * (1.0 + self._tanh_u(x))
        return 0.5 * x * (1.0 + erf(x / _SQRT_2))

    def _backward(self, x, y, dy):
        if self.approximate:
            t = self._tanh_u(x)
            du = _SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * x**2)
            return (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du) * dy
        cdf = 0.5 * (1.0 + erf(x / _SQRT_2))
        pdf = _INV_SQRT_2PI * backend.xp.exp(-0.5 * x * x)
        return (cdf + x * pdf) * dy


class Sigmoid(Activation):
    """f(x) = 1 / (1 + exp(-x)); f'(x) = f(x) * (1 - f(x))."""

    name = "sigmoid"

    def _forward(self, x):
        return _stable_sigmoid(x)

    def _backward(self, x, y, dy):
        return y * (1.0 - y) * dy


class Tanh(Activation):
    """f(x) = tanh(x); f'(x) = 1 - f(x)^2."""

    name = "tanh"

    def _forward(self, x):
        return backend.xp.tanh(x)

    def _backward(self, x, y, dy):
        return (1.0 - y * y) * dy


class Softplus(Activation):
    """f(x) = log(1 + exp(x)), computed as max(x, 0) + log1p(exp(-|x|)); f'(x) = sigmoid(x)."""

    name = "softplus"

    def _forward(self, x):
        xp = backend.xp
        return xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))

    def _backward(self, x, y, dy):
        return _stable_sigmoid(x) * dy


class Softsign(Activation):
    """f(x) = x / (1 + |x|); f'(x) = 1 / (1 + |x|)^2."""

    name = "softsign"

    def _forward(self, x):
        return x / (1.0 + backend.xp.abs(x))

    def _backward(self, x, y, dy):
        return dy / (1.0 + backend.xp.abs(x)) ** 2


class SiLU(Activation):
    """f(x) = x * sigmoid(x) (also called swish); f'(x) = s + x * s * (1 - s) with s = sigmoid(x)."""

    name = "silu"

    def _forward(self, x):
        return x * _stable_sigmoid(x)

    def _backward(self, x, y, dy):
        s = _stable_sigmoid(x)
        return s * (1.0 + x * (1.0 - s)) * dy


class ReLU6(Activation):
    """f(x) = min(max(x, 0), 6); f'(x) = 1 if 0 < x < 6 else 0."""

    name = "relu6"

    def _forward(self, x):
        return backend.xp.minimum(backend.xp.maximum(x, 0.0), 6.0)

    def _backward(self, x, y, dy):
        return dy * ((x > 0) & (x < 6))


class HardSigmoid(Activation):
    """Keras 3's piecewise-linear sigmoid: f(x) = relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1)
    (0 for x <= -3, 1 for x >= 3); f'(x) = 1/6 if -3 < x < 3 else 0."""

    name = "hard_sigmoid"

    def _forward(self, x):
        return backend.xp.clip(x / 6.0 + 0.5, 0.0, 1.0)

    def _backward(self, x, y, dy):
        return dy * ((x > -3) & (x < 3)) / 6.0


class HardSiLU(Activation):
    """f(x) = x * hard_sigmoid(x) (also called hard_swish): 0 for x <= -3, x * (x + 3) / 6 between, x for x >= 3;
    f'(x) = hard_sigmoid(x) + x * hard_sigmoid'(x) = 0, (2x + 3) / 6, 1 on those three pieces."""

    name = "hard_silu"

    def _forward(self, x):
        return x * hard_sigmoid(x)

    def _backward(self, x, y, dy):
        inside = ((x > -3) & (x < 3)).astype(dy.dtype)
        return dy * (hard_sigmoid(x) + x * inside / 6.0)


class Softmax(Activation):
    """Over the last axis: f(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x);
    df_i/dx_j = f_i * (delta_ij - f_j), so dx = y * (dy - sum(dy * y, axis=-1)).
    """

    name = "softmax"

    def _forward(self, x):
        # Subtracting the max makes the largest exponent exp(0): no overflow.
        e = backend.xp.exp(x - backend.xp.max(x, axis=-1, keepdims=True))
        return e / backend.xp.sum(e, axis=-1, keepdims=True)

    def _backward(self, x, y, dy):
        return y * (dy - backend.xp.sum(dy * y, axis=-1, keepdims=True))


linear = Linear()
relu = ReLU()
leaky_relu = LeakyReLU()
elu = ELU()
selu = SELU()
gelu = GELU()
sigmoid = Sigmoid()
tanh = Tanh()
softplus = Softplus()
softsign = Softsign()
silu = SiLU()
swish = silu  # Keras's other name for silu
relu6 = ReLU6()
hard_sigmoid = HardSigmoid()
hard_silu = HardSiLU()
hard_swish = hard_silu  # Keras's other name for hard_silu
softmax = Softmax()

_BY_NAME = {
    act.name: act
    for act in (linear, relu, leaky_relu, elu, selu, gelu, sigmoid, tanh, softplus, softsign, silu, relu6,
                hard_sigmoid, hard_silu, softmax)
}
_BY_NAME["swish"] = silu
_BY_NAME["hard_swish"] = hard_silu


def get(identifier) -> Activation:
    """An activation from None (linear), a Keras name or an activation object."""
    if identifier is None:
        return linear
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(
                f"activations.get: argument `identifier` expected one of {sorted(_BY_NAME)}, "
                f"received {identifier!r}"
            )
        return _BY_NAME[identifier]
    raise TypeError(
        "activations.get: argument `identifier` expected None, a name or an Activation, "
        f"received {identifier!r} of type {type(identifier).__name__}"
    )


def serialize(activation: Activation) -> str:
    """The activation's Keras name, which ``get`` turns back into it."""
    if not isinstance(activation, Activation):
        raise TypeError(
            "activations.serialize: argument `activation` expected an Activation, "
            f"received {activation!r} of type {type(activation).__name__}"
        )
    return activation.name
