"""Weight penalties with Keras 3's names, defaults, formulas and configs (``keras.regularizers``).

A regularizer maps a parameter (or a layer's output) x to a penalty added to the loss:
``reg(x) -> float``, and gives that penalty's gradient ``reg.gradient(x) -> dPenalty/dx``
(an array of x's shape and dtype), which the training loop adds to the parameter's ``.grad``.

    L1(l1=0.01)            P = l1 * sum |x|                    dP/dx = l1 * sign(x)
    L2(l2=0.01)            P = l2 * sum x^2                    dP/dx = 2 * l2 * x
    L1L2(l1=0.0, l2=0.0)   P = l1 * sum |x| + l2 * sum x^2     dP/dx = l1 * sign(x) + 2 * l2 * x
    OrthogonalRegularizer(factor=0.01, mode="rows")            (see the class)

|x| has no derivative at 0; ``gradient`` uses the subgradient sign(0) = 0 there, as TensorFlow's
and PyTorch's ``abs`` do. The penalty is computed in x's dtype (float32 or float64).

Names: the classes, their snake_case names (``"l1"``, ``"l2"``, ``"l1l2"``,
``"orthogonal_regularizer"``) and the aliases ``l1``, ``l2``, ``l1_l2``,
``orthogonal_regularizer`` (the classes themselves, as in Keras 3: ``l1_l2()`` is ``L1L2()``,
both factors 0). Keras 3 has no string ``"l1_l2"``; neither has convscope.

``serialize`` writes Keras 3's form, ``{"module": "keras.regularizers", "class_name": "L2",
"config": {"l2": 0.01}, "registered_name": None}``; ``deserialize`` and ``get`` read it back.
One difference: Keras keeps ``L1``'s ``l1`` and ``OrthogonalRegularizer``'s ``factor`` as float32
tensors, so its configs read e.g. ``0.009999999776482582`` for 0.01; convscope keeps the float as
given (and reads Keras's rounded value exactly as written).

Example:
    >>> L2(0.5)(np.ones((5, 5)))
    12.5
    >>> get("l1").get_config()
    {'l1': 0.01}
"""

from __future__ import annotations

import math
import numbers

from . import backend
from .keras_objects import KerasObject, KerasObjects

MODULE = "keras.regularizers"
# Keras's backend.epsilon(): the smallest norm OrthogonalRegularizer divides by.
_EPSILON = 1e-7


def _factor(owner: str, arg: str, value, default: float) -> float:
    """A penalty factor: a finite number >= 0 (None means ``default``, as in Keras)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: argument `{arg}` expected a non-negative number, "
                        f"received {value!r} of type {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{owner}: argument `{arg}` expected a finite number >= 0, received {value!r}")
    return float(value)


def _as_float_array(x):
    """x as an array, computed in its own float type (integers in floatx), as Keras casts factors to x's dtype."""
    x = backend.xp.asarray(x)
    return x if x.dtype.kind == "f" else backend.cast(x)


class Regularizer(KerasObject):
    """Base class: ``__call__(x) -> float`` (0 here), ``gradient(x)`` (zeros here), ``get_config``, ``from_config``.

    A subclass of your own may define ``__call__`` alone, written with ``convscope.ops`` (Keras's way):
    training then differentiates it through its traced graph (``models.graph.regularizer_gradient``).
    convscope's own regularizers define ``gradient`` too, by formula.
    """

    def __call__(self, x) -> float:
        return 0.0

    def gradient(self, x):
        """dPenalty/dx, an array of x's shape."""
        return backend.xp.zeros_like(_as_float_array(x))


class FunctionRegularizer(Regularizer):
    """A regularizer written as a function of the weight, ``fn(w)`` with ``convscope.ops`` (Keras accepts any
    callable): its value is ``fn(w)``, its gradient comes from tracing ``fn``. A model file cannot name it."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, x):
        return self.fn(x)

    def __repr__(self) -> str:
        return f"FunctionRegularizer({getattr(self.fn, '__name__', self.fn)!r})"

    def get_config(self) -> dict:
        raise TypeError(f"the regularizer {self.fn!r} is a Python function, which a model file cannot hold; save the "
                        "weights (model.save_weights) and rebuild the model from its code")


class L1L2(Regularizer):
    """P = l1 * sum |x| + l2 * sum x^2;  dP/dx = l1 * sign(x) + 2 * l2 * x  (sign(0) = 0).

    Defaults 0 for both (Keras 3's, for backward compatibility: ``L1L2(l2=0.1)`` has no L1 term).
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _factor("L1L2", "l1", l1, 0.0)
        self.l2 = _factor("L1L2", "l2", l2, 0.0)

    def __call__(self, x) -> float:
        x = _as_float_array(x)
        penalty = x.dtype.type(0)
        if self.l1:
            penalty += x.dtype.type(self.l1) * backend.xp.abs(x).sum()
        if self.l2:
            penalty += x.dtype.type(self.l2) * backend.xp.square(x).sum()
        return float(penalty)

    def gradient(self, x):
        x = _as_float_array(x)
        return x.dtype.type(self.l1) * backend.xp.sign(x) + x.dtype.type(2 * self.l2) * x

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """P = l1 * sum |x|;  dP/dx = l1 * sign(x), with the subgradient 0 at x = 0.

    Example: ``L1(0.1)(np.array([-2.0, 0.0, 3.0]))`` is 0.5; its gradient is [-0.1, 0, 0.1].
    """

    def __init__(self, l1=0.01):
        self.l1 = _factor("L1", "l1", l1, 0.01)

    def __call__(self, x) -> float:
        x = _as_float_array(x)
        return float(x.dtype.type(self.l1) * backend.xp.abs(x).sum())

    def gradient(self, x):
        x = _as_float_array(x)
        return x.dtype.type(self.l1) * backend.xp.sign(x)

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(Regularizer):
    """P = l2 * sum x^2 (no 1/2: Keras's weight decay through the loss is 2 * l2 * x);  dP/dx = 2 * l2 * x.

    Example: ``L2(2.0)(np.ones((5, 5)))`` is 50.0.
    """

    def __init__(self, l2=0.01):
        self.l2 = _factor("L2", "l2", l2, 0.01)

    def __call__(self, x) -> float:
        x = _as_float_array(x)
        return float(x.dtype.type(self.l2) * backend.xp.square(x).sum())

    def gradient(self, x):
        x = _as_float_array(x)
        return x.dtype.type(2 * self.l2) * x

    def get_config(self) -> dict:
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Pushes the rows (``mode="rows"``) or columns (``"columns"``) of a 2-D x towards orthogonality.

    Input: a rank-2 array (a Dense kernel (in, units): rows mode compares the ``in`` feature vectors).
    With v_1 .. v_n the rows (or columns), u_i = v_i / max(||v_i||, 1e-7) and G = [u_i . u_j]:

        P = factor * 0.5 * sum_{i != j} |G_ij| / (n (n - 1) / 2) = factor * sum_{i != j} |G_ij| / (n (n - 1))

    the mean absolute cosine over the n (n - 1) / 2 pairs, halved (Keras's formula). Gradient: with
    S_ij = factor * sign(G_ij) / (n (n - 1)) off the diagonal (0 on it, and sign(0) = 0),
    dP/du_i = 2 sum_j S_ij u_j, and through the normalization
    dP/dv_i = (dP/du_i - u_i (u_i . dP/du_i)) / ||v_i|| (dP/du_i / 1e-7 when ||v_i|| <= 1e-7).

    Keras returns NaN (0 / 0) for a single row or column; convscope refuses it with a ValueError.
    """

    def __init__(self, factor=0.01, mode="rows"):
        self.factor = _factor("OrthogonalRegularizer", "factor", factor, 0.01)
        if mode not in ("rows", "columns"):
            raise ValueError(f'OrthogonalRegularizer: argument `mode` expected one of ("rows", "columns"), '
                             f"received {mode!r}")
        self.mode = mode

    def _vectors(self, x):
        """(norms clipped at epsilon, epsilon, unit vectors): one vector per row, x's rows or its columns."""
        x = _as_float_array(x)
        if x.ndim != 2:
            raise ValueError(f"OrthogonalRegularizer: inputs must have rank 2, received shape {x.shape}")
        vectors = x if self.mode == "rows" else x.T
        if vectors.shape[0] < 2:
            raise ValueError(f'OrthogonalRegularizer: mode="{self.mode}" needs at least 2 {self.mode} to compare, '
                             f"received shape {x.shape}")
        epsilon = vectors.dtype.type(_EPSILON)
        norms = backend.xp.maximum(backend.xp.sqrt(backend.xp.square(vectors).sum(axis=1, keepdims=True)), epsilon)
        return norms, epsilon, vectors / norms

    def _off_diagonal(self, units):
        n = units.shape[0]
        return (units @ units.T) * (1 - backend.xp.eye(n, dtype=units.dtype)), n

    def __call__(self, x) -> float:
        _, _, units = self._vectors(x)
        products, n = self._off_diagonal(units)
        pairs = n * (n - 1) / 2
        return float(units.dtype.type(self.factor * 0.5) * backend.xp.abs(products).sum() / units.dtype.type(pairs))

    def gradient(self, x):
        norms, epsilon, units = self._vectors(x)
        products, n = self._off_diagonal(units)
        slopes = backend.xp.sign(products) * units.dtype.type(self.factor / (n * (n - 1)))
        d_units = 2 * slopes @ units
        # Rows whose norm was clipped at epsilon were divided by a constant: their Jacobian is I / epsilon.
        radial = backend.xp.where(norms > epsilon, (units * d_units).sum(axis=1, keepdims=True), 0)
        d_vectors = (d_units - units * radial) / norms
        return d_vectors if self.mode == "rows" else d_vectors.T

    def get_config(self) -> dict:
        return {"factor": self.factor, "mode": self.mode}


# Keras 3's lower-case aliases are the classes themselves.
l1 = L1
l2 = L2
l1_l2 = L1L2
orthogonal_regularizer = OrthogonalRegularizer

_CLASSES = (Regularizer, L1, L2, L1L2, OrthogonalRegularizer)
# Keras's ALL_OBJECTS_DICT: the class names and their snake_case (naming.to_snake_case: "L1L2" -> "l1l2").
_BY_NAME = {
    **{cls.__name__: cls for cls in _CLASSES},
    "regularizer": Regularizer, "l1": L1, "l2": L2, "l1l2": L1L2, "orthogonal_regularizer": OrthogonalRegularizer,
}


_OBJECTS = KerasObjects("regularizer", Regularizer, MODULE, _CLASSES, _BY_NAME, "")
serialize, deserialize = _OBJECTS.serialize, _OBJECTS.deserialize


def get(identifier) -> Regularizer | None:
    """A regularizer from None (None), a name, a serialized dict, a Regularizer class or instance, or a function
    of the weight written with convscope.ops (a ``FunctionRegularizer``)."""
    if callable(identifier) and not isinstance(identifier, (Regularizer, type)):
        return FunctionRegularizer(identifier)
    return _OBJECTS.get(identifier)
