"""2-D convolution (Keras's, i.e. cross-correlation) in NHWC, forward and backward, vectorized.

Shapes:
    x      (N, H, W, C)
    kernel (KH, KW, C // groups, F)          as Keras stores it
    bias   (F,) or None
    y      (N, OH, OW, F)

Math (for groups = 1; with groups, input channels and filters are split into
``groups`` contiguous blocks and block g of filters sees only block g of channels):

    y[n, oh, ow, f] = bias[f] + sum_{i, j, c} x_pad[n, oh*sh + i*dh, ow*sw + j*dw, c] * kernel[i, j, c, f]

Output size per axis: ``OH = floor((H + pad_total - (dh*(KH-1)+1)) / sh) + 1``; with
Keras's "same" padding this is ``ceil(H / sh)`` (see ``ops.shapes``).

Backward, given dy = dL/dy:
    dkernel = correlation of the (padded) input with dy:  cols^T @ dy   (one matrix product)
    dbias   = dy summed over n, oh, ow
    dx      = col2im(dy @ kernel^T): every output's gradient sent back, through the
              kernel, to the input cells its window saw. For stride 1 this equals the
              full convolution of dy with the kernel rotated by 180 degrees.

Example:
    >>> x = np.random.rand(2, 28, 28, 1).astype("float32")
    >>> k = np.random.rand(3, 3, 1, 32).astype("float32")
    >>> conv2d(x, k, padding="valid").shape
    (2, 26, 26, 32)
"""

from __future__ import annotations

from .. import backend
from .im2col import col2im, im2col, out_hw_from_pads
from .shapes import normalize_padding, normalize_tuple, paddings_2d


def _grouped(cols2d, groups):
    """(M, KH*KW, C) -> (G, M, KH*KW*Cg): each group's columns as its own matrix."""
    m, kk, c = cols2d.shape
    return cols2d.reshape(m, kk, groups, c // groups).transpose(2, 0, 1, 3).reshape(groups, m, -1)


def _ungrouped(dcols_g, kk, c):
    """(G, M, KH*KW*Cg) -> (M, KH*KW, C): the inverse of ``_grouped``."""
    g, m, _ = dcols_g.shape
    return dcols_g.reshape(g, m, kk, c // g).transpose(1, 2, 0, 3).reshape(m, kk, c)


def _kernel_grouped(kernel, groups):
    """(KH, KW, Cg, F) -> (G, KH*KW*Cg, F // G)."""
    kh, kw, cg, f = kernel.shape
    return kernel.reshape(kh * kw * cg, groups, f // groups).transpose(1, 0, 2)


BLOCK_BYTES = 24 * 2**20
"""The im2col matrix of one block of the batch stays under this size. Larger ones fall out of the CPU's
last-level cache and, past 32 MB (the largest block glibc keeps for reuse), are mapped fresh from the
OS and zero-filled on every step: measured, a residual network at 32x32x16 trained 1.5 times faster in
blocks than in one piece. Each block's products are the same as the whole batch's, row by row."""


def batch_blocks(n: int, bytes_per_sample: int) -> list:
    """Slices of ``range(n)`` whose im2col matrices stay under ``BLOCK_BYTES`` (at least one sample each)."""
    step = max(1, BLOCK_BYTES // max(bytes_per_sample, 1))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def conv2d_forward(x, kernel, bias, strides, pads, dilation, groups=1):
    """Convolve with explicit ``pads = ((top, bottom), (left, right))``.

    Returns ``(y, cols)``: the output (N, OH, OW, F) and what ``conv2d_backward`` reuses, the im2col
    matrices (n, OH, OW, KH, KW, C) of the batch's blocks (``batch_blocks``), as ``[(slice, cols), ...]``.
    """
    kh, kw, _, f = kernel.shape
    n = x.shape[0]
    out_hw = out_hw_from_pads(x.shape[1:3], (kh, kw), strides, dilation, pads)
    blocks = batch_blocks(n, out_hw[0] * out_hw[1] * kh * kw * x.shape[3] * x.dtype.itemsize)
    if len(blocks) == 1:
        y, cols = _forward_block(x, kernel, bias, strides, pads, dilation, groups)
        return y, [(blocks[0], cols)]
    y = backend.xp.empty((n, *out_hw, f), dtype=backend.xp.result_type(x, kernel))
    saved = []
    for block in blocks:
        y[block], cols = _forward_block(x[block], kernel, bias, strides, pads, dilation, groups)
        saved.append((block, cols))
    return y, saved


def _forward_block(x, kernel, bias, strides, pads, dilation, groups):
    kh, kw, _, f = kernel.shape
    cols = im2col(x, (kh, kw), strides, dilation, pads)
    n, oh, ow = cols.shape[:3]
    m = n * oh * ow
    if groups == 1:
        y = cols.reshape(m, -1) @ kernel.reshape(-1, f)
    else:
        y_g = _grouped(cols.reshape(m, kh * kw, -1), groups) @ _kernel_grouped(kernel, groups)
        y = y_g.transpose(1, 0, 2).reshape(m, f)
    if bias is not None:
        y += bias
    return y.reshape(n, oh, ow, f), cols


def column_sums(a):
    """a.sum(axis=0) of a tall (M, F) matrix, as ones(M) @ a: one BLAS call, several times faster."""
    return backend.xp.ones(a.shape[0], dtype=a.dtype) @ a


def conv2d_backward(dy, cols, x_shape, kernel, strides, pads, dilation, groups=1, need_dx=True):
    """Gradients of ``conv2d_forward``: returns ``(dx, dkernel, dbias)``, block by block of the batch.

    ``dy`` (N, OH, OW, F); ``cols`` from the forward pass; ``dx`` is None when
    ``need_dx`` is False (the first layer needs no input gradient).
    """
    if len(cols) == 1:
        return _backward_block(dy, cols[0][1], x_shape, kernel, strides, pads, dilation, groups, need_dx)
    dx = backend.xp.empty(x_shape, dtype=dy.dtype) if need_dx else None
    dkernel = dbias = None
    for block, block_cols in cols:
        part = (block.stop - block.start, *x_shape[1:])
        dx_b, dk, db = _backward_block(dy[block], block_cols, part, kernel, strides, pads, dilation, groups, need_dx)
        if need_dx:
            dx[block] = dx_b
        dkernel, dbias = (dk, db) if dkernel is None else (dkernel + dk, dbias + db)
    return dx, dkernel, dbias


def _backward_block(dy, cols, x_shape, kernel, strides, pads, dilation, groups, need_dx):
    kh, kw, cg, f = kernel.shape
    n, oh, ow = dy.shape[:3]
    m, kk, c = n * oh * ow, kh * kw, x_shape[3]
    dy2 = dy.reshape(m, f)
    dbias = column_sums(dy2)
    if groups == 1:
        # dy^T @ cols, then transposed: the same numbers as cols^T @ dy, but BLAS is several
        # times faster when the long summed axis meets the small output this way round.
        dkernel = (dy2.T @ cols.reshape(m, -1)).T.reshape(kernel.shape)
        dcols = (dy2 @ kernel.reshape(-1, f).T) if need_dx else None
    else:
        dy_g = dy2.reshape(m, groups, f // groups).transpose(1, 0, 2)
        cols_g = _grouped(cols.reshape(m, kk, c), groups)
        dk_g = cols_g.transpose(0, 2, 1) @ dy_g  # (G, KH*KW*Cg, Fg)
        dkernel = dk_g.transpose(1, 0, 2).reshape(kernel.shape)
        dcols = _ungrouped(dy_g @ _kernel_grouped(kernel, groups).transpose(0, 2, 1), kk, c) if need_dx else None
    dx = None
    if need_dx:
        dx = col2im(dcols.reshape(n, oh, ow, kh, kw, c), x_shape, (kh, kw), strides, dilation, pads)
    return dx, dkernel, dbias


def conv2d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1):
    """Keras-style convenience: ``padding`` is "valid" or "same"; ints or pairs for the rest."""
    strides = normalize_tuple(strides, 2, "strides", "conv2d")
    dilation = normalize_tuple(dilation_rate, 2, "dilation_rate", "conv2d")
    padding = normalize_padding(padding, "conv2d")
    x, kernel = backend.xp.asarray(x), backend.xp.asarray(kernel)
    pads = paddings_2d(x.shape[1:3], kernel.shape[:2], strides, padding, dilation)
    return conv2d_forward(x, kernel, bias, strides, pads, dilation, groups)[0]
