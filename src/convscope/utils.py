"""Small helpers for users, as in ``keras.utils``: seeding, one-hot labels and ``PyDataset``."""

from __future__ import annotations

from . import backend


def set_random_seed(seed: int) -> None:
    """Make a run reproducible, as ``keras.utils.set_random_seed``: seeds the generator behind initializers,
    dropout and shuffling, and NumPy's and Python's global generators (a program's own ``np.random`` data)."""
    import random

    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"set_random_seed: expected an int seed, received {type(seed).__name__}")
    backend.set_seed(seed)
    backend.xp.random.seed(seed)
    random.seed(seed)


def to_categorical(y, num_classes: int | None = None):
    """Class indices as one-hot rows of ``floatx()``, as ``keras.utils.to_categorical``: labels of shape ``s``
    (a trailing axis of 1 dropped) give ``s + (num_classes,)``; float labels are read as integers."""
    xp = backend.xp
    y = xp.asarray(y)
    if not (xp.issubdtype(y.dtype, xp.integer) or xp.issubdtype(y.dtype, xp.floating)):
        raise ValueError(f"to_categorical: expected integer labels, received dtype {y.dtype}")
    shape = y.shape[:-1] if y.ndim > 1 and y.shape[-1] == 1 else y.shape
    y = y.reshape(-1).astype(xp.int64)
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"to_categorical: labels must lie in [0, {num_classes}), received range [{y.min()}, {y.max()}]")
    out = xp.zeros((y.shape[0], num_classes), dtype=backend.floatx())
    out[xp.arange(y.shape[0]), y] = 1
    return out.reshape(*shape, num_classes)


class PyDataset:
    """Keras's ``keras.utils.PyDataset`` (alias ``Sequence``): a dataset written as Python code, giving whole batches.

    Subclass it and define ``__len__`` (the number of batches) and ``__getitem__(index)`` returning batch
    ``index`` as ``x``, ``(x, y)`` or ``(x, y, sample_weight)``; ``fit`` / ``evaluate`` / ``predict`` take it as
    ``x`` and call ``on_epoch_begin()`` / ``on_epoch_end()`` around every epoch (override them to reshuffle).
    An infinite dataset defines ``num_batches`` returning None instead of ``__len__`` (then give
    ``steps_per_epoch``). ``workers``, ``use_multiprocessing`` and ``max_queue_size`` are accepted as Keras's
    are; convscope makes the batches in-process, one after the other.

    Example::

        class Batches(PyDataset):
            def __init__(self, x, y, batch_size, **kwargs):
                super().__init__(**kwargs)
                self.x, self.y, self.batch_size = x, y, batch_size

            def __len__(self):
                return math.ceil(len(self.x) / self.batch_size)

            def __getitem__(self, index):
                s = slice(index * self.batch_size, (index + 1) * self.batch_size)
                return self.x[s], self.y[s]

        model.fit(Batches(x_train, y_train, 64), epochs=3)
    """

    def __init__(self, workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 10):
        for arg, value in (("workers", workers), ("max_queue_size", max_queue_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f'PyDataset: argument "{arg}" must be an int >= 0, received {value!r}')
        if not isinstance(use_multiprocessing, bool):
            raise TypeError(
                f'PyDataset: argument "use_multiprocessing" must be a bool, received {use_multiprocessing!r}')
        self.workers, self.use_multiprocessing, self.max_queue_size = workers, use_multiprocessing, max_queue_size

    def __getitem__(self, index):
        """Batch ``index`` (from 0)."""
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index) returning one batch")

    @property
    def num_batches(self):
        """The number of batches, ``len(self)``; None for an infinite dataset."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError(
            f"{type(self).__name__} must define __len__ (the number of batches) or a num_batches property "
            "(None for an infinite dataset)"
        )

    def on_epoch_begin(self) -> None:
        """Called before every epoch."""

    def on_epoch_end(self) -> None:
        """Called after every epoch (shuffle the data here, if you like)."""


Sequence = PyDataset
"""Keras's older name of ``PyDataset``."""
