"""Plain-loop definitions of the merging and reshaping ops: one Python loop step per output element.

Slow and obvious on purpose: ``ops.merge`` and ``ops.reshaping`` compute the same with whole-array
operations, and the tests hold them to these loops. ``xs`` is a list of same-shaped arrays; every
function builds its output cell by cell from the rule in its docstring.
"""

from __future__ import annotations

import itertools

from .. import backend


def _cells(shape):
    """Every index of an array of ``shape``, in row-major order."""
    return itertools.product(*(range(d) for d in shape))


# ---------------------------------------------------------------- element-wise merges
def add_loops(xs):
    """y[i] = x_0[i] + x_1[i] + ... for every element i."""
    y = backend.xp.zeros_like(xs[0])
    for i in _cells(y.shape):
        total = 0.0
        for x in xs:
            total += x[i]
        y[i] = total
    return y


def subtract_loops(xs):
    """y[i] = x_0[i] - x_1[i]."""
    y = backend.xp.zeros_like(xs[0])
    for i in _cells(y.shape):
        y[i] = xs[0][i] - xs[1][i]
    return y


def multiply_loops(xs):
    """y[i] = x_0[i] * x_1[i] * ..."""
    y = backend.xp.zeros_like(xs[0])
    for i in _cells(y.shape):
        product = 1.0
        for x in xs:
            product *= x[i]
        y[i] = product
    return y


def average_loops(xs):
    """y[i] = (x_0[i] + x_1[i] + ...) / n."""
    y = backend.xp.zeros_like(xs[0])
    for i in _cells(y.shape):
        total = 0.0
        for x in xs:
            total += x[i]
        y[i] = total / len(xs)
    return y


def _winner(xs, i, better):
    """The index of the first input whose element i no later input beats (``better(a, b)``: a beats b)."""
    best = 0
    for k in range(1, len(xs)):
        if better(xs[k][i], xs[best][i]):
            best = k
    return best


def _greater(a, b):
    return a > b


def _less(a, b):
    return a < b


def maximum_loops(xs):
    """y[i] = max_k x_k[i]."""
    y = backend.xp.zeros_like(xs[0])
    for i in _cells(y.shape):
        y[i] = xs[_winner(xs, i, _greater)][i]
    return y


def minimum_loops(xs):
    """y[i] = min_k x_k[i]."""
    y = backend.xp.zeros_like(xs[0])
    for i in _cells(y.shape):
        y[i] = xs[_winner(xs, i, _less)][i]
    return y


def maximum_backward_loops(dy, xs):
    """dx_k[i] = dy[i] for the first input k holding the maximum of element i, 0 for every other input."""
    dxs = [backend.xp.zeros_like(dy) for _ in xs]
    for i in _cells(dy.shape):
        dxs[_winner(xs, i, _greater)][i] = dy[i]
    return dxs


def minimum_backward_loops(dy, xs):
    """dx_k[i] = dy[i] for the first input k holding the minimum of element i, 0 for every other input."""
    dxs = [backend.xp.zeros_like(dy) for _ in xs]
    for i in _cells(dy.shape):
        dxs[_winner(xs, i, _less)][i] = dy[i]
    return dxs


def concatenate_loops(xs, axis):
    """Output element i comes from the input whose stretch of ``axis`` holds i[axis], at the offset into it."""
    axis %= xs[0].ndim
    shape = list(xs[0].shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    y = backend.xp.zeros(shape, dtype=xs[0].dtype)
    for i in _cells(shape):
        position = i[axis]
        for x in xs:
            if position < x.shape[axis]:
                y[i] = x[i[:axis] + (position,) + i[axis + 1 :]]
                break
            position -= x.shape[axis]
    return y


# ---------------------------------------------------------------- reshaping
def reshape_loops(x, target_shape):
    """Each sample's elements, read in row-major order, written in row-major order into ``target_shape``
    (one entry may be -1: whatever the sample's size leaves)."""
    size = 1
    for d in x.shape[1:]:
        size *= d
    known = 1
    for d in target_shape:
        if d != -1:
            known *= d
    shape = tuple(size // known if d == -1 else d for d in target_shape)
    y = backend.xp.zeros((x.shape[0], *shape), dtype=x.dtype)
    for n in range(x.shape[0]):
        for source, target in zip(_cells(x.shape[1:]), _cells(shape)):
            y[(n, *target)] = x[(n, *source)]
    return y


def permute_loops(x, dims):
    """y[n, o_1, ..., o_k] = x[n, i_1, ..., i_k] where i_{dims[j]} = o_{j+1}:
    output axis j + 1 is input axis dims[j]."""
    shape = tuple(x.shape[d] for d in dims)
    y = backend.xp.zeros((x.shape[0], *shape), dtype=x.dtype)
    for n in range(x.shape[0]):
        for out in _cells(shape):
            source = [0] * len(dims)
            for j, d in enumerate(dims):
                source[d - 1] = out[j]
            y[(n, *out)] = x[(n, *source)]
    return y


def zero_pad2d_loops(x, padding):
    """y[n, r, c, ch] = x[n, r - top, c - left, ch] inside the original picture, 0 in the border."""
    (top, bottom), (left, right) = padding
    n_, h, w, c_ = x.shape
    y = backend.xp.zeros((n_, top + h + bottom, left + w + right, c_), dtype=x.dtype)
    for n in range(n_):
        for r in range(top + h + bottom):
            for c in range(left + w + right):
                for ch in range(c_):
                    if top <= r < top + h and left <= c < left + w:
                        y[n, r, c, ch] = x[n, r - top, c - left, ch]
    return y


def crop2d_loops(x, cropping):
    """y[n, r, c, ch] = x[n, r + top, c + left, ch] over the (H - top - bottom) x (W - left - right) that remain."""
    (top, bottom), (left, right) = cropping
    n_, h, w, c_ = x.shape
    y = backend.xp.zeros((n_, h - top - bottom, w - left - right, c_), dtype=x.dtype)
    for n in range(n_):
        for r in range(h - top - bottom):
            for c in range(w - left - right):
                for ch in range(c_):
                    y[n, r, c, ch] = x[n, r + top, c + left, ch]
    return y
