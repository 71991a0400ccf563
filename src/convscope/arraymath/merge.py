"""Element-wise merges and concatenation of several same-shaped arrays, forward and backward, vectorized.

Inputs are a list ``xs`` of n >= 2 arrays of one shape, or shapes that broadcast (NumPy's rule, same rank;
the gradients then come out in the output's shape: sum them back with ``functions.unbroadcast``); for
``concatenate``: one shape but for ``axis``;
every backward returns a list of n new arrays, one dL/dx_k per input, none sharing memory with ``dy``
or with each other, so a caller may accumulate into any of them in place.

    add:       y = sum_k x_k                    dx_k = dy
    subtract:  y = x_0 - x_1                    dx_0 = dy, dx_1 = -dy
    multiply:  y = prod_k x_k                   dx_k = dy * prod_{j != k} x_j   (no division: zeros are fine)
    average:   y = (1/n) sum_k x_k              dx_k = dy / n
    maximum:   y = max_k x_k                    dx_k = dy where input k is the winner, else 0
    minimum:   y = min_k x_k                    (the same with the minimum)
    concatenate along axis a: y = [x_0 | x_1 | ...]; dx_k = the slice of dy that x_k filled.

Maximum / minimum: at each element exactly one input, the *winner*, gets the whole gradient. On a tie
the winner is the first input (lowest k) holding the extreme, as ``argmax`` picks it; the other tied
inputs get 0. (The sum of the dx over inputs is dy either way; the split is a convention.)

Example:
    >>> y, winner = maximum([a, b])              # a, b (N, H, W, C)
    >>> da, db = extreme_backward(dy, winner, 2)
"""

from __future__ import annotations

from .. import backend


def add(xs):
    """sum_k x_k (a new array; the inputs are left alone). Inputs may broadcast, as NumPy's: the backward
    functions then give gradients of the output's shape, which the caller sums back (``functions.unbroadcast``)."""
    y = xs[0] + xs[1]
    for x in xs[2:]:
        y = y + x
    return y


def add_backward(dy, n: int):
    return [dy.copy() for _ in range(n)]


def subtract(xs):
    return xs[0] - xs[1]


def subtract_backward(dy):
    return [dy.copy(), -dy]


def multiply(xs):
    y = xs[0] * xs[1]
    for x in xs[2:]:
        y = y * x
    return y


def multiply_backward(dy, xs):
    """dx_k = dy * (x_0 ... x_{k-1}) * (x_{k+1} ... x_{n-1}), from running products from both ends."""
    n = len(xs)
    before = [dy]  # before[k] = dy * x_0 * ... * x_{k-1}
    for x in xs[:-1]:
        before.append(before[-1] * x)
    dxs = [None] * n
    dxs[n - 1] = before[n - 1]
    after = xs[n - 1]  # x_{k+1} * ... * x_{n-1}
    for k in range(n - 2, -1, -1):
        dxs[k] = before[k] * after
        if k:
            after = after * xs[k]
    return dxs


def average(xs):
    return add(xs) / len(xs)


def average_backward(dy, n: int):
    share = dy / n
    return [share] + [share.copy() for _ in range(n - 1)]


def maximum(xs):
    """(y, winner): the element-wise maximum and, per element, the index of the first input holding it."""
    stacked = backend.xp.stack(backend.xp.broadcast_arrays(*xs))
    winner = stacked.argmax(axis=0)
    return backend.xp.take_along_axis(stacked, winner[None], axis=0)[0], winner


def minimum(xs):
    """(y, winner): the element-wise minimum and, per element, the index of the first input holding it."""
    stacked = backend.xp.stack(backend.xp.broadcast_arrays(*xs))
    winner = stacked.argmin(axis=0)
    return backend.xp.take_along_axis(stacked, winner[None], axis=0)[0], winner


def extreme_backward(dy, winner, n: int):
    """The gradient of ``maximum`` / ``minimum``: dx_k = dy where ``winner == k``, 0 elsewhere."""
    # A product with the 0/1 mask rather than where(): the same values, faster on unpredictable masks.
    return [dy * (winner == k) for k in range(n)]


def concatenate(xs, axis: int):
    return backend.xp.concatenate(xs, axis=axis)


def concatenate_backward(dy, sizes, axis: int):
    """dy cut back into the inputs' pieces: ``sizes`` are their lengths along ``axis``."""
    offsets, total = [], 0
    for size in sizes[:-1]:
        total += size
        offsets.append(total)
    return [piece.copy() for piece in backend.xp.split(dy, offsets, axis=axis)]
