"""im2col and col2im in NHWC: sliding windows as one matrix, and back.

``im2col`` turns every window of a padded input into a row, so that a
convolution becomes a single matrix product:

    x (N, H, W, C), window (KH, KW), stride (sh, sw), dilation (dh, dw), pads
    -> cols (N, OH, OW, KH, KW, C)        # reshape to (N*OH*OW, KH*KW*C) for the product

with ``OH = (H + top + bottom - (dh*(KH-1) + 1)) // sh + 1`` (likewise OW). The
windows are a strided *view* of the padded input (no Python loop over pixels);
``im2col`` copies it once into a contiguous block.

``col2im`` is its adjoint: it adds every window's cells back to where they came
from (overlapping windows add up), which is how the input gradient of a
convolution or pooling is assembled. Its loop runs over the KH*KW positions of
the window, never over pixels.
"""

from __future__ import annotations

from numpy.lib.stride_tricks import as_strided

from .. import backend
from . import jit


def pad_nhwc(x, pads, value=0.0):
    """``x`` (N, H, W, C) padded by ``pads = ((top, bottom), (left, right))`` with ``value``."""
    (top, bottom), (left, right) = pads
    if top == bottom == left == right == 0:
        return x
    return backend.xp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def window_view(x_padded, window, strides, dilation, out_hw):
    """A read-only strided view (N, OH, OW, KH, KW, C) of the windows of a padded input."""
    sn, sh, sw, sc = x_padded.strides
    n, _, _, c = x_padded.shape
    return as_strided(
        x_padded,
        shape=(n, out_hw[0], out_hw[1], window[0], window[1], c),
        strides=(sn, sh * strides[0], sw * strides[1], sh * dilation[0], sw * dilation[1], sc),
        writeable=False,
    )


def padded_hw(hw, pads):
    return hw[0] + pads[0][0] + pads[0][1], hw[1] + pads[1][0] + pads[1][1]


def out_hw_from_pads(hw, window, strides, dilation, pads):
    """Output size for explicit pads: ``(H_padded - (d*(K-1)+1)) // s + 1`` per axis."""
    hp, wp = padded_hw(hw, pads)
    return (
        (hp - dilation[0] * (window[0] - 1) - 1) // strides[0] + 1,
        (wp - dilation[1] * (window[1] - 1) - 1) // strides[1] + 1,
    )


def im2col(x, window, strides, dilation, pads, pad_value=0.0):
    """The windows of ``x`` (N, H, W, C) as a contiguous array (N, OH, OW, KH, KW, C)."""
    out_hw = out_hw_from_pads(x.shape[1:3], window, strides, dilation, pads)
    x_padded = pad_nhwc(x, pads, pad_value)
    if jit.enabled():
        cols = backend.xp.empty((x.shape[0], *out_hw, *window, x.shape[3]), dtype=x.dtype)
        jit.im2col(backend.xp.ascontiguousarray(x_padded), cols, tuple(strides), tuple(dilation))
        return cols
    return backend.xp.ascontiguousarray(window_view(x_padded, window, strides, dilation, out_hw))


def window_cells(x_padded, window, strides, dilation, out_hw):
    """The KH*KW views (N, OH, OW, C) of a padded input, one per window position (i, j), row-major.

    View k = i*KW + j holds, for every output position, the input cell at offset
    (i*dh, j*dw) inside its window. Looping over these views (never over pixels)
    is how pooling, col2im and any window-wise op stay vectorized without copying.
    """
    oh, ow = out_hw
    return [
        x_padded[:, i * dilation[0] : i * dilation[0] + strides[0] * oh : strides[0],
                 j * dilation[1] : j * dilation[1] + strides[1] * ow : strides[1], :]
        for i in range(window[0])
        for j in range(window[1])
    ]


def col2im(dcols, input_shape, window, strides, dilation, pads):
    """Add window gradients ``dcols`` (N, OH, OW, KH, KW, C) back onto an input of ``input_shape``.

    Returns dx (N, H, W, C): each input cell receives the sum over every window
    (and every position in it) that saw the cell; padding cells are dropped.
    """
    n, h, w, c = input_shape
    dx = backend.xp.zeros((n, *padded_hw((h, w), pads), c), dtype=dcols.dtype)
    if jit.enabled():
        jit.col2im(backend.xp.ascontiguousarray(dcols), dx, tuple(strides), tuple(dilation))
        return crop_padding(dx, pads, (h, w))
    cells = window_cells(dx, window, strides, dilation, dcols.shape[1:3])
    for k, cell in enumerate(cells):
        cell += dcols[:, :, :, k // window[1], k % window[1], :]
    return crop_padding(dx, pads, (h, w))


def crop_padding(x_padded, pads, hw):
    """The unpadded (N, H, W, C) part of a padded array (a view)."""
    (top, _), (left, _) = pads
    return x_padded[:, top : top + hw[0], left : left + hw[1], :]
