"""Plain-loop definitions of upsampling and of the normalizations: slow, obvious, one output at a time.

``ops.upsampling`` and ``ops.normalization`` compute the same with repeats, interpolation matrices
and reductions; the tests hold them to these loops.

Upsampling, x (N, H, W, C) -> y (N, H*sh, W*sw, C):
* nearest:  y[n, i, j, c] = x[n, i // sh, j // sw, c];
* bilinear: u = (i + 0.5) / sh - 0.5 (half-pixel centres), rows u0 = floor(u) and u0 + 1, both
  clamped into [0, H - 1], weights 1 - t and t with t = u - u0; the same along columns with v:
      y = (1-t)(1-s) x[u0, v0] + (1-t) s x[u0, v1] + t (1-s) x[u1, v0] + t s x[u1, v1].
Layer normalization and Normalization as in ``ops.normalization``'s docstring.
"""

from __future__ import annotations

import itertools
import math

from .. import backend
from .normalization import KERAS_EPSILON


def _source(out_index: int, factor: int, n_in: int):
    """(lower, upper, t): the two input cells output ``out_index`` interpolates and the weight of ``upper``."""
    u = (out_index + 0.5) / factor - 0.5
    u0 = math.floor(u)
    return min(max(u0, 0), n_in - 1), min(max(u0 + 1, 0), n_in - 1), u - u0


def _bilinear_terms(i, j, size, h, w):
    """The four (row, col, weight) terms of output cell (i, j)."""
    r0, r1, t = _source(i, size[0], h)
    c0, c1, s = _source(j, size[1], w)
    return [(r0, c0, (1 - t) * (1 - s)), (r0, c1, (1 - t) * s), (r1, c0, t * (1 - s)), (r1, c1, t * s)]


def upsample2d_loops(x, size, interpolation="nearest"):
    """y[n, i, j, c] from the formula above, for every output cell."""
    n_, h, w, c_ = x.shape
    y = backend.xp.zeros((n_, h * size[0], w * size[1], c_), dtype=x.dtype)
    for n in range(n_):
        for i in range(h * size[0]):
            for j in range(w * size[1]):
                for c in range(c_):
                    if interpolation == "nearest":
                        y[n, i, j, c] = x[n, i // size[0], j // size[1], c]
                    else:
                        y[n, i, j, c] = sum(wt * x[n, r, col, c] for r, col, wt in _bilinear_terms(i, j, size, h, w))
    return y


def upsample2d_backward_loops(dy, x_shape, size, interpolation="nearest"):
    """dx: every output cell sends dy back to the input cells it read, times the weight it read them with."""
    n_, h, w, c_ = x_shape
    dx = backend.xp.zeros(x_shape, dtype=dy.dtype)
    for n in range(n_):
        for i in range(dy.shape[1]):
            for j in range(dy.shape[2]):
                for c in range(c_):
                    if interpolation == "nearest":
                        dx[n, i // size[0], j // size[1], c] += dy[n, i, j, c]
                    else:
                        for r, col, wt in _bilinear_terms(i, j, size, h, w):
                            dx[n, r, col, c] += wt * dy[n, i, j, c]
    return dx


def _groups(shape, axes):
    """Yield, per group (an index of the axes not normalized), the list of full indices in that group."""
    others = [d for d in range(len(shape)) if d not in axes]
    for outer in itertools.product(*(range(shape[d]) for d in others)):
        members = []
        for inner in itertools.product(*(range(shape[d]) for d in axes)):
            index = [0] * len(shape)
            for d, k in zip(others, outer):
                index[d] = k
            for d, k in zip(axes, inner):
                index[d] = k
            members.append((tuple(index), inner))
        yield members


def layer_normalization_loops(x, gamma=None, beta=None, axes=(-1,), epsilon=1e-3, rms_scaling=False):
    """y per group: mu = sum(x) / M, var = sum((x - mu)^2) / M, then per value
    (x - mu) / sqrt(var + eps) * gamma + beta, or with rms_scaling x / sqrt(var + eps) * gamma.
    ``gamma`` and ``beta`` have the shape of the normalized axes (or are None)."""
    axes = sorted(a % x.ndim for a in axes)
    y = backend.xp.zeros_like(x)
    for members in _groups(x.shape, axes):
        m = len(members)
        mu = sum(x[index] for index, _ in members) / m
        var = sum((x[index] - mu) ** 2 for index, _ in members) / m
        for index, inner in members:
            value = (x[index] if rms_scaling else x[index] - mu) / math.sqrt(var + epsilon)
            if gamma is not None:
                value = value * gamma[inner]
            if beta is not None and not rms_scaling:
                value = value + beta[inner]
            y[index] = value
    return y


def layer_normalization_backward_loops(dy, x, gamma=None, axes=(-1,), epsilon=1e-3, rms_scaling=False):
    """(dx, dgamma, dbeta) of ``layer_normalization_loops`` by the chain rule through mu and var, group
    by group: with g = dy * gamma, r = 1 / sqrt(var + eps), x_hat = (x - mu) * r,
    dx = r * (g - sum(g) / M - x_hat * sum(g * x_hat) / M)  (rms: r * g - r^3 (x - mu) sum(g * x) / M)."""
    axes = sorted(a % x.ndim for a in axes)
    param_shape = tuple(x.shape[d] for d in axes)
    dx = backend.xp.zeros_like(x)
    dgamma = backend.xp.zeros(param_shape, dtype=x.dtype)
    dbeta = backend.xp.zeros(param_shape, dtype=x.dtype)
    for members in _groups(x.shape, axes):
        m = len(members)
        mu = sum(x[index] for index, _ in members) / m
        r = 1 / math.sqrt(sum((x[index] - mu) ** 2 for index, _ in members) / m + epsilon)
        g = {index: dy[index] * (1 if gamma is None else gamma[inner]) for index, inner in members}
        sum_g = sum(g.values())
        sum_gx = sum(g[index] * x[index] for index, _ in members)
        sum_g_hat = sum(g[index] * (x[index] - mu) * r for index, _ in members)
        for index, inner in members:
            if rms_scaling:
                dx[index] = r * g[index] - r**3 * (x[index] - mu) * sum_gx / m
                dgamma[inner] += dy[index] * x[index] * r
            else:
                x_hat = (x[index] - mu) * r
                dx[index] = r * (g[index] - sum_g / m - x_hat * sum_g_hat / m)
                dgamma[inner] += dy[index] * x_hat
            dbeta[inner] += dy[index]
    return dx, dgamma, dbeta


def normalization_loops(x, mean, variance, invert=False):
    """Every value on its own: (x - mean) / max(sqrt(variance), 1e-7), or mean + x * that with ``invert``;
    ``mean`` and ``variance`` broadcastable to x."""
    mean = backend.xp.broadcast_to(mean, x.shape)
    variance = backend.xp.broadcast_to(variance, x.shape)
    y = backend.xp.zeros_like(x)
    for index in itertools.product(*(range(d) for d in x.shape)):
        std = max(math.sqrt(variance[index]), KERAS_EPSILON)
        y[index] = mean[index] + x[index] * std if invert else (x[index] - mean[index]) / std
    return y


def moments_loops(data, keep_axes):
    """(mean, variance) per index of ``keep_axes``: sums over every other axis, divided by their count."""
    keep_axes = sorted(a % data.ndim for a in keep_axes)
    reduce_axes = [d for d in range(data.ndim) if d not in keep_axes]
    shape = tuple(data.shape[d] for d in keep_axes)
    mean = backend.xp.zeros(shape, dtype="float64")
    variance = backend.xp.zeros(shape, dtype="float64")
    for members in _groups(data.shape, reduce_axes):
        values = [float(data[index]) for index, _ in members]
        key = tuple(members[0][0][d] for d in keep_axes)
        mu = sum(values) / len(values)
        mean[key] = mu
        variance[key] = sum((v - mu) ** 2 for v in values) / len(values)
    return mean, variance
