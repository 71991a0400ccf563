"""``convscope.ops``: the differentiable subset of ``keras.ops`` (``from keras import ops`` after the import swap).

Each function takes arrays, KerasTensors or weights (``Parameter``) and follows NumPy's
semantics, broadcasting included. On arrays it computes at once and returns an array; on
a KerasTensor (inside a functional model, a subclassed model's ``call``, a custom layer's
``call`` or a loss written as a function) it records a node of the graph, which the model
differentiates like any layer call (see ``layers.operation``; the formulas are in
``arraymath.functions``). So this trains, with correct gradients:

    def call(self, x):                         # a custom layer
        return ops.relu(ops.matmul(x, self.w) + self.b)

    def weighted_mse(y_true, y_pred):          # a loss written as a function
        return ops.mean(ops.square(y_true - y_pred) * 2.0, axis=-1)

Comparisons, ``argmax``, ``one_hot`` and ``sign`` give values without a gradient, as in
Keras. A ``keras.ops`` function outside this subset raises an ``AttributeError`` naming
it and listing what there is.
"""

from __future__ import annotations

from .. import backend
from ..layers.node import KerasTensor
from ..layers.operation import Dim, apply


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def add(x1, x2):
    return apply("add", x1, x2)


def subtract(x1, x2):
    return apply("subtract", x1, x2)


def multiply(x1, x2):
    return apply("multiply", x1, x2)


def divide(x1, x2):
    return apply("divide", x1, x2)


true_divide = divide


def power(x1, x2):
    return apply("power", x1, x2)


def maximum(x1, x2):
    return apply("maximum", x1, x2)


def minimum(x1, x2):
    return apply("minimum", x1, x2)


def negative(x):
    return apply("negative", x)


def exp(x):
    return apply("exp", x)


def log(x):
    return apply("log", x)


def square(x):
    return apply("square", x)


def sqrt(x):
    return apply("sqrt", x)


def abs(x):  # noqa: A001 -- Keras's name
    return apply("abs", x)


absolute = abs


def sign(x):
    return apply("sign", x)


def relu(x):
    return apply("relu", x)


def sigmoid(x):
    return apply("sigmoid", x)


def tanh(x):
    return apply("tanh", x)


def softmax(x, axis=-1):
    return apply("softmax", x, axis=axis)


def log_softmax(x, axis=-1):
    return apply("log_softmax", x, axis=axis)


def sum(x, axis=None, keepdims=False):  # noqa: A001 -- Keras's name
    return apply("sum", x, axis=_axis(axis), keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    return apply("mean", x, axis=_axis(axis), keepdims=keepdims)


def max(x, axis=None, keepdims=False):  # noqa: A001 -- Keras's name
    return apply("max", x, axis=_axis(axis), keepdims=keepdims)


def min(x, axis=None, keepdims=False):  # noqa: A001 -- Keras's name
    return apply("min", x, axis=_axis(axis), keepdims=keepdims)


def argmax(x, axis=None, keepdims=False):
    return apply("argmax", x, axis=axis, keepdims=keepdims)


def argmin(x, axis=None, keepdims=False):
    return apply("argmin", x, axis=axis, keepdims=keepdims)


def matmul(x1, x2):
    return apply("matmul", x1, x2)


def reshape(x, newshape):
    return apply("reshape", x, newshape=tuple(newshape) if isinstance(newshape, (list, tuple)) else newshape)


def transpose(x, axes=None):
    return apply("transpose", x, axes=None if axes is None else tuple(axes))


def expand_dims(x, axis):
    return apply("expand_dims", x, axis=_axis(axis))


def squeeze(x, axis=None):
    return apply("squeeze", x, axis=_axis(axis))


def concatenate(xs, axis=0):
    return apply("concatenate", *xs, axis=axis)


def stack(x, axis=0):
    return apply("stack", *x, axis=axis)


def clip(x, x_min, x_max):
    return apply("clip", x, x_min=x_min, x_max=x_max)


def where(condition, x1=None, x2=None):
    if x1 is None or x2 is None:
        raise ValueError("convscope.ops.where: give both x1 and x2 (the one-argument form returns indices, which "
                         "have no gradient and no fixed shape)")
    return apply("where", condition, x1, x2)


def cast(x, dtype):
    return apply("cast", x, dtype=str(backend.xp.dtype(dtype)))


def one_hot(x, num_classes, axis=-1, dtype=None):
    return apply("one_hot", x, num_classes=int(num_classes), axis=axis, dtype=dtype)


def equal(x1, x2):
    return apply("equal", x1, x2)


def not_equal(x1, x2):
    return apply("not_equal", x1, x2)


def greater(x1, x2):
    return apply("greater", x1, x2)


def greater_equal(x1, x2):
    return apply("greater_equal", x1, x2)


def less(x1, x2):
    return apply("less", x1, x2)


def less_equal(x1, x2):
    return apply("less_equal", x1, x2)


def logical_and(x1, x2):
    return apply("logical_and", x1, x2)


def logical_or(x1, x2):
    return apply("logical_or", x1, x2)


def logical_not(x):
    return apply("logical_not", x)


def _dtype(dtype):
    return dtype or backend.floatx()


def ones(shape, dtype=None):
    """An array of ones (Keras's constructors take concrete shapes, so these are arrays, never graph nodes)."""
    return backend.xp.ones(shape, dtype=_dtype(dtype))


def zeros(shape, dtype=None):
    return backend.xp.zeros(shape, dtype=_dtype(dtype))


def full(shape, fill_value, dtype=None):
    return backend.xp.full(shape, fill_value, dtype=_dtype(dtype))


def eye(N, M=None, k=0, dtype=None):  # noqa: N803 -- Keras's names
    return backend.xp.eye(N, M, k, dtype=_dtype(dtype))


def arange(start, stop=None, step=1, dtype=None):
    return backend.xp.arange(start, stop, step, dtype=dtype)


def ones_like(x, dtype=None):
    return apply("full_like", x, fill_value=1, dtype=dtype)


def zeros_like(x, dtype=None):
    return apply("full_like", x, fill_value=0, dtype=dtype)


def full_like(x, fill_value, dtype=None):
    return apply("full_like", x, fill_value=fill_value, dtype=dtype)


def convert_to_tensor(x, dtype=None):
    """An array (or the KerasTensor itself): convscope's tensors are NumPy arrays."""
    if isinstance(x, KerasTensor):
        return x if dtype is None else cast(x, dtype)
    array = backend.xp.asarray(getattr(x, "value", x))
    return array if dtype is None else array.astype(dtype)


def convert_to_numpy(x):
    return backend.xp.asarray(convert_to_tensor(x))


def shape(x):
    """The shape as a tuple; on a KerasTensor an unknown size (the batch) is a ``Dim``, which prints as None
    and which ``convscope.random``'s functions accept in a shape (``random.normal((ops.shape(z)[0], 2))``)."""
    if isinstance(x, KerasTensor):
        return tuple(Dim(x, i) if d is None else d for i, d in enumerate(x.shape))
    return tuple(x.shape)


def ndim(x):
    return len(x.shape)


SUPPORTED = sorted(name for name, value in dict(globals()).items()
                   if callable(value) and not name.startswith("_") and name not in {"apply", "KerasTensor", "annotations", "Dim"})


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(
        f"convscope.ops has no {name!r}: convscope differentiates a subset of keras.ops, namely "
        f"{', '.join(SUPPORTED)}"
    )
