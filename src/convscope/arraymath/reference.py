"""Plain-loop definitions of convolution and pooling: slow, obvious, and the lessons' text.

Every loop here says in code what ``ops.conv`` and ``ops.pool`` compute with
strided views and matrix products; the tests hold the fast versions to these.
Arguments as in Keras: ``strides``, ``dilation_rate``, ``pool_size`` are pairs,
``padding`` is "valid" or "same" (the odd extra cell at the bottom / right).

Shapes: x (N, H, W, C); kernel (KH, KW, C // groups, F); y (N, OH, OW, F).
"""

from __future__ import annotations

from .. import backend
from .shapes import output_hw, paddings_2d


def _padded(x, pads, value=0.0):
    (top, bottom), (left, right) = pads
    xp = backend.xp
    out = xp.full((x.shape[0], x.shape[1] + top + bottom, x.shape[2] + left + right, x.shape[3]), value, x.dtype)
    out[:, top : top + x.shape[1], left : left + x.shape[2], :] = x
    return out


def conv2d_loops(x, kernel, bias=None, strides=(1, 1), padding="valid", dilation_rate=(1, 1), groups=1):
    """y[n, oh, ow, f] = bias[f] + sum_{i, j, c} x_pad[n, oh*sh + i*dh, ow*sw + j*dw, g*Cg + c] * kernel[i, j, c, f],
    where g = f // (F // groups) is the group filter f belongs to and Cg = C // groups."""
    kh, kw, cg, nf = kernel.shape
    pads = paddings_2d(x.shape[1:3], (kh, kw), strides, padding, dilation_rate)
    oh_, ow_ = output_hw(x.shape[1:3], (kh, kw), strides, padding, dilation_rate)
    xp_ = _padded(x, pads)
    fg = nf // groups
    y = backend.xp.zeros((x.shape[0], oh_, ow_, nf), dtype=x.dtype)
    for n in range(x.shape[0]):
        for oh in range(oh_):
            for ow in range(ow_):
                for f in range(nf):
                    g = f // fg
                    total = 0.0 if bias is None else bias[f]
                    for i in range(kh):
                        for j in range(kw):
                            for c in range(cg):
                                row = oh * strides[0] + i * dilation_rate[0]
                                col = ow * strides[1] + j * dilation_rate[1]
                                total += xp_[n, row, col, g * cg + c] * kernel[i, j, c, f]
                    y[n, oh, ow, f] = total
    return y


def conv2d_backward_loops(dy, x, kernel, strides=(1, 1), padding="valid", dilation_rate=(1, 1), groups=1):
    """(dx, dkernel, dbias) of ``conv2d_loops``, by the chain rule applied to every product it summed:
    each term x_pad[n, row, col, c] * kernel[i, j, c, f] sends dy[n, oh, ow, f] * kernel[i, j, c, f]
    to the input cell and dy[n, oh, ow, f] * x_pad[n, row, col, c] to the kernel weight."""
    kh, kw, cg, nf = kernel.shape
    pads = paddings_2d(x.shape[1:3], (kh, kw), strides, padding, dilation_rate)
    xp_ = _padded(x, pads)
    dx_pad = backend.xp.zeros_like(xp_)
    dkernel = backend.xp.zeros_like(kernel)
    dbias = dy.sum(axis=(0, 1, 2))
    fg = nf // groups
    for n in range(dy.shape[0]):
        for oh in range(dy.shape[1]):
            for ow in range(dy.shape[2]):
                for f in range(nf):
                    g = f // fg
                    for i in range(kh):
                        for j in range(kw):
                            for c in range(cg):
                                row = oh * strides[0] + i * dilation_rate[0]
                                col = ow * strides[1] + j * dilation_rate[1]
                                dkernel[i, j, c, f] += xp_[n, row, col, g * cg + c] * dy[n, oh, ow, f]
                                dx_pad[n, row, col, g * cg + c] += kernel[i, j, c, f] * dy[n, oh, ow, f]
    (top, _), (left, _) = pads
    dx = dx_pad[:, top : top + x.shape[1], left : left + x.shape[2], :]
    return dx, dkernel, dbias


def _pool_windows(x, pool_size, strides, padding):
    """Yield (n, oh, ow, c, cells): each window cell as (row, col) in the unpadded input, or None for padding."""
    pads = paddings_2d(x.shape[1:3], pool_size, strides, padding)
    oh_, ow_ = output_hw(x.shape[1:3], pool_size, strides, padding)
    (top, _), (left, _) = pads
    for n in range(x.shape[0]):
        for oh in range(oh_):
            for ow in range(ow_):
                for c in range(x.shape[3]):
                    cells = []
                    for i in range(pool_size[0]):
                        for j in range(pool_size[1]):
                            row = oh * strides[0] + i - top
                            col = ow * strides[1] + j - left
                            inside = 0 <= row < x.shape[1] and 0 <= col < x.shape[2]
                            cells.append((row, col) if inside else None)
                    yield n, oh, ow, c, cells


def max_pool2d_loops(x, pool_size=(2, 2), strides=(2, 2), padding="valid"):
    """y[n, oh, ow, c] = max of the window's real cells (padding never wins)."""
    oh_, ow_ = output_hw(x.shape[1:3], pool_size, strides, padding)
    y = backend.xp.zeros((x.shape[0], oh_, ow_, x.shape[3]), dtype=x.dtype)
    for n, oh, ow, c, cells in _pool_windows(x, pool_size, strides, padding):
        y[n, oh, ow, c] = max(x[n, r, q, c] for r, q in (cell for cell in cells if cell))
    return y


def max_pool2d_backward_loops(dy, x, pool_size=(2, 2), strides=(2, 2), padding="valid"):
    """dx: each window's dy goes to its FIRST maximum (row-major in the window)."""
    dx = backend.xp.zeros_like(x)
    for n, oh, ow, c, cells in _pool_windows(x, pool_size, strides, padding):
        real = [cell for cell in cells if cell]
        best = real[0]
        for r, q in real[1:]:
            if x[n, r, q, c] > x[n, best[0], best[1], c]:
                best = (r, q)
        dx[n, best[0], best[1], c] += dy[n, oh, ow, c]
    return dx


def avg_pool2d_loops(x, pool_size=(2, 2), strides=(2, 2), padding="valid"):
    """y[n, oh, ow, c] = mean of the window's real cells (padded cells not counted)."""
    oh_, ow_ = output_hw(x.shape[1:3], pool_size, strides, padding)
    y = backend.xp.zeros((x.shape[0], oh_, ow_, x.shape[3]), dtype=x.dtype)
    for n, oh, ow, c, cells in _pool_windows(x, pool_size, strides, padding):
        real = [cell for cell in cells if cell]
        y[n, oh, ow, c] = sum(x[n, r, q, c] for r, q in real) / len(real)
    return y


def avg_pool2d_backward_loops(dy, x, pool_size=(2, 2), strides=(2, 2), padding="valid"):
    """dx: each window's dy split evenly over its real cells."""
    dx = backend.xp.zeros_like(x)
    for n, oh, ow, c, cells in _pool_windows(x, pool_size, strides, padding):
        real = [cell for cell in cells if cell]
        for r, q in real:
            dx[n, r, q, c] += dy[n, oh, ow, c] / len(real)
    return dx


# -- Single-channel 2-D operations, for the lessons ---------------------------------------------------
# These act on the LAST TWO axes (rows, columns). Any leading axes are broadcast against each other, so
# one call handles every (sample, channel, filter) pair at once while the loops, the definition, run
# over the image axes only. A (N, H, W, C) map becomes such a stack with ``x.transpose(0, 3, 1, 2)``.


def correlate2d_loops(image, kernel):
    """Valid cross-correlation, what a Conv2D layer computes for one channel and one filter:

        out[..., i, j] = sum_{p, q} image[..., i + p, j + q] * kernel[..., p, q]

    The kernel slides over the image without being flipped. Output (..., H - KH + 1, W - KW + 1).
    """
    xp = backend.xp
    h, w = image.shape[-2:]
    kh, kw = kernel.shape[-2:]
    lead = xp.broadcast_shapes(image.shape[:-2], kernel.shape[:-2])
    out = xp.zeros((*lead, h - kh + 1, w - kw + 1), dtype=xp.result_type(image, kernel))
    for i in range(h - kh + 1):
        for j in range(w - kw + 1):
            for p in range(kh):
                for q in range(kw):
                    out[..., i, j] += image[..., i + p, j + q] * kernel[..., p, q]
    return out


def convolve2d_loops(image, kernel):
    """Valid convolution as the textbooks (and ``scipy.signal.convolve2d``) define it:

        (image * kernel)[m, n] = sum_{p, q} image[m - p, n - q] * kernel[p, q]

    kept where the kernel lies wholly inside the image, i.e. out[..., i, j] = (image * kernel)[i + KH - 1, j + KW - 1].
    The index runs backwards through the image: the kernel is flipped, unlike ``correlate2d_loops``.
    """
    xp = backend.xp
    h, w = image.shape[-2:]
    kh, kw = kernel.shape[-2:]
    lead = xp.broadcast_shapes(image.shape[:-2], kernel.shape[:-2])
    out = xp.zeros((*lead, h - kh + 1, w - kw + 1), dtype=xp.result_type(image, kernel))
    for i in range(h - kh + 1):
        for j in range(w - kw + 1):
            for p in range(kh):
                for q in range(kw):
                    out[..., i, j] += image[..., i + kh - 1 - p, j + kw - 1 - q] * kernel[..., p, q]
    return out


def full_convolve2d_loops(image, kernel):
    """Full convolution: (image * kernel)[m, n] = sum_{p, q} image[m - p, n - q] * kernel[p, q] wherever any
    term exists, output (..., H + KH - 1, W + KW - 1). Written the other way round: every image cell adds
    kernel * its value, with the kernel's corner placed at that cell."""
    xp = backend.xp
    h, w = image.shape[-2:]
    kh, kw = kernel.shape[-2:]
    lead = xp.broadcast_shapes(image.shape[:-2], kernel.shape[:-2])
    out = xp.zeros((*lead, h + kh - 1, w + kw - 1), dtype=xp.result_type(image, kernel))
    for i in range(h):
        for j in range(w):
            for p in range(kh):
                for q in range(kw):
                    out[..., i + p, j + q] += image[..., i, j] * kernel[..., p, q]
    return out


def rotate180(kernel):
    """The kernel turned by 180 degrees in its last two axes: rotate180(k)[..., p, q] = k[..., KH-1-p, KW-1-q].
    Correlating with rotate180(k) is convolving with k."""
    return kernel[..., ::-1, ::-1]


def dilate2d(image, strides):
    """``strides - 1`` zeros between neighbouring cells of the last two axes: out[..., i*sh, j*sw] = image[..., i, j].
    A strided layer's upstream gradient, spread back onto the grid of window positions."""
    h, w = image.shape[-2:]
    sh, sw = strides
    out = backend.xp.zeros((*image.shape[:-2], (h - 1) * sh + 1, (w - 1) * sw + 1), dtype=image.dtype)
    out[..., ::sh, ::sw] = image
    return out


# -- The other layers' definitions, element by element ----------------------------------------------------


def dense_loops(x, kernel, bias=None):
    """y[n, ..., u] = bias[u] + sum_i x[n, ..., i] * kernel[i, u]: every unit a weighted sum of every feature."""
    xp = backend.xp
    lead, features, units = x.shape[:-1], kernel.shape[0], kernel.shape[1]
    y = xp.zeros((*lead, units), dtype=x.dtype)
    for index in xp.ndindex(*lead):
        for u in range(units):
            total = 0.0 if bias is None else bias[u]
            for i in range(features):
                total += x[index + (i,)] * kernel[i, u]
            y[index + (u,)] = total
    return y


def global_pool2d_loops(x, kind="average"):
    """y[n, c] = mean (or max) over every h, w of x[n, h, w, c]."""
    n_, h_, w_, c_ = x.shape
    y = backend.xp.zeros((n_, c_), dtype=x.dtype)
    for n in range(n_):
        for c in range(c_):
            values = [x[n, h, w, c] for h in range(h_) for w in range(w_)]
            y[n, c] = sum(values) / len(values) if kind == "average" else max(values)
    return y


def batch_normalization_loops(x, gamma, beta, mean, variance, epsilon=1e-3):
    """Inference: y[..., c] = gamma[c] * (x[..., c] - mean[c]) / sqrt(variance[c] + epsilon) + beta[c]."""
    y = backend.xp.zeros_like(x)
    for index in backend.xp.ndindex(*x.shape):
        c = index[-1]
        y[index] = gamma[c] * (x[index] - mean[c]) / (variance[c] + epsilon) ** 0.5 + beta[c]
    return y


def rescaling_loops(x, scale, offset=0.0):
    """y[..., c] = x[..., c] * scale[c] + offset[c] (a number for every channel, or one number for all)."""
    xp = backend.xp
    scale, offset = xp.broadcast_to(xp.asarray(scale, float), x.shape[-1:]), xp.broadcast_to(xp.asarray(offset, float), x.shape[-1:])
    y = xp.zeros(x.shape, dtype=x.dtype if x.dtype.kind == "f" else backend.floatx())
    for index in xp.ndindex(*x.shape):
        y[index] = x[index] * scale[index[-1]] + offset[index[-1]]
    return y
