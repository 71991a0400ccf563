"""Input checks shared by the losses and the metrics: matching batches, dense targets, integer labels.

Every check names its owner (the loss or metric class) in the error, says what was
expected and what was received.
"""

from __future__ import annotations

from .. import backend

EPSILON = 1e-7  # Keras's backend.epsilon(): how far probabilities stay from 0 and 1


def as_pair(owner: str, y_true, y_pred, min_rank: int = 1):
    """Arrays for ``(y_true, y_pred)``: a non-empty float ``y_pred`` and as many samples in both."""
    xp = backend.xp
    y_true, y_pred = xp.asarray(y_true), xp.asarray(y_pred)
    if not xp.issubdtype(y_pred.dtype, xp.floating):
        y_pred = backend.cast(y_pred)
    if y_pred.ndim < min_rank:
        expected = "(n, num_classes)" if min_rank == 2 else "(n, ...)"
        raise ValueError(f"{owner}: expected y_pred of shape {expected}, received shape {y_pred.shape}")
    if y_pred.size == 0:
        raise ValueError(f"{owner}: expected a non-empty batch, received y_pred of shape {y_pred.shape}")
    n_true = y_true.shape[0] if y_true.ndim else 1
    if n_true != y_pred.shape[0]:
        raise ValueError(
            f"{owner}: y_true and y_pred must hold the same number of samples, "
            f"expected {y_pred.shape[0]} (the length of y_pred), received {n_true}"
        )
    return y_true, y_pred


def dense_targets(owner: str, y_true, y_pred, one_hot: bool = False):
    """``y_true`` as a float array of exactly ``y_pred``'s shape.

    Only Keras's rank fix-up is allowed: ``(n,)`` against ``(n, 1)`` or the
    reverse. Anything else that differs is refused rather than broadcast.
    """
    if y_true.shape != y_pred.shape:
        squeezable = y_true.shape + (1,) == y_pred.shape or y_true.shape == y_pred.shape + (1,)
        if one_hot or not squeezable:
            detail = (f" (one-hot rows as wide as y_pred's last dimension {y_pred.shape[-1]})"
                      if one_hot else " like y_pred")
            hint = ""
            if one_hot and (y_true.ndim == y_pred.ndim - 1 or y_true.shape[-1:] == (1,)):
                hint = "; for integer labels use SparseCategoricalCrossentropy"
            raise ValueError(
                f"{owner}: expected y_true of shape {y_pred.shape}{detail}, received shape {y_true.shape}{hint}"
            )
        y_true = y_true.reshape(y_pred.shape)
    return backend.cast(y_true, y_pred.dtype)


def sparse_labels(owner: str, y_true, y_pred):
    """Integer class labels of shape ``y_pred.shape[:-1]`` (``(n,)`` or ``(n, 1)`` accepted) in ``[0, k)``."""
    xp = backend.xp
    rows, num_classes = y_pred.shape[:-1], y_pred.shape[-1]
    if y_true.shape not in (rows, rows + (1,)):
        raise ValueError(
            f"{owner}: expected integer labels of shape {rows} or {rows + (1,)}, received shape {y_true.shape}"
        )
    if xp.issubdtype(y_true.dtype, xp.floating):
        # Labels read from text or CSV arrive as floats; whole numbers are still labels.
        fractional = y_true[y_true != xp.round(y_true)]
        if fractional.size:
            raise ValueError(
                f"{owner}: expected integer class labels, received non-integer values such as {fractional.flat[0]}"
            )
    elif not xp.issubdtype(y_true.dtype, xp.integer):
        raise ValueError(f"{owner}: expected integer class labels, received dtype {y_true.dtype}")
    low, high = y_true.min(), y_true.max()
    if low < 0 or high >= num_classes:
        raise ValueError(f"{owner}: expected labels in [0, {num_classes}), received values in [{low}, {high}]")
    return y_true.reshape(rows).astype(xp.intp)


def one_hot(labels, num_classes: int, dtype):
    """``(..., num_classes)`` rows with a 1 at each label."""
    xp = backend.xp
    out = xp.zeros(labels.shape + (num_classes,), dtype=dtype)
    xp.put_along_axis(out, labels[..., None], 1, axis=-1)
    return out


def check_bool(owner: str, arg: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f'{owner}: argument "{arg}" must be a bool, received {value!r}')
    return value


def check_fraction(owner: str, arg: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f'{owner}: argument "{arg}" must be a number in [0, 1], received {value!r}')
    return float(value)


def check_last_axis(owner: str, axis) -> int:
    """Keras's ``axis`` argument, which convscope supports at its default: the last axis."""
    if axis != -1 or isinstance(axis, bool):
        raise ValueError(f'{owner}: argument "axis" is only supported at its default -1, received {axis!r}')
    return -1


def smoothed_one_hot(owner: str, y_true, y_pred, label_smoothing: float):
    """``(y_true, y_pred)`` for a categorical cross-entropy: one-hot rows of y_pred's shape, smoothed as Keras
    smooths them, ``y * (1 - s) + s / num_classes``."""
    y_true, y_pred = as_pair(owner, y_true, y_pred, min_rank=2)
    y_true = dense_targets(owner, y_true, y_pred, one_hot=True)
    if label_smoothing:
        y_true = y_true * (1 - label_smoothing) + label_smoothing / y_pred.shape[-1]
    return y_true, y_pred
