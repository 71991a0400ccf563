"""``TerminateOnNaN``: stop at the first batch whose loss is NaN or infinite."""

from __future__ import annotations

import math

from .base import Callback


class TerminateOnNaN(Callback):
    """Stop at the first training batch whose loss is NaN or infinite, naming the epoch and batch.

    ``TerminateOnNaN(raise_error=False)``: by default it prints
    ``Epoch 2, batch 3: invalid loss nan, terminating training`` (Keras prints ``Batch 3: Invalid loss,
    terminating training``; convscope names the epoch and the value too) and sets
    ``model.stop_training``, so the epoch and training end normally (``on_train_end`` runs).
    ``raise_error=True`` raises ``RuntimeError`` at once instead, as Keras 3 does, so no other
    callback's ``on_train_end`` runs (a ``BackupAndRestore`` backup stays on disk).

    ``stopped_at`` is then ``(epoch, batch, loss)`` (epoch counted from 1, batch from 0, as printed);
    None while training stays finite.
    """

    def __init__(self, raise_error: bool = False):
        super().__init__()
        if not isinstance(raise_error, bool):
            raise TypeError(f'TerminateOnNaN: argument "raise_error" must be a bool, received {raise_error!r}')
        self.raise_error = raise_error
        self.epoch, self.stopped_at = 0, None

    def on_train_begin(self, logs=None):
        self.stopped_at = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(loss):
            return
        if self.raise_error:
            raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. "
                               "Terminating training immediately.")
        print(f"Epoch {self.epoch + 1}, batch {batch}: invalid loss {loss}, terminating training", flush=True)
        self.stopped_at = (self.epoch + 1, batch, loss)
        self.model.stop_training = True
