"""Normalization math: layer normalization (forward, backward) and the Normalization preprocessing layer.

Layer normalization over the axes ``A`` of x (every other axis indexes independent groups),
with M the number of values in a group:

    mu  = mean over A of x,   var = mean over A of (x - mu)^2      (biased; two passes, as TF and JAX)
    r   = 1 / sqrt(var + epsilon)
    y   = x * (r * gamma) + (beta - mu * (r * gamma))             (Keras's arrangement of
                                                                    gamma * (x - mu) * r + beta)
  rms_scaling (Keras's deprecated variant: it divides by the centred standard deviation but does
  not subtract the mean, and has no beta):
    y   = x * r * gamma

Backward, with g = dy * gamma (dy without scale), x_hat = (x - mu) * r and means over A:
    dx     = r * (g - mean(g) - x_hat * mean(g * x_hat))
    rms:  dx = r * g - r^3 * (x - mu) * mean(g * x)
    dgamma = sum over the other axes of dy * x_hat   (rms: dy * x * r);   dbeta = sum of dy.

Normalization (the preprocessing layer): y = (x - mean) / max(sqrt(variance), 1e-7), or with
invert ``y = mean + x * max(sqrt(variance), 1e-7)``; 1e-7 is Keras's ``backend.epsilon()``.
Its Jacobian is diagonal: dx = dy / std (invert: dy * std).

Shapes: gamma, beta, mean and variance come broadcastable to x (size 1 on the reduced axes).
The loop definitions are ``reference_resample.layer_normalization_loops`` and
``normalization_loops``.
"""

from __future__ import annotations

from .. import backend

KERAS_EPSILON = 1e-7  # Keras's backend.epsilon(), the floor of Normalization's standard deviation


def layer_norm_forward(x, gamma, beta, axes, epsilon, rms_scaling=False):
    """(y, mean, inv_std); ``gamma`` / ``beta`` broadcastable to x or None; mean, inv_std keep dims."""
    axes = tuple(axes)
    mean = x.mean(axis=axes, keepdims=True)
    inv_std = 1 / backend.xp.sqrt(x.var(axis=axes, keepdims=True) + epsilon)
    if rms_scaling:
        y = x * inv_std
        return (y if gamma is None else y * gamma), mean, inv_std
    scale = inv_std if gamma is None else inv_std * gamma
    shift = -mean * scale
    if beta is not None:
        shift = shift + beta
    return x * scale + shift, mean, inv_std


def layer_norm_backward(dy, x, mean, inv_std, gamma, axes, rms_scaling=False):
    """(dx, dgamma, dbeta) of ``layer_norm_forward``; dgamma, dbeta have the shape of the normalized axes."""
    axes = tuple(axes)
    others = tuple(d for d in range(dy.ndim) if d not in axes)
    param_shape = tuple(dy.shape[d] for d in axes)
    g = dy if gamma is None else dy * gamma
    if rms_scaling:
        normalized = x * inv_std
        dx = inv_std * g - inv_std**3 * (x - mean) * (g * x).mean(axis=axes, keepdims=True)
    else:
        normalized = (x - mean) * inv_std
        dx = inv_std * (g - g.mean(axis=axes, keepdims=True)
                        - normalized * (g * normalized).mean(axis=axes, keepdims=True))
    dgamma = (dy * normalized).sum(axis=others).reshape(param_shape)
    dbeta = dy.sum(axis=others).reshape(param_shape)
    return dx, dgamma, dbeta


def normalization_std(variance):
    """Keras's divisor: max(sqrt(variance), epsilon), so a constant feature (variance 0) stays finite."""
    return backend.xp.maximum(backend.xp.sqrt(variance), KERAS_EPSILON)


def normalize(x, mean, variance, invert=False):
    """(x - mean) / std, or mean + x * std with ``invert``; std = ``normalization_std(variance)``."""
    std = normalization_std(variance)
    return mean + x * std if invert else (x - mean) / std


def normalize_backward(dy, variance, invert=False):
    """dx of ``normalize``: the map is affine per element, so dx = dy / std (invert: dy * std)."""
    std = normalization_std(variance)
    return dy * std if invert else dy / std


def moments(data, reduce_axes):
    """(mean, biased variance) of ``data`` over ``reduce_axes``, accumulated in float64 whatever the data
    type, so that adapting on float32 data gives the correctly rounded statistics."""
    data = backend.xp.asarray(data, dtype="float64")
    return data.mean(axis=tuple(reduce_axes)), data.var(axis=tuple(reduce_axes))
