"""``EarlyStopping``: stop ``fit`` when the monitored value stops improving."""

from __future__ import annotations

import warnings

from .base import check_count
from .monitor import MonitorCallback


class EarlyStopping(MonitorCallback):
    """Stop when ``monitor`` has not improved (by more than ``min_delta``) for ``patience`` epochs.

    ``EarlyStopping(monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
    restore_best_weights=False, start_from_epoch=0)``, Keras's arguments and rule, at each epoch's end:

    * epochs before ``start_from_epoch``, or without ``logs[monitor]`` (a warning), are ignored;
    * ``wait += 1``; an improvement on the best value so far makes it the best and, if it also beats
      ``baseline`` (when given), sets ``wait = 0``: an improving epoch never stops training;
    * otherwise, when ``wait >= patience`` (and it is not the first epoch), ``model.stop_training = True``.

    At the end of training, with ``restore_best_weights``, the weights of the best epoch are put back
    (even when training was not stopped early). ``verbose=1`` prints ``Epoch 5: early stopping`` and
    ``Restoring model weights from the end of the best epoch: 3.``.

    >>> stop = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    >>> model.fit(x, y, validation_split=0.1, epochs=100, callbacks=[stop])
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience = check_count("EarlyStopping", "patience", patience)
        self.start_from_epoch = check_count("EarlyStopping", "start_from_epoch", start_from_epoch)
        self.verbose, self.baseline, self.restore_best_weights = verbose, baseline, restore_best_weights
        self.wait, self.stopped_epoch, self.best_weights, self.best_epoch = 0, 0, None, 0

    def on_train_begin(self, logs=None):
        # The same instance may serve several fits.
        self.wait, self.stopped_epoch, self.best, self.best_weights, self.best_epoch = 0, 0, None, None, 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs):
        """``logs[monitor]``, or None with a warning naming the keys there are."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                          f"Available metrics are: {','.join(logs)}", stacklevel=2)
        return value
