"""The math of ``convscope.ops`` (Keras's ``keras.ops`` subset): each function forward and backward.

``FUNCTIONS[name]`` is a ``Function(forward, backward, differentiable)``:

* ``forward(*arrays, **attrs) -> array`` computes the result with NumPy's semantics
  (broadcasting included);
* ``backward(dy, arrays, y, **attrs) -> [dL/d(array) or None, ...]`` takes dL/dy for the
  result ``y`` of ``forward(*arrays)`` and returns one gradient per positional input, each
  of that input's shape: where an input was broadcast, its gradient is summed over the
  broadcast axes (``unbroadcast``). None marks an input with no gradient (a condition, an
  integer index, a comparison's operands).

The formulas, for upstream gradient g:

    add / subtract        dx1 = g, dx2 = +-g            multiply   dx1 = g*x2, dx2 = g*x1
    divide                dx1 = g/x2, dx2 = -g*x1/x2**2 power      dx1 = g*x2*x1**(x2-1), dx2 = g*y*log(x1)
    maximum / minimum     g to the winning input (ties: half each, as TensorFlow)
    exp  g*y   log  g/x   square  2*g*x   sqrt  g/(2*y)   abs  g*sign(x)   relu  g*(x > 0)
    sigmoid  g*y*(1-y)    tanh  g*(1-y**2)  softmax  y*(g - sum(g*y, axis))  log_softmax  g - softmax*sum(g)
    sum  g broadcast back   mean  g / count   max / min  g shared among the tied extremes
    matmul  dA = g @ B^T, dB = A^T @ g (batch axes unbroadcast)   reshape / transpose / expand_dims /
    squeeze / concatenate / stack / getitem: the inverse rearrangement of g
    clip  g where x_min <= x <= x_max     where  g to x1 where condition, else to x2

Example::

    >>> import numpy as np
    >>> f = FUNCTIONS["multiply"]
    >>> a, b = np.array([1.0, 2.0]), np.array(3.0)
    >>> f.forward(a, b), f.backward(np.ones(2), (a, b), f.forward(a, b))
    (array([3., 6.]), [array([3., 3.]), array(3.)])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .. import backend

xp = backend.xp


@dataclass(frozen=True)
class Function:
    """``stateful``: ``forward`` returns ``(y, state)`` and ``backward`` receives ``state`` in ``y``'s place (a
    random op's draw, which its gradient needs and its output cannot give back)."""

    forward: Callable
    backward: Callable
    differentiable: bool = True
    stateful: bool = False


def unbroadcast(g, shape):
    """Sum ``g`` down to ``shape``: the adjoint of NumPy broadcasting ``shape`` to ``g.shape``."""
    shape = tuple(shape)
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(extra))) if extra > 0 else g
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _shape(a):
    return xp.shape(a)


def _no_grads(dy, arrays, y, **attrs):
    return [None] * len(arrays)


def _elementwise(f, df):
    """A unary function ``f`` whose derivative ``df(x, y)`` is element-wise."""
    return Function(lambda x: f(x), lambda dy, arrays, y: [dy * df(arrays[0], y)])


def _binary(f, d1, d2):
    """A broadcasting binary function; ``d1(x1, x2, y)``, ``d2(...)`` are the element-wise partials."""
    def backward(dy, arrays, y):
        x1, x2 = arrays
        return [unbroadcast(dy * d1(x1, x2, y), _shape(x1)), unbroadcast(dy * d2(x1, x2, y), _shape(x2))]

    return Function(f, backward)


def _sigmoid(x):
    return xp.where(x >= 0, 1 / (1 + xp.exp(-xp.abs(x))), xp.exp(-xp.abs(x)) / (1 + xp.exp(-xp.abs(x))))


def _softmax(x, axis=-1):
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def _log_softmax(x, axis=-1):
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def _maximum_backward(dy, arrays, y):
    x1, x2 = arrays
    share = xp.where(x1 == x2, 0.5, (x1 > x2).astype(dy.dtype))
    return [unbroadcast(dy * share, _shape(x1)), unbroadcast(dy * (1 - share), _shape(x2))]


def _minimum_backward(dy, arrays, y):
    x1, x2 = arrays
    share = xp.where(x1 == x2, 0.5, (x1 < x2).astype(dy.dtype))
    return [unbroadcast(dy * share, _shape(x1)), unbroadcast(dy * (1 - share), _shape(x2))]


def _power_backward(dy, arrays, y):
    x1, x2 = arrays
    with xp.errstate(divide="ignore", invalid="ignore"):
        d1 = dy * x2 * xp.power(x1, x2 - 1)
        d2 = dy * y * xp.where(x1 > 0, xp.log(xp.where(x1 > 0, x1, 1)), 0)
    return [unbroadcast(d1, _shape(x1)), unbroadcast(d2, _shape(x2))]


def _expand_reduced(g, shape, axis, keepdims):
    """``g`` of a reduction over ``axis`` reshaped so that it broadcasts against the input ``shape``."""
    if axis is None:
        return xp.reshape(g, (1,) * len(shape))
    if keepdims:
        return g
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return xp.expand_dims(g, tuple(a % len(shape) for a in axes))


def _sum_backward(dy, arrays, y, axis=None, keepdims=False):
    x = arrays[0]
    return [xp.broadcast_to(_expand_reduced(dy, x.shape, axis, keepdims), x.shape).astype(dy.dtype)]


def _mean_backward(dy, arrays, y, axis=None, keepdims=False):
    x = arrays[0]
    count = x.size // max(xp.size(y), 1) if x.size else 1
    return [xp.broadcast_to(_expand_reduced(dy, x.shape, axis, keepdims) / count, x.shape).astype(dy.dtype)]


def _extreme_backward(dy, arrays, y, axis=None, keepdims=False):
    x = arrays[0]
    hit = (x == _expand_reduced(y, x.shape, axis, keepdims)).astype(dy.dtype)
    reduce_axis = axis if axis is None or isinstance(axis, int) else tuple(axis)
    ties = _expand_reduced(xp.sum(hit, axis=reduce_axis, keepdims=keepdims), x.shape, axis, keepdims)
    return [hit / ties * _expand_reduced(dy, x.shape, axis, keepdims)]


def _matmul_backward(dy, arrays, y):
    a, b = arrays
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g = dy
    if a.ndim == 1:
        g = xp.expand_dims(g, -2)
    if b.ndim == 1:
        g = xp.expand_dims(g, -1)
    da = g @ xp.swapaxes(b2, -1, -2)
    db = xp.swapaxes(a2, -1, -2) @ g
    da = unbroadcast(da, a2.shape).reshape(a.shape)
    db = unbroadcast(db, b2.shape).reshape(b.shape)
    return [da, db]


def _reshape_backward(dy, arrays, y, newshape):
    return [xp.reshape(dy, arrays[0].shape)]


def _transpose_backward(dy, arrays, y, axes=None):
    if axes is None:
        return [xp.transpose(dy)]
    return [xp.transpose(dy, xp.argsort(axes))]


def _concatenate_backward(dy, arrays, y, axis=0):
    ends = xp.cumsum([a.shape[axis] for a in arrays])[:-1]
    return list(xp.split(dy, ends, axis=axis))


def _stack_backward(dy, arrays, y, axis=0):
    return [xp.take(dy, i, axis=axis) for i in range(len(arrays))]


def _getitem_backward(dy, arrays, y, key):
    dx = xp.zeros(arrays[0].shape, dtype=dy.dtype)
    xp.add.at(dx, key, dy)
    return [dx]


def _clip_backward(dy, arrays, y, x_min, x_max):
    x = arrays[0]
    return [dy * ((x >= x_min) & (x <= x_max))]


def _where_backward(dy, arrays, y):
    condition, x1, x2 = arrays
    condition = condition.astype(bool)
    return [None, unbroadcast(xp.where(condition, dy, 0), _shape(x1)),
            unbroadcast(xp.where(condition, 0, dy), _shape(x2))]


def _softmax_backward(dy, arrays, y, axis=-1):
    return [y * (dy - xp.sum(dy * y, axis=axis, keepdims=True))]


def _log_softmax_backward(dy, arrays, y, axis=-1):
    return [dy - xp.exp(y) * xp.sum(dy, axis=axis, keepdims=True)]


def _one_hot(x, num_classes, axis=-1, dtype=None):
    x = xp.asarray(x).astype(int)
    out = (xp.expand_dims(x, -1) == xp.arange(num_classes)).astype(dtype or backend.floatx())
    return out if axis == -1 else xp.moveaxis(out, -1, axis)


def _cast_backward(dy, arrays, y, dtype):
    x = arrays[0]
    floating = xp.issubdtype(xp.asarray(x).dtype, xp.floating) and xp.issubdtype(xp.dtype(dtype), xp.floating)
    return [dy.astype(xp.asarray(x).dtype) if floating else None]


def rng_of(generator):
    """The generator a random op draws from at run time: None -> the global one (as it is now, after any
    reseeding), an int -> a fresh one from that seed (the same numbers every run), else the stream given."""
    if generator is None:
        return backend.global_rng()
    return xp.random.default_rng(generator) if isinstance(generator, int) else generator


def _dropout(x, rate, generator):
    """Keras's ``random.dropout``: each element kept with probability 1 - rate and scaled by 1 / (1 - rate)."""
    keep = (rng_of(generator).random(xp.shape(x)) >= rate).astype(xp.asarray(x).dtype) / (1.0 - rate)
    return x * keep, keep


def _resolved(arrays, shape):
    """``shape`` with each ``("dim", i, axis)`` entry read off ``arrays[i]`` (a batch size known only at run time)."""
    return tuple(arrays[d[1]].shape[d[2]] if isinstance(d, tuple) else d for d in shape)


def _random_normal(*refs, shape, mean, stddev, dtype, generator):
    return (rng_of(generator).standard_normal(_resolved(refs, shape)) * stddev + mean).astype(dtype)


def _random_uniform(*refs, shape, minval, maxval, dtype, generator):
    return rng_of(generator).uniform(minval, maxval, _resolved(refs, shape)).astype(dtype)


def _loss_value(y_true, y_pred, loss, sample_weight=None):
    """A ``convscope.losses`` object called on tensors inside a traced ``call`` (Keras's endpoint layers)."""
    return xp.asarray(loss(y_true, y_pred, sample_weight=sample_weight), dtype=xp.asarray(y_pred).dtype)


def _loss_backward(dy, arrays, y, loss, sample_weight=None):
    return [None, dy * loss.gradient(arrays[0], arrays[1], sample_weight=sample_weight)]


def _comparison(f):
    return Function(f, _no_grads, differentiable=False)


FUNCTIONS: dict[str, Function] = {
    "add": _binary(xp.add, lambda a, b, y: 1.0, lambda a, b, y: 1.0),
    "subtract": _binary(xp.subtract, lambda a, b, y: 1.0, lambda a, b, y: -1.0),
    "multiply": _binary(xp.multiply, lambda a, b, y: b, lambda a, b, y: a),
    "divide": _binary(xp.true_divide, lambda a, b, y: 1.0 / b, lambda a, b, y: -a / (b * b)),
    "power": Function(xp.power, _power_backward),
    "maximum": Function(xp.maximum, _maximum_backward),
    "minimum": Function(xp.minimum, _minimum_backward),
    "negative": _elementwise(xp.negative, lambda x, y: -1.0),
    "exp": _elementwise(xp.exp, lambda x, y: y),
    "log": _elementwise(xp.log, lambda x, y: 1.0 / x),
    "square": _elementwise(xp.square, lambda x, y: 2.0 * x),
    "sqrt": _elementwise(xp.sqrt, lambda x, y: 0.5 / y),
    "abs": _elementwise(xp.abs, lambda x, y: xp.sign(x)),
    "relu": _elementwise(lambda x: xp.maximum(x, 0), lambda x, y: (x > 0).astype(xp.asarray(x).dtype)),
    "sigmoid": _elementwise(_sigmoid, lambda x, y: y * (1 - y)),
    "tanh": _elementwise(xp.tanh, lambda x, y: 1 - y * y),
    "softmax": Function(_softmax, _softmax_backward),
    "log_softmax": Function(_log_softmax, _log_softmax_backward),
    "sum": Function(lambda x, axis=None, keepdims=False: xp.sum(x, axis=axis, keepdims=keepdims), _sum_backward),
    "mean": Function(lambda x, axis=None, keepdims=False: xp.mean(x, axis=axis, keepdims=keepdims), _mean_backward),
    "max": Function(lambda x, axis=None, keepdims=False: xp.max(x, axis=axis, keepdims=keepdims), _extreme_backward),
    "min": Function(lambda x, axis=None, keepdims=False: xp.min(x, axis=axis, keepdims=keepdims), _extreme_backward),
    "matmul": Function(xp.matmul, _matmul_backward),
    "reshape": Function(lambda x, newshape: xp.reshape(x, newshape), _reshape_backward),
    "transpose": Function(lambda x, axes=None: xp.transpose(x, axes), _transpose_backward),
    "expand_dims": Function(lambda x, axis: xp.expand_dims(x, axis), lambda dy, arrays, y, axis: [
        xp.reshape(dy, arrays[0].shape)]),
    "squeeze": Function(lambda x, axis=None: xp.squeeze(x, axis), lambda dy, arrays, y, axis=None: [
        xp.reshape(dy, arrays[0].shape)]),
    "concatenate": Function(lambda *xs, axis=0: xp.concatenate(xs, axis=axis), _concatenate_backward),
    "stack": Function(lambda *xs, axis=0: xp.stack(xs, axis=axis), _stack_backward),
    "getitem": Function(lambda x, key: x[key], _getitem_backward),
    "clip": Function(lambda x, x_min, x_max: xp.clip(x, x_min, x_max), _clip_backward),
    "where": Function(lambda c, x1, x2: xp.where(c, x1, x2), _where_backward),
    "cast": Function(lambda x, dtype: xp.asarray(x).astype(dtype), _cast_backward),
    "one_hot": Function(_one_hot, _no_grads, differentiable=False),
    "argmax": Function(lambda x, axis=None, keepdims=False: xp.argmax(x, axis=axis, keepdims=keepdims), _no_grads,
                       differentiable=False),
    "argmin": Function(lambda x, axis=None, keepdims=False: xp.argmin(x, axis=axis, keepdims=keepdims), _no_grads,
                       differentiable=False),
    "sign": Function(xp.sign, _no_grads, differentiable=False),
    "loss": Function(_loss_value, _loss_backward),
    "dropout": Function(_dropout, lambda dy, arrays, keep, **attrs: [dy * keep], stateful=True),
    "random_normal": Function(_random_normal, _no_grads, differentiable=False),
    "random_uniform": Function(_random_uniform, _no_grads, differentiable=False),
    "full_like": Function(lambda x, fill_value, dtype=None: xp.full_like(x, fill_value, dtype=dtype), _no_grads,
                          differentiable=False),
    "equal": _comparison(xp.equal),
    "not_equal": _comparison(xp.not_equal),
    "greater": _comparison(xp.greater),
    "greater_equal": _comparison(xp.greater_equal),
    "less": _comparison(xp.less),
    "less_equal": _comparison(xp.less_equal),
    "logical_and": _comparison(xp.logical_and),
    "logical_or": _comparison(xp.logical_or),
    "logical_not": _comparison(xp.logical_not),
}
