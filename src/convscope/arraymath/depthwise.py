"""Depthwise convolution in NHWC, tap by tap: each input channel convolved with its own filters.

Shapes:
    x      (N, H, W, C)
    kernel (KH, KW, C, M)                    M = depth_multiplier, as Keras stores it
    bias   (C*M,) or None
    y      (N, OH, OW, C*M)                  output channel c*M + m comes from channel c, filter m

Math:
    y[n, oh, ow, c*M + m] = bias[c*M + m] + sum_{i, j} x_pad[n, oh*sh + i*dh, ow*sw + j*dw, c] * kernel[i, j, c, m]

Output size per axis as any window op: ``OH = (H + pad_total - (dh*(KH-1)+1)) // sh + 1``.

A depthwise layer does KH*KW multiplications per output value, too few for a matrix product to pay
for the im2col copy, so the loop runs over the KH*KW window positions (never over pixels): each is one
strided view of the padded input times one (C, M) slice of the kernel. Backward, per position:
``dkernel[i, j] = sum over n, oh, ow of view * dy`` and the view's cells of dx receive ``dy @ kernel[i, j]``
summed over m; ``ops.reference_conv.depthwise_conv2d_loops`` is the definition the tests hold it to.

Example:
    >>> y, state = depthwise_conv2d_forward(np.ones((1, 5, 5, 3)), np.ones((3, 3, 3, 2)), None, (1, 1),
    ...                                     ((0, 0), (0, 0)), (1, 1))
    >>> y.shape
    (1, 3, 3, 6)
"""

from __future__ import annotations

from .. import backend
from .im2col import crop_padding, out_hw_from_pads, pad_nhwc, window_cells


def depthwise_conv2d_forward(x, kernel, bias, strides, pads, dilation):
    """``(y, x_padded)``: the output and what ``depthwise_conv2d_backward`` needs."""
    kh, kw, c, m = kernel.shape
    n = x.shape[0]
    out_hw = out_hw_from_pads(x.shape[1:3], (kh, kw), strides, dilation, pads)
    x_padded = pad_nhwc(x, pads)
    xp = backend.xp
    y = xp.zeros((n, *out_hw, c, m), dtype=xp.result_type(x, kernel))
    term = xp.empty_like(y)
    for k, cell in enumerate(window_cells(x_padded, (kh, kw), strides, dilation, out_hw)):
        xp.multiply(cell[..., None], kernel[k // kw, k % kw], out=term)
        y += term
    y = y.reshape(n, *out_hw, c * m)
    if bias is not None:
        y += bias
    return y, x_padded


def depthwise_conv2d_backward(dy, x_padded, x_shape, kernel, strides, pads, dilation, need_dx=True):
    """``(dx, dkernel, dbias)`` from ``dy`` (N, OH, OW, C*M); dx is None when ``need_dx`` is False."""
    kh, kw, c, m = kernel.shape
    n, oh, ow, _ = dy.shape
    xp = backend.xp
    dy5 = dy.reshape(n, oh, ow, c, m)
    dbias = dy.reshape(-1, c * m).sum(axis=0)
    dkernel = xp.empty_like(kernel)
    cells = window_cells(x_padded, (kh, kw), strides, dilation, (oh, ow))
    for k, cell in enumerate(cells):
        dkernel[k // kw, k % kw] = xp.einsum("nhwc,nhwcm->cm", cell, dy5)
    if not need_dx:
        return None, dkernel, dbias
    dx_padded = xp.zeros(x_padded.shape, dtype=dy.dtype)
    for k, cell in enumerate(window_cells(dx_padded, (kh, kw), strides, dilation, (oh, ow))):
        cell += xp.einsum("nhwcm,cm->nhwc", dy5, kernel[k // kw, k % kw])
    return crop_padding(dx_padded, pads, x_shape[1:3]), dkernel, dbias
