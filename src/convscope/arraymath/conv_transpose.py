"""2-D transposed convolution (Keras's ``Conv2DTranspose``) in NHWC: the adjoint of a convolution.

Shapes:
    x      (N, H, W, C)
    kernel (KH, KW, F, C)           as Keras stores it: (kh, kw, filters, in_channels)
    bias   (F,) or None
    y      (N, OH, OW, F)

Math: every input cell scatters a copy of the kernel, scaled by its value, onto the
output, the copies ``s`` cells apart (``k_eff = d*(K-1) + 1`` cells wide each):

    y[n, i*sh + a*dh - top, j*sw + b*dw - left, f] += x[n, i, j, c] * kernel[a, b, f, c]

for every term that lands inside the output, plus bias[f]. This is exactly dL/dinput of
a Conv2D whose input has the size of y and whose output has the size of x, with kernel
(KH, KW, F, C) read as (kh, kw, in, out): the forward pass here is that conv's input
gradient, ``y = col2im(x @ kernel^T)``, and the backward pass is that conv's forward:

    cols    = im2col(dy)                    (N, H, W, KH, KW, F), the windows a conv of dy sees
    dx      = cols @ kernel                 a convolution of dy with the kernel
    dkernel = cols^T @ x                    a correlation of dy with x
    dbias   = dy summed over n, oh, ow

Output length per axis (Keras's ``compute_conv_transpose_output_shape``), n input cells:

    "valid": (n - 1)*s + k_eff + output_padding, with output_padding None -> max(k_eff, s) - k_eff,
             i.e. (n - 1)*s + max(k_eff, s)
    "same":  n*s when output_padding is None, else (n - 1)*s + k_eff % 2 + output_padding

Padding (derived from TensorFlow's ``conv2d_transpose`` with that output shape, which pads
like the conv it is the gradient of, a conv from ``out`` cells to ``n`` cells): the
untrimmed scatter spans ``L = (n - 1)*s + k_eff`` cells; "valid" trims nothing at the top,
"same" trims ``top = max(0, L - out) // 2`` cells (the odd cell at the bottom, as Conv2D
pads). ``bottom = L - out - top`` cells are trimmed at the bottom; a negative ``bottom``
(``output_padding > 0`` with "valid", or a stride wider than the kernel) means the last
``-bottom`` output rows receive no term at all, only the bias. Always ``-s < bottom``, so
those rows never hold a whole window. Keras's JAX and PyTorch backends reach the same
cells by other routes; ``tests/test_ops_reference_conv_variants.py`` checks the equality.
(One case TensorFlow itself refuses: "same" with an even ``k_eff`` and ``output_padding=0``
gives ``out = (n - 1)*s``, which a "same" conv maps to n - 1 cells, not n; the JAX and
PyTorch backends compute it, with these same cells, and so does convscope.)

Example:
    >>> x = np.ones((1, 3, 3, 2), "float32")
    >>> conv2d_transpose(x, np.ones((3, 3, 4, 2), "float32"), strides=2, padding="same").shape
    (1, 6, 6, 4)
"""

from __future__ import annotations

from .. import backend
from .conv import column_sums
from .im2col import col2im, im2col
from .shapes import effective_kernel, normalize_padding, normalize_tuple


def conv_transpose_output_length(n: int, k: int, stride: int, padding: str, output_padding=None,
                                 dilation: int = 1) -> int:
    """Keras's output length of one axis of a transposed convolution (see the module docstring)."""
    k_eff = effective_kernel(k, dilation)
    if padding == "valid":
        extra = max(k_eff, stride) - k_eff if output_padding is None else output_padding
        return (n - 1) * stride + k_eff + extra
    if output_padding is None:
        return n * stride
    return (n - 1) * stride + k_eff % 2 + output_padding


def conv_transpose_padding(n: int, out: int, k: int, stride: int, padding: str, dilation: int = 1) -> tuple[int, int]:
    """``(top, bottom)`` cells trimmed from the untrimmed scatter of ``n`` cells to leave ``out``;
    ``bottom`` is negative when the output reaches past the scatter."""
    span = (n - 1) * stride + effective_kernel(k, dilation)
    top = 0 if padding == "valid" else max(span - out, 0) // 2
    return top, span - out - top


def conv_transpose_geometry(hw, kernel, strides, padding, output_padding=None, dilation=(1, 1)):
    """``((OH, OW), ((top, bottom), (left, right)))`` for an input of spatial size ``hw``."""
    output_padding = (None, None) if output_padding is None else output_padding
    out_hw = tuple(
        conv_transpose_output_length(n, k, s, padding, p, d)
        for n, k, s, p, d in zip(hw, kernel, strides, output_padding, dilation)
    )
    pads = tuple(
        conv_transpose_padding(n, o, k, s, padding, d) for n, o, k, s, d in zip(hw, out_hw, kernel, strides, dilation)
    )
    return out_hw, pads


def _frame(pads):
    """Pads for im2col / col2im on an (OH, OW) map: a negative bottom becomes 0. The frame is then
    at least as tall as the scatter, and since ``-bottom < s`` it holds exactly H windows."""
    return tuple((top, max(bottom, 0)) for top, bottom in pads)


def conv2d_transpose_forward(x, kernel, bias, strides, pads, dilation, out_hw):
    """y (N, OH, OW, F) for explicit ``pads`` and ``out_hw`` (from ``conv_transpose_geometry``)."""
    n, h, w, c = x.shape
    kh, kw, f, _ = kernel.shape
    dcols = x.reshape(-1, c) @ kernel.reshape(-1, c).T
    y = col2im(dcols.reshape(n, h, w, kh, kw, f), (n, *out_hw, f), (kh, kw), strides, dilation, _frame(pads))
    return backend.xp.ascontiguousarray(y) if bias is None else y + bias


def conv2d_transpose_backward(dy, x, kernel, strides, pads, dilation, need_dx=True):
    """Gradients of ``conv2d_transpose_forward``: ``(dx, dkernel, dbias)``; dx is None when ``need_dx`` is False."""
    n, h, w, c = x.shape
    kh, kw, f, _ = kernel.shape
    cols = im2col(dy, (kh, kw), strides, dilation, _frame(pads))
    if cols.shape[1:3] != (h, w):
        raise ValueError(
            f"conv2d_transpose_backward: dy of shape {dy.shape} with pads={pads} gives {cols.shape[1:3]} windows, "
            f"the input has {(h, w)}"
        )
    cols2, x2 = cols.reshape(n * h * w, -1), x.reshape(-1, c)
    # x^T @ cols, then transposed: the long summed axis meets the small output the BLAS-friendly way round.
    dkernel = (x2.T @ cols2).T.reshape(kernel.shape)
    dbias = column_sums(dy.reshape(-1, f))
    dx = (cols2 @ kernel.reshape(-1, c)).reshape(x.shape) if need_dx else None
    return dx, dkernel, dbias


def conv2d_transpose(x, kernel, bias=None, strides=1, padding="valid", output_padding=None, dilation_rate=1):
    """Keras-style convenience: ``padding`` "valid" or "same"; ints or pairs for the rest."""
    strides = normalize_tuple(strides, 2, "strides", "conv2d_transpose")
    dilation = normalize_tuple(dilation_rate, 2, "dilation_rate", "conv2d_transpose")
    padding = normalize_padding(padding, "conv2d_transpose")
    if output_padding is not None:
        output_padding = normalize_tuple(output_padding, 2, "output_padding", "conv2d_transpose", allow_zero=True)
    x, kernel = backend.xp.asarray(x), backend.xp.asarray(kernel)
    out_hw, pads = conv_transpose_geometry(x.shape[1:3], kernel.shape[:2], strides, padding, output_padding, dilation)
    return conv2d_transpose_forward(x, kernel, bias, strides, pads, dilation, out_hw)
