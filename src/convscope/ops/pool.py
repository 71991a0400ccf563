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
from .im2col import col2im, im2col

_NO_DILATION = (1, 1)


def max_pool2d_forward(x, pool_size, strides, pads):
    """Returns ``(y, argmax)``; argmax (N, OH, OW, C) is the winner's flat index in its window."""
    xp = backend.xp
    cols = im2col(x, pool_size, strides, _NO_DILATION, pads, pad_value=-xp.inf)
    n, oh, ow, ph, pw, c = cols.shape
    flat = cols.reshape(n, oh, ow, ph * pw, c)
    argmax = flat.argmax(axis=3)
    y = xp.take_along_axis(flat, argmax[:, :, :, None, :], axis=3)[:, :, :, 0, :]
    return y, argmax


def max_pool2d_backward(dy, argmax, x_shape, pool_size, strides, pads):
    """dx (N, H, W, C): ``dy`` routed to each window's arg-max cell."""
    n, oh, ow, c = dy.shape
    ph, pw = pool_size
    dcols = backend.xp.zeros((n, oh, ow, ph * pw, c), dtype=dy.dtype)
    backend.xp.put_along_axis(dcols, argmax[:, :, :, None, :], dy[:, :, :, None, :], axis=3)
    return col2im(dcols.reshape(n, oh, ow, ph, pw, c), x_shape, pool_size, strides, _NO_DILATION, pads)


def window_counts(hw, pool_size, strides, pads, dtype):
    """(1, OH, OW, 1): how many real (unpadded) cells each window covers."""
    ones = backend.xp.ones((1, hw[0], hw[1], 1), dtype=dtype)
    return im2col(ones, pool_size, strides, _NO_DILATION, pads).sum(axis=(3, 4))


def avg_pool2d_forward(x, pool_size, strides, pads, counts=None):
    """y (N, OH, OW, C): window sums over real cells divided by ``counts`` (see ``window_counts``)."""
    if counts is None:
        counts = window_counts(x.shape[1:3], pool_size, strides, pads, x.dtype)
    cols = im2col(x, pool_size, strides, _NO_DILATION, pads)
    return cols.sum(axis=(3, 4)) / counts


def avg_pool2d_backward(dy, x_shape, pool_size, strides, pads, counts=None):
    """dx (N, H, W, C): each window's gradient shared evenly by its real cells."""
    if counts is None:
        counts = window_counts(x_shape[1:3], pool_size, strides, pads, dy.dtype)
    share = dy / counts
    n, oh, ow, c = dy.shape
    dcols = backend.xp.broadcast_to(share[:, :, :, None, None, :], (n, oh, ow, pool_size[0], pool_size[1], c))
    return col2im(dcols, x_shape, pool_size, strides, _NO_DILATION, pads)
