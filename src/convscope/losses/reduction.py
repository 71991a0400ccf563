"""Keras 3's loss reductions and sample weights: from per-sample values to the batch's loss.

A loss first computes per-sample values ``v`` of shape ``(n, ...)`` (``y_pred``'s
shape without its last axis). With sample weights ``w`` (one per sample, ``(n,)``
or ``(n, 1)``, or one per value) the reductions are, as in Keras 3's
``reduce_weighted_values``:

* ``"sum_over_batch_size"`` (the default) and ``"mean"``: ``sum(w * v) / size(v)``,
  the number of values, *not* the sum of the weights;
* ``"sum"``: ``sum(w * v)``;
* ``"mean_with_sample_weight"``: ``sum(w * v) / sum(w)`` (``/ size(v)`` without
  weights; 0 when the weights sum to 0);
* ``"none"`` or ``None``: the weighted values ``w * v`` themselves.

Example: ``v = [1, 2, 3, 4]``, ``w = [1, 0, 1, 1]``: 2.0, 8.0 and 8 / 3 for
"sum_over_batch_size", "sum" and "mean_with_sample_weight".
"""

from __future__ import annotations

from .. import backend

DEFAULT = "sum_over_batch_size"
REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


def check_reduction(owner: str, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f'{owner}: argument "reduction" must be one of {list(REDUCTIONS)}, received {reduction!r}')
    return reduction


def reduces(reduction) -> bool:
    """Whether ``reduction`` turns the values into one number."""
    return reduction not in ("none", None)


def sample_weights(owner: str, sample_weight, shape: tuple, dtype):
    """``sample_weight`` broadcast to the values' ``shape``, or None.

    Accepted: a scalar, one weight per sample ``(n,)`` (also ``(n, 1)`` against
    values ``(n,)``, Keras's rank fix-up), or weights for the leading axes of the
    values ``(n, d1, ...)``, repeated over the axes after them and over their own
    axes of size 1 (``(n, 1)`` against ``(n, k)``).
    """
    if sample_weight is None:
        return None
    xp = backend.xp
    w = xp.asarray(sample_weight)
    if not (xp.issubdtype(w.dtype, xp.floating) or xp.issubdtype(w.dtype, xp.integer)):
        raise TypeError(f"{owner}: expected numeric sample weights, received dtype {w.dtype}")
    w = w.astype(dtype)
    if w.ndim == len(shape) + 1 and w.shape[-1] == 1:
        w = w[..., 0]
    fits = w.ndim <= len(shape) and all(d == size or (d == 1 and i) for i, (d, size) in enumerate(zip(w.shape, shape)))
    if not fits:
        raise ValueError(f"{owner}: expected sample_weight of shape {shape[:1]} (one weight per sample)"
                         f"{'' if len(shape) == 1 else f' or {shape}'}, received shape {w.shape}")
    return xp.broadcast_to(w.reshape(w.shape + (1,) * (len(shape) - w.ndim)), shape)


def reduce(values, weights, reduction):
    """``(loss, scale)``: the reduced loss and ``d loss / d values`` (shaped like ``values``).

    ``loss`` is a float for the reducing reductions and the array ``w * v`` for
    ``"none"`` (``scale`` is then None).
    """
    xp = backend.xp
    weighted = values if weights is None else values * weights
    if not reduces(reduction):
        return weighted, None
    scale = xp.ones_like(values) if weights is None else weights
    if reduction == "sum":
        divisor = 1.0
    elif reduction == "mean_with_sample_weight" and weights is not None:
        divisor = float(weights.sum())
    else:
        divisor = float(values.size)
    if divisor == 0:  # Keras's divide_no_nan: all weights 0 give a loss of 0 and no gradient
        return 0.0, xp.zeros_like(values)
    return float(weighted.sum()) / divisor, scale / xp.asarray(divisor, dtype=values.dtype)
