"""Small helpers for users, as in ``keras.utils``."""

from __future__ import annotations

from . import backend


def set_random_seed(seed: int) -> None:
    """Make a run reproducible: seeds the generator behind initializers, dropout and shuffling."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"set_random_seed: expected an int seed, received {type(seed).__name__}")
    backend.set_seed(seed)


def to_categorical(y, num_classes: int | None = None):
    """Class indices ``(n,)`` as one-hot rows ``(n, num_classes)`` of ``floatx()``."""
    xp = backend.xp
    y = xp.asarray(y)
    if y.ndim != 1 or not xp.issubdtype(y.dtype, xp.integer):
        raise ValueError(f"to_categorical: expected a 1-D array of integer labels, received shape {y.shape} dtype {y.dtype}")
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"to_categorical: labels must lie in [0, {num_classes}), received range [{y.min()}, {y.max()}]")
    out = xp.zeros((y.shape[0], num_classes), dtype=backend.floatx())
    out[xp.arange(y.shape[0]), y] = 1
    return out
