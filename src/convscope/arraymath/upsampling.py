"""2-D upsampling by integer factors, nearest and bilinear, forward and backward (NHWC).

x (N, H, W, C) -> y (N, H*sh, W*sw, C) for ``size = (sh, sw)``.

* nearest:  y[n, i, j, c] = x[n, i // sh, j // sw, c] (rows and columns repeated);
  backward: dx[n, p, q, c] = sum of dy over the sh*sw cells copied from x[n, p, q, c].
* bilinear (Keras / TensorFlow ``resize``, half-pixel centres, antialias off, edges clamped):
  for output row i the source coordinate is ``u = (i + 0.5) * (H / (H*sh)) - 0.5``, between
  rows ``max(floor(u), 0)`` and ``min(ceil(u), H - 1)`` with weights ``1 - t`` and ``t``,
  ``t = u - floor(u)``; the same along columns. Each axis is a linear map, a matrix
  ``A`` of shape (H*sh, H) whose rows hold those two weights, so
      y = A_h · x · A_w^T   (applied to every n, c)
  and the backward is the adjoint: dx = A_h^T · dy · A_w. The matrices are dense (rows have two
  non-zeros): cost O(H*sh * H) per column, negligible for the image sizes of a CNN.

The definitions, pixel by pixel, are ``reference_resample.upsample2d_loops`` and
``upsample2d_backward_loops``.

Example:
    >>> upsample2d_nearest(np.arange(4.0).reshape(1, 2, 2, 1), (2, 2))[0, :, :, 0]
    array([[0., 0., 1., 1.],
           [0., 0., 1., 1.],
           [2., 2., 3., 3.],
           [2., 2., 3., 3.]])
"""

from __future__ import annotations

from .. import backend

INTERPOLATIONS = ("nearest", "bilinear")


def upsample2d_nearest(x, size):
    """Repeat each row ``size[0]`` times and each column ``size[1]`` times."""
    return x.repeat(size[0], axis=1).repeat(size[1], axis=2)


def upsample2d_nearest_backward(dy, size):
    """dx: the sum of dy over each sh x sw block (the cells that copied one input cell)."""
    n, oh, ow, c = dy.shape
    return dy.reshape(n, oh // size[0], size[0], ow // size[1], size[1], c).sum(axis=(2, 4))


def bilinear_matrix(n_in: int, factor: int, dtype):
    """The (n_in * factor, n_in) matrix of 1-D half-pixel linear interpolation, computed in ``dtype``
    as TensorFlow does (scale = n_in / n_out in that precision), so float32 weights round alike."""
    xp = backend.xp
    n_out = n_in * factor
    scale = xp.asarray(n_in, dtype) / xp.asarray(n_out, dtype)
    u = (xp.arange(n_out, dtype=dtype) + xp.asarray(0.5, dtype)) * scale - xp.asarray(0.5, dtype)
    floor = xp.floor(u)
    t = u - floor
    lower = xp.maximum(floor, 0).astype(xp.intp)
    upper = xp.minimum(xp.ceil(u), n_in - 1).astype(xp.intp)
    rows = xp.arange(n_out)
    matrix = xp.zeros((n_out, n_in), dtype=dtype)
    # lower == upper at the clamped edges and at integer u: both weights land on one cell.
    xp.add.at(matrix, (rows, lower), 1 - t)
    xp.add.at(matrix, (rows, upper), t)
    return matrix


def upsample2d_bilinear(x, matrix_h, matrix_w):
    """y = A_h · x · A_w^T for every image and channel; ``matrix_*`` from ``bilinear_matrix``."""
    n, h, w, c = x.shape
    oh, ow = matrix_h.shape[0], matrix_w.shape[0]
    rows = (matrix_h @ x.reshape(n, h, w * c)).reshape(n * oh, w, c)
    return (matrix_w @ rows).reshape(n, oh, ow, c)


def upsample2d_bilinear_backward(dy, matrix_h, matrix_w):
    """dx = A_h^T · dy · A_w: each output cell's gradient scattered back with its interpolation weights."""
    n, oh, ow, c = dy.shape
    h, w = matrix_h.shape[1], matrix_w.shape[1]
    cols = (matrix_w.T @ dy.reshape(n * oh, ow, c)).reshape(n, oh, w * c)
    return (matrix_h.T @ cols).reshape(n, h, w, c)


def upsample2d(x, size, interpolation="nearest"):
    """The forward pass in one call (for tests and lessons); layers keep the matrices from ``build``."""
    if interpolation == "nearest":
        return upsample2d_nearest(x, size)
    return upsample2d_bilinear(x, bilinear_matrix(x.shape[1], size[0], x.dtype),
                               bilinear_matrix(x.shape[2], size[1], x.dtype))


def upsample2d_backward(dy, x_shape, size, interpolation="nearest"):
    """dL/dx of ``upsample2d`` for an input of shape ``x_shape``."""
    if interpolation == "nearest":
        return upsample2d_nearest_backward(dy, size)
    return upsample2d_bilinear_backward(dy, bilinear_matrix(x_shape[1], size[0], dy.dtype),
                                        bilinear_matrix(x_shape[2], size[1], dy.dtype))
