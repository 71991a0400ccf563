"""Weight constraints with Keras 3's names, defaults, formulas and configs (``keras.constraints``).

A constraint is a projection ``c(w) -> new w`` (same shape and dtype) that the training loop
applies to a parameter after every optimizer step: ``param.value[...] = c(param.value)``.
Norms are taken over ``axis`` (kept), with Keras's epsilon 1e-7 in the denominators:

    norms = sqrt(sum over axis of w^2)
    MaxNorm(max_value=2, axis=0)        w * clip(norms, 0, max_value) / (1e-7 + norms)
    MinMaxNorm(min_value=0.0, max_value=1.0, rate=1.0, axis=0)
        w * (rate * clip(norms, min_value, max_value) + (1 - rate) * norms) / (1e-7 + norms)
    UnitNorm(axis=0)                    w / (1e-7 + norms)
    NonNeg()                            max(w, 0)

``axis`` names the axes a norm runs over, i.e. what one "incoming weight vector" is: for a Dense
kernel (in, units) ``axis=0`` constrains each unit's (in,) vector; for a Conv2D kernel
(kh, kw, in, filters) ``axis=[0, 1, 2]`` constrains each filter's (kh, kw, in) block (the
default ``axis=0`` there would constrain each (kh,) column of it, as in Keras). An int, a list
of ints, or None (one norm over the whole array).

Names: the classes, their snake_case names (``"max_norm"``, ``"min_max_norm"``, ``"non_neg"``,
``"unit_norm"``) and the aliases ``max_norm``, ``min_max_norm``, ``non_neg``, ``unit_norm`` (the
classes themselves, as in Keras 3). ``serialize`` writes Keras 3's form ``{"module":
"keras.constraints", "class_name": "MaxNorm", "config": {"max_value": 2, "axis": 0},
"registered_name": None}``; ``deserialize`` and ``get`` read it back.

Example:
    >>> MaxNorm(1.0)(np.array([[3.0], [4.0]]))       # the column's norm 5 clipped to 1 (less the epsilon)
    array([[0.59999999],
           [0.79999998]])
"""

from __future__ import annotations

import math
import numbers

from . import backend
from .keras_objects import KerasObject, KerasObjects

MODULE = "keras.constraints"
# Keras's backend.epsilon(), added to every norm it divides by.
_EPSILON = 1e-7


def _number(owner: str, arg: str, value):
    """A finite real number >= 0, kept as given (Keras writes ``max_value=2`` as 2 in its config)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: argument `{arg}` expected a number, received {value!r} of type "
                        f"{type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{owner}: argument `{arg}` expected a finite number >= 0, received {value!r}")
    return value


def _axis(owner: str, axis):
    """An int, a non-empty list of distinct ints (a tuple becomes a list, as JSON has no tuples) or None."""
    if axis is None or (isinstance(axis, int) and not isinstance(axis, bool)):
        return axis
    if isinstance(axis, (list, tuple)) and axis and all(isinstance(a, int) and not isinstance(a, bool)
                                                        for a in axis):
        if len(set(axis)) != len(axis):
            raise ValueError(f"{owner}: argument `axis` has repeated axes, received {axis!r}")
        return list(axis)
    raise TypeError(f"{owner}: argument `axis` expected an int, a non-empty list of ints or None, received {axis!r}")


def _as_float_array(w):
    w = backend.xp.asarray(w)
    return w if w.dtype.kind == "f" else backend.cast(w)


class Constraint(KerasObject):
    """Base class: ``__call__(w) -> w`` (unchanged here), ``get_config``, ``from_config``."""

    def __call__(self, w):
        return _as_float_array(w)


class _NormConstraint(Constraint):
    """What the norm-based constraints share: ``axis`` and the norms along it."""

    def __init__(self, axis):
        self.axis = _axis(type(self).__name__, axis)

    def _norms(self, w):
        """(w as a float array, sqrt(sum of w^2 over axis), kept so that it broadcasts against w)."""
        w = _as_float_array(w)
        axes = self.axis if isinstance(self.axis, list) else [self.axis] if self.axis is not None else []
        if any(not -w.ndim <= a < w.ndim for a in axes):
            raise ValueError(f"{type(self).__name__}: axis={self.axis!r} is out of bounds for a weight of shape "
                             f"{w.shape}")
        axis = None if self.axis is None else tuple(axes)
        return w, backend.xp.sqrt(backend.xp.square(w).sum(axis=axis, keepdims=True))


class MaxNorm(_NormConstraint):
    """w * clip(norms, 0, max_value) / (1e-7 + norms): vectors longer than ``max_value`` scaled down to it.

    Example: ``MaxNorm(2, axis=0)`` on a Dense kernel (in, units) caps each unit's incoming weight norm at 2.
    """

    def __init__(self, max_value=2, axis=0):
        self.max_value = _number("MaxNorm", "max_value", max_value)
        super().__init__(axis)

    def __call__(self, w):
        w, norms = self._norms(w)
        return w * (backend.xp.clip(norms, 0, self.max_value) / (_EPSILON + norms))

    def get_config(self) -> dict:
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """max(w, 0): negative weights set to zero."""

    def __call__(self, w):
        return backend.xp.maximum(_as_float_array(w), 0)


class UnitNorm(_NormConstraint):
    """w / (1e-7 + norms): every vector along ``axis`` scaled to norm 1 (just under, by the epsilon)."""

    def __init__(self, axis=0):
        super().__init__(axis)

    def __call__(self, w):
        w, norms = self._norms(w)
        return w / (_EPSILON + norms)

    def get_config(self) -> dict:
        return {"axis": self.axis}


class MinMaxNorm(_NormConstraint):
    """w * desired / (1e-7 + norms), desired = rate * clip(norms, min_value, max_value) + (1 - rate) * norms.

    ``rate=1`` enforces min_value <= norm <= max_value at once; a smaller rate moves the norms
    that fraction of the way into the interval at each step.
    """

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = _number("MinMaxNorm", "min_value", min_value)
        self.max_value = _number("MinMaxNorm", "max_value", max_value)
        if self.min_value > self.max_value:
            raise ValueError(f"MinMaxNorm: argument `min_value` must be <= `max_value`, received "
                             f"min_value={min_value!r}, max_value={max_value!r}")
        self.rate = _number("MinMaxNorm", "rate", rate)
        if self.rate > 1:
            raise ValueError(f"MinMaxNorm: argument `rate` expected a number in [0, 1], received {rate!r}")
        super().__init__(axis)

    def __call__(self, w):
        w, norms = self._norms(w)
        desired = self.rate * backend.xp.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return w * (desired / (_EPSILON + norms))

    def get_config(self) -> dict:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


# Keras 3's lower-case aliases are the classes themselves.
max_norm = MaxNorm
min_max_norm = MinMaxNorm
non_neg = NonNeg
unit_norm = UnitNorm

_CLASSES = (Constraint, MaxNorm, MinMaxNorm, NonNeg, UnitNorm)
# Keras's ALL_OBJECTS_DICT: the class names and their snake_case.
_BY_NAME = {
    **{cls.__name__: cls for cls in _CLASSES},
    "constraint": Constraint, "max_norm": MaxNorm, "min_max_norm": MinMaxNorm, "non_neg": NonNeg,
    "unit_norm": UnitNorm,
}


_OBJECTS = KerasObjects("constraint", Constraint, MODULE, _CLASSES, _BY_NAME,
                        ", which a model file cannot name; subclass convscope.constraints.Constraint and define "
                        "__call__ (and get_config)")
get, serialize, deserialize = _OBJECTS.get, _OBJECTS.serialize, _OBJECTS.deserialize
