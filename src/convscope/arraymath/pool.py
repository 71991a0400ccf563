"""2-D max and average pooling in NHWC, forward and backward, vectorized.

Shapes: x (N, H, W, C) -> y (N, OH, OW, C), channels pooled independently;
``OH = floor((H + pad_total - PH) / sh) + 1``, with Keras's "same" padding
``OH = ceil(H / sh)``.

Max pooling:     y = max over the window; padded cells are -inf, so they never win.
                 Backward: each window's gradient goes to ONE cell, the first
                 maximum in row-major window order (as TensorFlow and PyTorch do
                 for ties); overlapping windows add up.
Average pooling: y = mean over the window's *real* cells: padded cells are left
                 out of the count, as Keras / TensorFlow do for "same".
                 Backward: each window's gradient is split evenly over those cells.

Pooling has no parameters: nothing here is learned.

Example:
    >>> y, arg = max_pool2d_forward(x, (2, 2), (2, 2), ((0, 0), (0, 0)))   # x (N, 26, 26, C)
    >>> y.shape                                                              # (N, 13, 13, C)
"""

from __future__ import annotations

from .. import backend
from . import jit
from .im2col import crop_padding, out_hw_from_pads, pad_nhwc, padded_hw, window_cells

_NO_DILATION = (1, 1)


def _cells(x, pool_size, strides, pads, pad_value):
    x_padded = pad_nhwc(x, pads, pad_value)
    out_hw = out_hw_from_pads(x.shape[1:3], pool_size, strides, _NO_DILATION, pads)
    return window_cells(x_padded, pool_size, strides, _NO_DILATION, out_hw)


def _scatter(parts, x_shape, pool_size, strides, pads):
    """dx (N, H, W, C) from one (N, OH, OW, C) gradient per window position; overlaps add up."""
    n, h, w, c = x_shape
    dx = backend.xp.zeros((n, *padded_hw((h, w), pads), c), dtype=parts[0].dtype)
    out_hw = parts[0].shape[1:3]
    for cell, part in zip(window_cells(dx, pool_size, strides, _NO_DILATION, out_hw), parts):
        cell += part
    return crop_padding(dx, pads, (h, w))


def _index_dtype(pool_size):
    """The smallest integer type that numbers every cell of a window (less memory traffic)."""
    return backend.xp.uint8 if pool_size[0] * pool_size[1] < 256 else backend.xp.int32


def max_pool2d_forward(x, pool_size, strides, pads):
    """Returns ``(y, argmax)``; argmax (N, OH, OW, C) is the winner's flat index in its window.

    One pass per window position: a cell replaces the running maximum only when
    strictly greater, so the first maximum (row-major) wins ties.
    """
    xp = backend.xp
    if jit.enabled():
        out_hw = out_hw_from_pads(x.shape[1:3], pool_size, strides, _NO_DILATION, pads)
        y = xp.empty((x.shape[0], *out_hw, x.shape[3]), dtype=x.dtype)
        argmax = xp.empty(y.shape, dtype=_index_dtype(pool_size))
        jit.max_pool(xp.ascontiguousarray(pad_nhwc(x, pads, -xp.inf)), y, argmax, tuple(pool_size), tuple(strides))
        return y, argmax
    cells = _cells(x, pool_size, strides, pads, -xp.inf)
    y = cells[0].copy()
    argmax = xp.zeros(y.shape, dtype=_index_dtype(pool_size))
    for k, cell in enumerate(cells[1:], start=1):
        better = cell > y
        xp.copyto(y, cell, where=better)
        xp.copyto(argmax, k, where=better, casting="unsafe")
    return y, argmax


def max_pool2d_backward(dy, argmax, x_shape, pool_size, strides, pads):
    """dx (N, H, W, C): ``dy`` routed to each window's arg-max cell."""
    xp = backend.xp
    if jit.enabled():
        n, h, w, c = x_shape
        dx = xp.zeros((n, *padded_hw((h, w), pads), c), dtype=dy.dtype)
        jit.max_pool_backward(xp.ascontiguousarray(dy), argmax, dx, tuple(pool_size), tuple(strides))
        return crop_padding(dx, pads, (h, w))
    parts = [dy * (argmax == k) for k in range(pool_size[0] * pool_size[1])]
    return _scatter(parts, x_shape, pool_size, strides, pads)


def window_counts(hw, pool_size, strides, pads, dtype):
    """(1, OH, OW, 1): how many real (unpadded) cells each window covers."""
    ones = backend.xp.ones((1, hw[0], hw[1], 1), dtype=dtype)
    return sum(_cells(ones, pool_size, strides, pads, 0.0))


def avg_pool2d_forward(x, pool_size, strides, pads, counts=None):
    """y (N, OH, OW, C): window sums over real cells divided by ``counts`` (see ``window_counts``)."""
    if counts is None:
        counts = window_counts(x.shape[1:3], pool_size, strides, pads, x.dtype)
    cells = _cells(x, pool_size, strides, pads, 0.0)
    total = cells[0].copy()
    for cell in cells[1:]:
        total += cell
    return total / counts


def avg_pool2d_backward(dy, x_shape, pool_size, strides, pads, counts=None):
    """dx (N, H, W, C): each window's gradient shared evenly by its real cells."""
    if counts is None:
        counts = window_counts(x_shape[1:3], pool_size, strides, pads, dy.dtype)
    share = dy / counts
    return _scatter([share] * (pool_size[0] * pool_size[1]), x_shape, pool_size, strides, pads)
