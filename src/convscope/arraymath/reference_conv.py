"""Plain-loop definitions of depthwise, separable and transposed 2-D convolution, forward and backward.

Slow and obvious on purpose: python loops over every output cell (or, for the transposed
convolution, every input cell) and every kernel tap. The fast versions (``ops.conv`` with
groups, ``ops.conv_transpose``) are held to these by the tests. Arguments as in Keras:
pairs for ``strides`` and ``dilation_rate``, ``padding`` "valid" or "same".

Shapes:
    depthwise   x (N, H, W, C), depthwise_kernel (KH, KW, C, M)  -> y (N, OH, OW, C*M)
    separable   ... then pointwise_kernel (1, 1, C*M, F)         -> y (N, OH, OW, F)
    transposed  x (N, H, W, C), kernel (KH, KW, F, C)            -> y (N, OH, OW, F)
"""

from __future__ import annotations

from .. import backend
from .conv_transpose import conv_transpose_geometry
from .reference import _padded
from .shapes import output_hw, paddings_2d


def depthwise_conv2d_loops(x, depthwise_kernel, bias=None, strides=(1, 1), padding="valid", dilation_rate=(1, 1)):
    """Each input channel c convolved on its own with each of its M filters; channel c*M + m of the output:

        y[n, oh, ow, c*M + m] = bias[c*M + m] + sum_{i, j} x_pad[n, oh*sh + i*dh, ow*sw + j*dw, c] * k[i, j, c, m]
    """
    kh, kw, nc, nm = depthwise_kernel.shape
    pads = paddings_2d(x.shape[1:3], (kh, kw), strides, padding, dilation_rate)
    oh_, ow_ = output_hw(x.shape[1:3], (kh, kw), strides, padding, dilation_rate)
    x_pad = _padded(x, pads)
    y = backend.xp.zeros((x.shape[0], oh_, ow_, nc * nm), dtype=x.dtype)
    for n in range(x.shape[0]):
        for oh in range(oh_):
            for ow in range(ow_):
                for c in range(nc):
                    for m in range(nm):
                        total = 0.0 if bias is None else bias[c * nm + m]
                        for i in range(kh):
                            for j in range(kw):
                                row = oh * strides[0] + i * dilation_rate[0]
                                col = ow * strides[1] + j * dilation_rate[1]
                                total += x_pad[n, row, col, c] * depthwise_kernel[i, j, c, m]
                        y[n, oh, ow, c * nm + m] = total
    return y


def depthwise_conv2d_backward_loops(dy, x, depthwise_kernel, strides=(1, 1), padding="valid", dilation_rate=(1, 1)):
    """(dx, ddepthwise_kernel, dbias) of ``depthwise_conv2d_loops``: each product x_pad * k of the sum sends
    dy * k to the input cell and dy * x_pad to the kernel weight."""
    kh, kw, nc, nm = depthwise_kernel.shape
    pads = paddings_2d(x.shape[1:3], (kh, kw), strides, padding, dilation_rate)
    x_pad = _padded(x, pads)
    dx_pad = backend.xp.zeros_like(x_pad)
    dkernel = backend.xp.zeros_like(depthwise_kernel)
    dbias = dy.sum(axis=(0, 1, 2))
    for n in range(dy.shape[0]):
        for oh in range(dy.shape[1]):
            for ow in range(dy.shape[2]):
                for c in range(nc):
                    for m in range(nm):
                        g = dy[n, oh, ow, c * nm + m]
                        for i in range(kh):
                            for j in range(kw):
                                row = oh * strides[0] + i * dilation_rate[0]
                                col = ow * strides[1] + j * dilation_rate[1]
                                dkernel[i, j, c, m] += x_pad[n, row, col, c] * g
                                dx_pad[n, row, col, c] += depthwise_kernel[i, j, c, m] * g
    (top, _), (left, _) = pads
    return dx_pad[:, top : top + x.shape[1], left : left + x.shape[2], :], dkernel, dbias


def pointwise_conv2d_loops(z, pointwise_kernel, bias=None):
    """A 1x1 convolution: y[n, h, w, f] = bias[f] + sum_k z[n, h, w, k] * pointwise_kernel[0, 0, k, f]."""
    nk, nf = pointwise_kernel.shape[2:]
    y = backend.xp.zeros((*z.shape[:3], nf), dtype=z.dtype)
    for n in range(z.shape[0]):
        for h in range(z.shape[1]):
            for w in range(z.shape[2]):
                for f in range(nf):
                    total = 0.0 if bias is None else bias[f]
                    for k in range(nk):
                        total += z[n, h, w, k] * pointwise_kernel[0, 0, k, f]
                    y[n, h, w, f] = total
    return y


def pointwise_conv2d_backward_loops(dy, z, pointwise_kernel):
    """(dz, dpointwise_kernel, dbias) of ``pointwise_conv2d_loops``."""
    nk, nf = pointwise_kernel.shape[2:]
    dz = backend.xp.zeros_like(z)
    dkernel = backend.xp.zeros_like(pointwise_kernel)
    for n in range(z.shape[0]):
        for h in range(z.shape[1]):
            for w in range(z.shape[2]):
                for f in range(nf):
                    for k in range(nk):
                        dz[n, h, w, k] += pointwise_kernel[0, 0, k, f] * dy[n, h, w, f]
                        dkernel[0, 0, k, f] += z[n, h, w, k] * dy[n, h, w, f]
    return dz, dkernel, dy.sum(axis=(0, 1, 2))


def separable_conv2d_loops(x, depthwise_kernel, pointwise_kernel, bias=None, strides=(1, 1), padding="valid",
                           dilation_rate=(1, 1)):
    """Depthwise (no bias), then a 1x1 convolution mixing the C*M channels into F, then the bias:

        y[n, oh, ow, f] = bias[f] + sum_k depthwise(x)[n, oh, ow, k] * pointwise_kernel[0, 0, k, f]
    """
    z = depthwise_conv2d_loops(x, depthwise_kernel, None, strides, padding, dilation_rate)
    return pointwise_conv2d_loops(z, pointwise_kernel, bias)


def separable_conv2d_backward_loops(dy, x, depthwise_kernel, pointwise_kernel, strides=(1, 1), padding="valid",
                                    dilation_rate=(1, 1)):
    """(dx, ddepthwise_kernel, dpointwise_kernel, dbias) of ``separable_conv2d_loops``, by the chain rule
    through its two steps."""
    z = depthwise_conv2d_loops(x, depthwise_kernel, None, strides, padding, dilation_rate)
    dz, dpointwise, dbias = pointwise_conv2d_backward_loops(dy, z, pointwise_kernel)
    dx, ddepthwise, _ = depthwise_conv2d_backward_loops(dz, x, depthwise_kernel, strides, padding, dilation_rate)
    return dx, ddepthwise, dpointwise, dbias


def _scatter_terms(x, kernel, strides, padding, output_padding, dilation_rate):
    """Yield ((n, i, j, c), (a, b, f, c), (n, row, col, f)) for every product x * kernel a transposed
    convolution adds, with (row, col) its output cell; terms that land outside the output are dropped."""
    kh, kw, nf, nc = kernel.shape
    (oh_, ow_), ((top, _), (left, _)) = conv_transpose_geometry(
        x.shape[1:3], (kh, kw), strides, padding, output_padding, dilation_rate
    )
    for n in range(x.shape[0]):
        for i in range(x.shape[1]):
            for j in range(x.shape[2]):
                for c in range(nc):
                    for a in range(kh):
                        for b in range(kw):
                            row = i * strides[0] + a * dilation_rate[0] - top
                            col = j * strides[1] + b * dilation_rate[1] - left
                            if 0 <= row < oh_ and 0 <= col < ow_:
                                for f in range(nf):
                                    yield (n, i, j, c), (a, b, f, c), (n, row, col, f)


def conv2d_transpose_loops(x, kernel, bias=None, strides=(1, 1), padding="valid", output_padding=None,
                           dilation_rate=(1, 1)):
    """Every input cell scatters the kernel, scaled by its value, onto the output:

        y[n, i*sh + a*dh - top, j*sw + b*dw - left, f] += x[n, i, j, c] * kernel[a, b, f, c],   then + bias[f]

    Output size and (top, left) as in ``ops.conv_transpose`` (Keras's formula)."""
    (oh_, ow_), _ = conv_transpose_geometry(x.shape[1:3], kernel.shape[:2], strides, padding, output_padding,
                                            dilation_rate)
    y = backend.xp.zeros((x.shape[0], oh_, ow_, kernel.shape[2]), dtype=x.dtype)
    for x_at, k_at, y_at in _scatter_terms(x, kernel, strides, padding, output_padding, dilation_rate):
        y[y_at] += x[x_at] * kernel[k_at]
    if bias is not None:
        y += bias
    return y


def conv2d_transpose_backward_loops(dy, x, kernel, strides=(1, 1), padding="valid", output_padding=None,
                                    dilation_rate=(1, 1)):
    """(dx, dkernel, dbias) of ``conv2d_transpose_loops``: each term x * kernel added to y sends
    dy * kernel back to the input cell and dy * x to the kernel weight."""
    dx = backend.xp.zeros_like(x)
    dkernel = backend.xp.zeros_like(kernel)
    for x_at, k_at, y_at in _scatter_terms(x, kernel, strides, padding, output_padding, dilation_rate):
        dx[x_at] += dy[y_at] * kernel[k_at]
        dkernel[k_at] += dy[y_at] * x[x_at]
    return dx, dkernel, dy.sum(axis=(0, 1, 2))
