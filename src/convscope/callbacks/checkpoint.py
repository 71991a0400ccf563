"""``ModelCheckpoint``: save the model, or its weights, every epoch or every N batches."""

from __future__ import annotations

import os
import warnings

from .monitor import MonitorCallback

FULL_MODEL_SUFFIXES = (".keras", ".h5", ".convscope")


class ModelCheckpoint(MonitorCallback):
    """Save the model (``model.save``) or its weights (``model.save_weights``) while ``fit`` runs.

    ``ModelCheckpoint(filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
    mode="auto", save_freq="epoch", initial_value_threshold=None)``, Keras 3's arguments:

    * ``filepath``: may hold format fields, filled with ``epoch`` (from 1), ``batch`` (from 1, when
      ``save_freq`` is a number) and any log key: ``"ckpt-{epoch:02d}-{val_loss:.3f}.keras"``. With
      ``save_weights_only=True`` it must end in ``.weights.h5``; otherwise in ``.keras`` (Keras's file),
      ``.h5`` (Keras's legacy HDF5) or ``.convscope`` (convscope's own file, which also keeps the
      optimizer state); Keras 3 accepts the first two only. ``model.save`` picks the format from the suffix.
    * ``save_best_only``: save only when ``monitor`` improves on the best value so far (starting from
      ``initial_value_threshold``); without ``logs[monitor]`` it warns and saves.
    * ``mode``, ``monitor``: see ``MonitorCallback``.
    * ``save_freq``: ``"epoch"`` saves at each epoch's end; an int N saves after every N training batches,
      counted across epochs (the logs are then that batch's running means).
    * ``verbose=1`` prints Keras's messages: ``Epoch 3: saving model to <path>``, ``Epoch 3: val_loss
      improved from 0.41230 to 0.39870, saving model to <path>``, ``Epoch 3: val_loss did not improve from
      0.39870``, and ``Epoch 3: finished saving model to <path>`` after each save.

    >>> ModelCheckpoint("best.keras", monitor="val_accuracy", save_best_only=True)
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__(monitor, mode, initial_value_threshold)
        self.verbose, self.filepath = verbose, os.fspath(filepath)
        self.save_best_only, self.save_weights_only, self.save_freq = save_best_only, save_weights_only, save_freq
        self._batches_seen_since_last_saving, self._last_batch_seen, self._current_epoch = 0, None, 0
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError(f"ModelCheckpoint: unrecognized save_freq: {save_freq!r}. Expected save_freq are "
                             "'epoch' or positive integer values (a number of batches)")
        if save_weights_only and not self.filepath.endswith(".weights.h5"):
            raise ValueError("When using `save_weights_only=True` in `ModelCheckpoint`, the filepath provided must "
                             f"end in `.weights.h5` (Keras weights format). Received: filepath={self.filepath}")
        if not save_weights_only and not self.filepath.endswith(FULL_MODEL_SUFFIXES):
            raise ValueError("ModelCheckpoint: the filepath provided must end in `.keras` (Keras model format), `.h5` "
                             "(Keras legacy HDF5) or `.convscope` (convscope model file). Received: "
                             f"filepath={self.filepath}")

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save_model(epoch, None, logs)

    def _should_save_on_batch(self, batch) -> bool:
        if self.save_freq == "epoch":
            return False
        # A batch index not above the last one seen is a new epoch: its batches count from 0 again.
        if self._last_batch_seen is None or batch <= self._last_batch_seen:
            added = batch + 1
        else:
            added = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += added
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _should_save_model(self, epoch, logs, filepath) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=3)
            return True
        best = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to {current:.5f}, "
                      f"saving model to {filepath}")
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False

    def _save_model(self, epoch, batch, logs) -> None:
        logs = logs or {}
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, logs, filepath):
            return
        folder = os.path.dirname(filepath)
        if folder:
            os.makedirs(folder, exist_ok=True)
        try:
            if self.save_weights_only:
                self.model.save_weights(filepath)
            else:
                self.model.save(filepath)
        except IsADirectoryError as e:
            raise IOError("Please specify a non-directory filepath for ModelCheckpoint. Filepath used is an "
                          f"existing directory: {filepath}") from e
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")

    def _get_file_path(self, epoch, batch, logs) -> str:
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as e:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". Reason: {e}') from e
