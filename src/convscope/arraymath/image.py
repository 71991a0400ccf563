"""Image-batch geometry for the augmentation layers: projective sampling, crops, resizes, colour shifts (NHWC).

Every map here is linear (or affine) in the image once its parameters are fixed, so each has a
backward that is its transpose: the same taps and weights, scattered instead of gathered.

**Projective sampling** (Keras's ``ops.image.affine_transform``). Each image n has 8 numbers
``t = (a0, a1, a2, b0, b1, b2, c0, c1)`` mapping *output* pixel (row i, column j) to the *input*
point it reads:

    k = c0 * j + c1 * i + 1,   col = (a0 * j + a1 * i + a2) / k,   row = (b0 * j + b1 * i + b2) / k.

* ``"bilinear"``: with r0 = floor(row), s = row - r0, c0' = floor(col), t = col - c0', the four taps
  (r0, c0') (r0, c0'+1) (r0+1, c0') (r0+1, c0'+1) weigh (1-s)(1-t), (1-s)t, s(1-t), st.
* ``"nearest"``: one tap at (rint(row), rint(col)) (ties to even, as Keras's torch backend).

A tap outside the image is folded back per axis by ``fill_mode`` (size n, index p):
``"reflect"`` (d c b a | a b c d | d c b a): p mod 2n, mirrored into [0, n); ``"wrap"`` (a b c d |
a b c d): p mod n; ``"nearest"`` (a a | a b c d | d d): p clamped; ``"constant"``: the tap reads
``fill_value``. So y = sum_taps w * x[tap] + fill_value * (weight of the taps outside), and
dx[tap] += w * dy.

**Resizing** (Keras's ``ops.image.resize``, antialias off). Per axis a matrix ``B`` (n_out, n_in):
bilinear with half-pixel centres, u = (i + 0.5) * n_in / n_out - 0.5, edges clamped; nearest reads
floor((i + 0.5) * n_in / n_out). A crop to the target aspect ratio keeps a centred window (B is zero
outside its columns); padding to it embeds the image in ``fill_value`` rows / columns, which
contribute fill_value * (1 - r_h r_w^T) with r the row sums of B. Then per channel

    y = B_h x B_w^T + fill_value * (1 - r_h r_w^T),      dx = B_h^T dy B_w.

**Colour**: contrast y = clip((x - m) f + m, lo, hi), m the mean over height and width per image and
channel; brightness y = clip(x + delta, lo, hi). Their backward passes go through where the clip did
not bite: with g = dy where lo <= y_unclipped <= hi (else 0), contrast dx = f g + (1 - f) mean_hw(g),
brightness dx = g.

The pixel-by-pixel definitions are in ``reference_image``; the tests hold this module to them.

Example:
    >>> x = np.arange(9.0).reshape(1, 3, 3, 1)
    >>> affine_transform(x, translation_transforms([[1.0, 0.0]]), "nearest", "constant", 0.0)[0, :, :, 0]
    array([[0., 0., 0.],
           [0., 1., 2.],
           [3., 4., 5.]])
"""

from __future__ import annotations

from .. import backend

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("bilinear", "nearest")


# -- transforms: the 8 numbers per image that the layers build -----------------------------------
def rotation_transforms(angles, height: int, width: int, dtype=None):
    """(N, 8) transforms rotating each image by ``angles`` (radians, counter-clockwise on screen for a
    positive angle) about its centre ((width - 1) / 2, (height - 1) / 2), as Keras's RandomRotation."""
    xp = backend.xp
    angles = xp.asarray(angles, dtype=dtype or backend.floatx())
    cos, sin = xp.cos(angles), xp.sin(angles)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    zeros = xp.zeros_like(angles)
    return xp.stack([cos, -sin, cx - cx * cos + cy * sin, sin, cos, cy - cx * sin - cy * cos, zeros, zeros], axis=1)


def zoom_transforms(zooms, height: int, width: int, dtype=None):
    """(N, 8) transforms scaling the sampling grid by ``zooms`` (N, 2) = (height zoom, width zoom) about the
    image centre: a zoom above 1 reads a larger window (zooms out), below 1 a smaller one (zooms in)."""
    xp = backend.xp
    zooms = xp.asarray(zooms, dtype=dtype or backend.floatx())
    zy, zx = zooms[:, 0], zooms[:, 1]
    zeros = xp.zeros_like(zy)
    return xp.stack([zx, zeros, (width - 1) / 2 * (1 - zx), zeros, zy, (height - 1) / 2 * (1 - zy), zeros, zeros],
                    axis=1)


def translation_transforms(shifts, dtype=None):
    """(N, 8) transforms moving each image by ``shifts`` (N, 2) = (down, right) pixels."""
    xp = backend.xp
    shifts = xp.asarray(shifts, dtype=dtype or backend.floatx())
    ones, zeros = xp.ones(len(shifts), shifts.dtype), xp.zeros(len(shifts), shifts.dtype)
    return xp.stack([ones, zeros, -shifts[:, 1], zeros, ones, -shifts[:, 0], zeros, zeros], axis=1)


# -- projective sampling ---------------------------------------------------------------------------
def fold_index(index, size: int, fill_mode: str):
    """(in-range index, inside) of integer tap positions along an axis of ``size`` cells."""
    xp = backend.xp
    if fill_mode == "reflect":
        folded = index % (2 * size)
        return xp.where(folded < size, folded, 2 * size - 1 - folded), None
    if fill_mode == "wrap":
        return index % size, None
    inside = (index >= 0) & (index < size) if fill_mode == "constant" else None
    return xp.clip(index, 0, size - 1), inside


def source_points(transforms, out_hw, dtype):
    """(rows, cols), each (N, out_h, out_w): the input point each output pixel reads."""
    xp = backend.xp
    t = xp.asarray(transforms, dtype=dtype)[:, :, None, None]
    i = xp.arange(out_hw[0], dtype=dtype)[:, None]
    j = xp.arange(out_hw[1], dtype=dtype)[None, :]
    k = t[:, 6] * j + t[:, 7] * i + 1
    return (t[:, 3] * j + t[:, 4] * i + t[:, 5]) / k, (t[:, 0] * j + t[:, 1] * i + t[:, 2]) / k


def sampling_taps(transforms, in_hw, out_hw, interpolation: str, fill_mode: str, dtype):
    """``(index, weight, outside)`` of the projective sampling: ``index`` (N, P, T) flat input pixels
    (row * W + col) and ``weight`` (N, P, T) of the T taps of each of the P = out_h * out_w output
    pixels (taps outside the image in constant mode: index 0, weight 0); ``outside`` (N, P) the weight
    those taps had (they read ``fill_value``), None for the other fill modes."""
    xp = backend.xp
    h, w = in_hw
    rows, cols = source_points(transforms, out_hw, dtype)
    n = rows.shape[0]
    if interpolation == "nearest":
        taps = [(xp.rint(rows), xp.rint(cols), xp.ones_like(rows))]
    else:
        r0, c0 = xp.floor(rows), xp.floor(cols)
        s, t = rows - r0, cols - c0
        taps = [(r0, c0, (1 - s) * (1 - t)), (r0, c0 + 1, (1 - s) * t), (r0 + 1, c0, s * (1 - t)),
                (r0 + 1, c0 + 1, s * t)]
    index, weight, lost = [], [], []
    for r, c, wt in taps:
        r, inside_r = fold_index(r.astype(xp.int64), h, fill_mode)
        c, inside_c = fold_index(c.astype(xp.int64), w, fill_mode)
        if inside_r is not None:
            inside = inside_r & inside_c
            lost.append(xp.where(inside, 0, wt))
            wt = xp.where(inside, wt, 0)
        index.append(r * w + c)
        weight.append(wt)
    shape = (n, out_hw[0] * out_hw[1], len(taps))
    outside = sum(lost).reshape(n, -1) if lost else None
    return xp.stack(index, axis=-1).reshape(shape), xp.stack(weight, axis=-1).reshape(shape), outside


def gather_taps(x, index, weight, outside, out_hw, fill_value: float):
    """y (N, out_h, out_w, C) = sum over taps of weight * x[tap] (+ fill_value * outside)."""
    xp = backend.xp
    n, h, w, c = x.shape
    flat = x.reshape(n, h * w, c)
    y = xp.zeros((n, index.shape[1], c), dtype=x.dtype)
    for k in range(index.shape[2]):
        y += weight[:, :, k, None] * xp.take_along_axis(flat, index[:, :, k, None], axis=1)
    if outside is not None and fill_value != 0:
        y += x.dtype.type(fill_value) * outside[:, :, None]
    return y.reshape(n, *out_hw, c)


def scatter_taps(dy, index, weight, in_hw):
    """dx (N, H, W, C): each output pixel's dy sent back to its taps, times their weights (the transpose)."""
    xp = backend.xp
    n, oh, ow, c = dy.shape
    h, w = in_hw
    flat_dy = dy.reshape(n, oh * ow, 1, c)
    target = (xp.arange(n)[:, None, None] * (h * w) + index)[..., None] * c + xp.arange(c)
    values = weight[..., None] * flat_dy
    dx = xp.bincount(target.ravel(), weights=values.ravel(), minlength=n * h * w * c)
    return dx.astype(dy.dtype, copy=False).reshape(n, h, w, c)


def affine_transform(x, transforms, interpolation="bilinear", fill_mode="reflect", fill_value=0.0):
    """Every image of x (N, H, W, C) resampled by its transform (see the module docstring); same shape."""
    taps = sampling_taps(transforms, x.shape[1:3], x.shape[1:3], interpolation, fill_mode, x.dtype)
    return gather_taps(x, *taps, x.shape[1:3], fill_value)


def affine_transform_backward(dy, transforms, interpolation="bilinear", fill_mode="reflect"):
    """dL/dx of ``affine_transform`` (fill_value does not depend on x)."""
    index, weight, _ = sampling_taps(transforms, dy.shape[1:3], dy.shape[1:3], interpolation, fill_mode, dy.dtype)
    return scatter_taps(dy, index, weight, dy.shape[1:3])


# -- flips and crops ---------------------------------------------------------------------------------
def flip(x, flips, horizontal: bool, vertical: bool):
    """x with the images where ``flips`` (N,) is True mirrored left-right and / or top-bottom (its own transpose)."""
    xp = backend.xp
    axes = [axis for axis, on in ((1, vertical), (2, horizontal)) if on]
    mask = xp.asarray(flips, dtype=bool)[:, None, None, None]
    return xp.where(mask, xp.flip(x, axis=axes), x) if axes else x


def crop(x, top: int, left: int, height: int, width: int):
    """x[:, top:top + height, left:left + width, :], clipped to the image as slicing is."""
    return x[:, top:top + height, left:left + width, :]


def crop_backward(dy, x_shape, top: int, left: int):
    """dx: dy placed back at the window it was cut from, zeros elsewhere."""
    dx = backend.xp.zeros(x_shape, dtype=dy.dtype)
    dx[:, top:top + dy.shape[1], left:left + dy.shape[2], :] = dy
    return dx


def aspect_window(in_hw, out_hw) -> tuple:
    """(top, left, height, width) of the largest centred window of ``in_hw`` with the aspect ratio of ``out_hw``
    (Keras's crop_to_aspect_ratio / smart_resize arithmetic)."""
    (h, w), (th, tw) = in_hw, out_hw
    crop_h = max(min(h, int(float(w * th) / tw)), 1)
    crop_w = max(min(w, int(float(h * tw) / th)), 1)
    return int(float(h - crop_h) / 2), int(float(w - crop_w) / 2), crop_h, crop_w


def aspect_padding(in_hw, out_hw) -> tuple:
    """(top, left, padded height, padded width): the image centred in a frame of about ``out_hw``'s aspect
    ratio (Keras's pad_to_aspect_ratio arithmetic: ``top`` = half the missing rows, rounded down, added above
    and below, so an odd number of missing rows leaves the frame one row short)."""
    (h, w), (th, tw) = in_hw, out_hw
    top = int(float(max(h, int(float(w * th) / tw)) - h) / 2)
    left = int(float(max(w, int(float(h * tw) / th)) - w) / 2)
    return top, left, h + 2 * top, w + 2 * left


# -- resizing -------------------------------------------------------------------------------------------
def resize_axis_matrix(n_in: int, n_out: int, interpolation: str, dtype):
    """(n_out, n_in) matrix of a half-pixel 1-D resize, its coordinates computed in ``dtype`` as Keras's
    backends do (so float32 weights round alike)."""
    xp = backend.xp
    scale = xp.asarray(n_in, dtype) / xp.asarray(n_out, dtype)
    centres = xp.arange(n_out, dtype=dtype) + xp.asarray(0.5, dtype)
    rows = xp.arange(n_out)
    matrix = xp.zeros((n_out, n_in), dtype=dtype)
    if interpolation == "nearest":
        matrix[rows, xp.minimum(xp.floor(centres * scale), n_in - 1).astype(xp.intp)] = 1
        return matrix
    u = centres * scale - xp.asarray(0.5, dtype)
    floor = xp.floor(u)
    t = u - floor
    lower = xp.clip(floor, 0, n_in - 1).astype(xp.intp)
    upper = xp.clip(floor + 1, 0, n_in - 1).astype(xp.intp)
    # lower == upper at the clamped edges: both weights land on one cell.
    xp.add.at(matrix, (rows, lower), 1 - t)
    xp.add.at(matrix, (rows, upper), t)
    return matrix


def resize_matrices(in_hw, out_hw, interpolation="bilinear", crop_to_aspect_ratio=False, pad_to_aspect_ratio=False,
                    dtype=None):
    """(B_h, B_w): the (out, in) matrices of Keras's resize of an ``in_hw`` image to ``out_hw``, the crop or the
    padding to the target aspect ratio folded in (see the module docstring)."""
    xp = backend.xp
    dtype = dtype or backend.floatx()
    (h, w), (oh, ow) = in_hw, out_hw
    if crop_to_aspect_ratio:
        top, left, sh, sw = aspect_window(in_hw, out_hw)
        offsets, frame = (top, left), (sh, sw)
    elif pad_to_aspect_ratio:
        top, left, ph, pw = aspect_padding(in_hw, out_hw)
        offsets, frame = (-top, -left), (ph, pw)
    else:
        offsets, frame = (0, 0), (h, w)
    matrices = []
    for n_in, n_frame, n_out, offset in zip((h, w), frame, (oh, ow), offsets):
        window = resize_axis_matrix(n_frame, n_out, interpolation, dtype)
        full = xp.zeros((n_out, n_in), dtype=dtype)
        # Frame cell f is input cell f + offset: crops start inside the input, padding before it.
        lo, hi = max(offset, 0), min(offset + n_frame, n_in)
        full[:, lo:hi] = window[:, lo - offset:hi - offset]
        matrices.append(full)
    return tuple(matrices)


def resize(x, matrix_h, matrix_w, fill_value: float = 0.0):
    """y = B_h x B_w^T (+ fill_value where the matrices' rows sum to less than 1: padding) per image and channel."""
    xp = backend.xp
    n, h, w, c = x.shape
    oh, ow = matrix_h.shape[0], matrix_w.shape[0]
    rows = (matrix_h @ x.reshape(n, h, w * c)).reshape(n * oh, w, c)
    y = (matrix_w @ rows).reshape(n, oh, ow, c)
    if fill_value != 0:
        covered = xp.outer(matrix_h.sum(axis=1), matrix_w.sum(axis=1))
        y += x.dtype.type(fill_value) * (1 - covered)[None, :, :, None]
    return y


def resize_backward(dy, matrix_h, matrix_w):
    """dx = B_h^T dy B_w per image and channel."""
    n, oh, ow, c = dy.shape
    h, w = matrix_h.shape[1], matrix_w.shape[1]
    cols = (matrix_w.T @ dy.reshape(n * oh, ow, c)).reshape(n, oh, w * c)
    return (matrix_h.T @ cols).reshape(n, h, w, c)


# -- colour -------------------------------------------------------------------------------------------------
def adjust_contrast(x, factors, value_range):
    """(y, passed): y = clip((x - m) * f + m) per image (``factors`` (N,)), m the per-channel mean over
    height and width; ``passed`` marks where the clip let the value through (for the backward)."""
    xp = backend.xp
    f = xp.asarray(factors, dtype=x.dtype)[:, None, None, None]
    mean = x.mean(axis=(1, 2), keepdims=True)
    z = (x - mean) * f + mean
    lo, hi = value_range
    return xp.clip(z, lo, hi), (z >= lo) & (z <= hi)


def adjust_contrast_backward(dy, factors, passed):
    """dx = f g + (1 - f) mean_hw(g), g = dy where the clip passed."""
    f = backend.xp.asarray(factors, dtype=dy.dtype)[:, None, None, None]
    g = dy * passed
    return f * g + (1 - f) * g.mean(axis=(1, 2), keepdims=True)


def adjust_brightness(x, deltas, value_range):
    """(y, passed): y = clip(x + delta) per image (``deltas`` (N,)); ``passed`` as in ``adjust_contrast``."""
    xp = backend.xp
    z = x + xp.asarray(deltas, dtype=x.dtype)[:, None, None, None]
    lo, hi = value_range
    return xp.clip(z, lo, hi), (z >= lo) & (z <= hi)
