"""The ``Callback`` base class: every hook Keras 3 has, each doing nothing by default.

Hooks and what their ``logs`` hold (a dict, never None, when a ``CallbackList`` calls them):

=========================================  ===========================================================
``on_train_begin(logs)``                   ``{}``
``on_epoch_begin(epoch, logs)``            ``{}``; ``epoch`` counts from 0
``on_train_batch_begin(batch, logs)``      ``{}``; ``batch`` counts from 0 within the epoch
``on_train_batch_end(batch, logs)``        the epoch's running means so far: ``{"accuracy": .., "loss": ..}``
``on_test_begin(logs)``                    ``{}`` (``evaluate``, and ``fit``'s validation)
``on_test_batch_begin / _end``             ``{}`` / the running means of the evaluation so far
``on_test_end(logs)``                      the evaluation's results, without any ``val_`` prefix
``on_epoch_end(epoch, logs)``              the epoch's means and ``val_*``; callbacks may add keys
``on_train_end(logs)``                     the last epoch's logs
``on_predict_begin / _end(logs)``          ``{}``
``on_predict_batch_begin / _end``          ``{}`` / ``{"outputs": <the batch's predictions>}``
=========================================  ===========================================================

``on_batch_begin`` / ``on_batch_end`` are Keras's older names of the training-batch hooks: the
base class's ``on_train_batch_begin`` / ``on_train_batch_end`` call them, so a callback that
overrides only ``on_batch_end`` runs after every training batch.

A callback stops training by setting ``self.model.stop_training = True``.

Example::

    class Loss(Callback):
        def on_epoch_end(self, epoch, logs=None):
            print(epoch, logs["loss"])
"""

from __future__ import annotations


class Callback:
    """Base of every callback: ``set_model`` / ``set_params`` (called by ``CallbackList``) and the hooks."""

    def __init__(self):
        self.params = None
        self._model = None

    def set_params(self, params) -> None:
        """``params``: ``{"verbose": .., "epochs": .., "steps": ..}``, as fit, evaluate or predict set it."""
        self.params = params

    def set_model(self, model) -> None:
        self._model = model

    @property
    def model(self):
        """The model being trained, evaluated or used for prediction."""
        return self._model

    def on_batch_begin(self, batch, logs=None):
        """Keras's older name of ``on_train_batch_begin``."""

    def on_batch_end(self, batch, logs=None):
        """Keras's older name of ``on_train_batch_end``."""

    def on_epoch_begin(self, epoch, logs=None):
        """Start of an epoch of ``fit`` (``epoch`` from 0)."""

    def on_epoch_end(self, epoch, logs=None):
        """End of an epoch: ``logs`` holds its metrics, and ``val_*`` ones when ``fit`` validates."""

    def on_train_batch_begin(self, batch, logs=None):
        """Start of a training batch; calls ``on_batch_begin`` (Keras's alias)."""
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        """End of a training batch (``logs``: the epoch's running means); calls ``on_batch_end`` (Keras's alias)."""
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        """Start of a batch of ``evaluate`` or of ``fit``'s validation."""

    def on_test_batch_end(self, batch, logs=None):
        """End of a batch of ``evaluate`` or of ``fit``'s validation (``logs``: running means)."""

    def on_predict_batch_begin(self, batch, logs=None):
        """Start of a batch of ``predict``."""

    def on_predict_batch_end(self, batch, logs=None):
        """End of a batch of ``predict``: ``logs == {"outputs": <the batch's predictions>}``."""

    def on_train_begin(self, logs=None):
        """Start of ``fit``."""

    def on_train_end(self, logs=None):
        """End of ``fit``: ``logs`` is the last epoch's."""

    def on_test_begin(self, logs=None):
        """Start of ``evaluate`` or of ``fit``'s validation."""

    def on_test_end(self, logs=None):
        """End of ``evaluate`` or of ``fit``'s validation: ``logs`` holds its results."""

    def on_predict_begin(self, logs=None):
        """Start of ``predict``."""

    def on_predict_end(self, logs=None):
        """End of ``predict``."""


def pythonify_logs(logs) -> dict:
    """A new dict of ``logs`` (``{}`` for None) sorted by key, nested dicts flattened into it, and every scalar
    (NumPy scalars, 0-d arrays, ints, bools) made a Python float, as Keras does; other values (arrays of
    predictions, strings) are kept as they are.

    >>> pythonify_logs({"loss": np.float32(0.5), "acc": 1})
    {'acc': 1.0, 'loss': 0.5}
    """
    result = {}
    for key, value in sorted((logs or {}).items()):
        if isinstance(value, dict):
            result.update(pythonify_logs(value))
            continue
        if not isinstance(value, str) and getattr(value, "ndim", 0) == 0:
            try:
                value = float(value)
            except (TypeError, ValueError):
                pass  # not a number (an object a callback put there): passed on unchanged, as Keras does
        result[key] = value
    return result


def check_count(owner: str, arg: str, value) -> int:
    """``value`` if it is an int >= 0 (a number of epochs or batches), else a ValueError naming ``owner``'s ``arg``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f'{owner}: argument "{arg}" must be an int >= 0, received {value!r}')
    return value
