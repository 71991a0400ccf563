"""Zero padding, cropping and axis permutation of NHWC / (N, ...) arrays, forward and backward, vectorized.

Padding and cropping are each other's adjoint: the gradient of padding is the cropping of dy by the same
amounts, and the gradient of cropping is dy padded back with zeros. Every result is a new C-contiguous
array (``ndarray.copy`` is row-major), so the layers after these see a plain layout.

    zero_pad2d: (N, H, W, C) -> (N, top + H + bottom, left + W + right, C), the new cells 0
    crop2d:     (N, H, W, C) -> (N, H - top - bottom, W - left - right, C)
    permute:    y = transpose(x, (0, *dims)) with ``dims`` 1-based over the non-batch axes
                (as Keras's Permute); its gradient transposes dy by the inverse permutation.

Example:
    >>> zero_pad2d(x, ((1, 2), (0, 1))).shape        # x (2, 5, 5, 3)
    (2, 8, 6, 3)
"""

from __future__ import annotations

from .. import backend


def zero_pad2d(x, padding):
    """x surrounded by zeros; ``padding`` is ((top, bottom), (left, right))."""
    (top, bottom), (left, right) = padding
    n, h, w, c = x.shape
    y = backend.xp.zeros((n, top + h + bottom, left + w + right, c), dtype=x.dtype)
    y[:, top : top + h, left : left + w, :] = x
    return y


def crop2d(x, cropping):
    """x without ``cropping`` = ((top, bottom), (left, right)) rows and columns at its edges."""
    (top, bottom), (left, right) = cropping
    h, w = x.shape[1:3]
    return x[:, top : h - bottom, left : w - right, :].copy()


def zero_pad2d_backward(dy, padding):
    return crop2d(dy, padding)


def crop2d_backward(dy, cropping):
    return zero_pad2d(dy, cropping)


def permute(x, dims):
    """Output axis i + 1 is input axis dims[i]; the batch axis stays first."""
    return backend.xp.transpose(x, (0, *dims)).copy()


def permute_backward(dy, dims):
    inverse = [0] * (len(dims) + 1)
    for out_axis, in_axis in enumerate((0, *dims)):
        inverse[in_axis] = out_axis
    return backend.xp.transpose(dy, inverse).copy()
