"""Plain-loop definitions of the augmentation maps: one output pixel at a time, from the formulas.

``arraymath.image`` computes the same with gathered taps, scatters and matrices; the tests hold it
to these loops. Definitions (NHWC; see ``arraymath.image`` for the conventions):

* projective sampling: output (i, j) reads the input point row = (b0 j + b1 i + b2) / k,
  col = (a0 j + a1 i + a2) / k, k = c0 j + c1 i + 1, bilinearly (four taps) or at the nearest
  pixel; taps outside the image folded by the fill mode, or reading fill_value ("constant");
* flips: y[n, i, j] = x[n, H-1-i, j] (vertical) and / or x[n, i, W-1-j] (horizontal);
* resize: each output cell reads its half-pixel source row and column (bilinear: the two nearest
  on each axis, clamped; nearest: floor((i + 0.5) * H_in / H_out)), within the crop window or the
  padded frame (cells outside the image read fill_value);
* contrast: clip((x - mean) * f + mean) with the mean over height and width; brightness clip(x + d).
"""

from __future__ import annotations

import math

from .. import backend


def _fold(p: int, size: int, fill_mode: str):
    """Tap position p along an axis of ``size`` cells: the cell it reads, or None (constant mode, outside)."""
    if 0 <= p < size:
        return p
    if fill_mode == "constant":
        return None
    if fill_mode == "nearest":
        return min(max(p, 0), size - 1)
    if fill_mode == "wrap":
        return p % size
    p %= 2 * size  # reflect: the image and its mirror image repeat with period 2 * size
    return p if p < size else 2 * size - 1 - p


def _taps(row: float, col: float, interpolation: str):
    """The (row, col, weight) taps of one sample point."""
    if interpolation == "nearest":
        return [(round(row), round(col), 1.0)]  # Python's round: ties to even, as numpy's rint
    r0, c0 = math.floor(row), math.floor(col)
    s, t = row - r0, col - c0
    return [(r0, c0, (1 - s) * (1 - t)), (r0, c0 + 1, (1 - s) * t), (r0 + 1, c0, s * (1 - t)),
            (r0 + 1, c0 + 1, s * t)]


def _point(t, i: int, j: int):
    k = t[6] * j + t[7] * i + 1
    return (t[3] * j + t[4] * i + t[5]) / k, (t[0] * j + t[1] * i + t[2]) / k


def affine_transform_loops(x, transforms, interpolation="bilinear", fill_mode="reflect", fill_value=0.0):
    """y[n, i, j, c]: the taps of output pixel (i, j) under image n's transform, weighted and summed."""
    n_, h, w, c_ = x.shape
    y = backend.xp.zeros_like(x)
    for n in range(n_):
        t = [float(v) for v in transforms[n]]
        for i in range(h):
            for j in range(w):
                row, col = _point(t, i, j)
                for r, c, wt in _taps(row, col, interpolation):
                    r, c = _fold(r, h, fill_mode), _fold(c, w, fill_mode)
                    for ch in range(c_):
                        y[n, i, j, ch] += wt * (fill_value if r is None or c is None else x[n, r, c, ch])
    return y


def affine_transform_backward_loops(dy, transforms, interpolation="bilinear", fill_mode="reflect"):
    """dx: every output pixel sends its dy to the input pixels it read, times their weights."""
    n_, h, w, c_ = dy.shape
    dx = backend.xp.zeros_like(dy)
    for n in range(n_):
        t = [float(v) for v in transforms[n]]
        for i in range(h):
            for j in range(w):
                row, col = _point(t, i, j)
                for r, c, wt in _taps(row, col, interpolation):
                    r, c = _fold(r, h, fill_mode), _fold(c, w, fill_mode)
                    if r is not None and c is not None:
                        for ch in range(c_):
                            dx[n, r, c, ch] += wt * dy[n, i, j, ch]
    return dx


def flip_loops(x, flips, horizontal=True, vertical=True):
    """y[n, i, j] = x[n, i', j'] with i' = H-1-i when image n flips vertically, j' = W-1-j horizontally."""
    n_, h, w, c_ = x.shape
    y = backend.xp.zeros_like(x)
    for n in range(n_):
        for i in range(h):
            for j in range(w):
                si = h - 1 - i if flips[n] and vertical else i
                sj = w - 1 - j if flips[n] and horizontal else j
                for c in range(c_):
                    y[n, i, j, c] = x[n, si, sj, c]
    return y


def _axis_terms(i: int, n_in: int, n_out: int, interpolation: str):
    """The (source cell, weight) terms of output cell i of a half-pixel resize along one axis."""
    if interpolation == "nearest":
        return [(min(math.floor((i + 0.5) * n_in / n_out), n_in - 1), 1.0)]
    u = (i + 0.5) * n_in / n_out - 0.5
    u0 = math.floor(u)
    t = u - u0
    return [(min(max(u0, 0), n_in - 1), 1 - t), (min(max(u0 + 1, 0), n_in - 1), t)]


def resize_loops(x, height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
                 pad_to_aspect_ratio=False, fill_value=0.0):
    """Keras's resize to (height, width): the source frame is the image, its centred window of the target
    aspect ratio (crop) or the image centred in a fill_value frame of that ratio (pad)."""
    n_, h, w, c_ = x.shape
    top = left = 0
    frame_h, frame_w = h, w
    if crop_to_aspect_ratio:
        frame_h = max(min(h, int(float(w * height) / width)), 1)
        frame_w = max(min(w, int(float(h * width) / height)), 1)
        top, left = int(float(h - frame_h) / 2), int(float(w - frame_w) / 2)
    elif pad_to_aspect_ratio:
        pad_top = int(float(max(h, int(float(w * height) / width)) - h) / 2)
        pad_left = int(float(max(w, int(float(h * width) / height)) - w) / 2)
        # The same number of fill rows (columns) above and below (left and right), as Keras pads.
        frame_h, frame_w, top, left = h + 2 * pad_top, w + 2 * pad_left, -pad_top, -pad_left
    y = backend.xp.zeros((n_, height, width, c_), dtype=x.dtype)
    for n in range(n_):
        for i in range(height):
            for j in range(width):
                for r, wr in _axis_terms(i, frame_h, height, interpolation):
                    for col, wc in _axis_terms(j, frame_w, width, interpolation):
                        r_in, c_in = r + top, col + left
                        inside = 0 <= r_in < h and 0 <= c_in < w
                        for c in range(c_):
                            y[n, i, j, c] += wr * wc * (x[n, r_in, c_in, c] if inside else fill_value)
    return y


def crop_loops(x, top, left, height, width):
    """y[n, i, j, c] = x[n, top + i, left + j, c] for the cells of the window inside the image."""
    n_, h, w, c_ = x.shape
    rows, cols = min(height, h - top), min(width, w - left)
    y = backend.xp.zeros((n_, rows, cols, c_), dtype=x.dtype)
    for n in range(n_):
        for i in range(rows):
            for j in range(cols):
                for c in range(c_):
                    y[n, i, j, c] = x[n, top + i, left + j, c]
    return y


def center_crop_loops(x, height, width):
    """Keras's CenterCrop: the centred (height, width) window ((H - height) // 2 rows above it) when the image
    holds it, else the largest centred window of that aspect ratio, resized bilinearly to (height, width)."""
    h, w = x.shape[1:3]
    if h >= height and w >= width:
        return crop_loops(x, (h - height) // 2, (w - width) // 2, height, width)
    return resize_loops(x, height, width, crop_to_aspect_ratio=True)


def contrast_loops(x, factors, value_range):
    """Per image n and channel c: m = the mean over (i, j); y = clip((x - m) * f_n + m, lo, hi)."""
    n_, h, w, c_ = x.shape
    lo, hi = value_range
    y = backend.xp.zeros_like(x)
    for n in range(n_):
        for c in range(c_):
            mean = sum(x[n, i, j, c] for i in range(h) for j in range(w)) / (h * w)
            for i in range(h):
                for j in range(w):
                    y[n, i, j, c] = min(max((x[n, i, j, c] - mean) * factors[n] + mean, lo), hi)
    return y


def brightness_loops(x, deltas, value_range):
    """y = clip(x + delta_n, lo, hi), value by value."""
    lo, hi = value_range
    y = backend.xp.zeros_like(x)
    for index in backend.xp.ndindex(*x.shape):
        y[index] = min(max(x[index] + deltas[index[0]], lo), hi)
    return y
