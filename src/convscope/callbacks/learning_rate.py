"""Callbacks that set the optimizer's learning rate: ``ReduceLROnPlateau`` and ``LearningRateScheduler``.

Both write the rate in use into each epoch's logs as ``logs["learning_rate"]`` (a float), as Keras 3
does, so ``History``, ``CSVLogger`` and ``TensorBoard`` placed after them record it. They set
``model.optimizer.learning_rate``; an optimizer created with a ``LearningRateSchedule`` refuses that
with a message saying so.
"""

from __future__ import annotations

import inspect
import warnings

from .. import backend
from .base import Callback, check_count
from .monitor import MonitorCallback


def _current_rate(optimizer) -> float:
    if not hasattr(optimizer, "learning_rate"):
        raise ValueError('Optimizer must have a "learning_rate" attribute.')
    return float(optimizer.learning_rate)


class ReduceLROnPlateau(MonitorCallback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved for ``patience`` epochs.

    ``ReduceLROnPlateau(monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
    cooldown=0, min_lr=0.0)``, Keras's rule at each epoch's end (``logs["learning_rate"]`` is set first):

    * during a cooldown (``cooldown`` epochs after a reduction) the wait stays 0;
    * an improvement (by more than ``min_delta``) makes it the best and resets the wait;
    * otherwise, out of cooldown, ``wait += 1`` and when ``wait >= patience`` and ``lr > min_lr``:
      ``lr = max(lr * factor, min_lr)``, the cooldown starts and ``wait = 0``.

    ``verbose=1`` prints ``Epoch 7: ReduceLROnPlateau reducing learning rate to 0.0001.``
    Unlike Keras, unknown keyword arguments are refused (Keras 3 ignores them).
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0):
        super().__init__(monitor, mode, min_delta=min_delta)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. Received factor={factor}")
        if min_lr < 0:
            raise ValueError(f'ReduceLROnPlateau: argument "min_lr" must be >= 0, received {min_lr!r}')
        self.patience = check_count("ReduceLROnPlateau", "patience", patience)
        self.cooldown = check_count("ReduceLROnPlateau", "cooldown", cooldown)
        self.factor, self.min_lr, self.verbose = factor, min_lr, verbose
        self.cooldown_counter, self.wait = 0, 0

    def on_train_begin(self, logs=None):
        self.best, self.cooldown_counter, self.wait = None, 0, 0

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs if logs is not None else {}
        optimizer = self.model.optimizer
        logs["learning_rate"] = _current_rate(optimizer)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` which is not "
                          f"available. Available metrics are: {','.join(logs)}.", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best, self.wait = current, 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce(optimizer, epoch):
                self.cooldown_counter, self.wait = self.cooldown, 0

    def _reduce(self, optimizer, epoch) -> bool:
        old = _current_rate(optimizer)
        # Keras compares with the float32 of min_lr (its rates are float32 variables).
        if not old > backend.xp.float32(self.min_lr):
            return False
        new = max(old * self.factor, self.min_lr)
        optimizer.learning_rate = new
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
        return True


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to ``schedule(epoch, lr)``.

    ``LearningRateScheduler(schedule, verbose=0)``: ``schedule`` takes the epoch (from 0) and the current
    rate and returns the new rate as a float (a Python or NumPy float; anything else is a ``ValueError``,
    as in Keras); a ``schedule(epoch)`` of one argument is accepted too (Keras's older form). ``verbose=1``
    prints ``Epoch 3: LearningRateScheduler setting learning rate to 0.005.``

    >>> LearningRateScheduler(lambda epoch, lr: lr if epoch < 10 else lr * 0.9)
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f'LearningRateScheduler: argument "schedule" must be a function (epoch, lr) -> lr, '
                            f"received {schedule!r}")
        self.schedule, self.verbose = schedule, verbose
        self._takes_rate = _takes_two_arguments(schedule)

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        rate = _current_rate(optimizer)
        rate = self.schedule(epoch, rate) if self._takes_rate else self.schedule(epoch)
        if not isinstance(rate, (float, backend.xp.floating)):
            raise ValueError(f"The output of the `schedule` function should be a float. Got: {rate}")
        optimizer.learning_rate = float(rate)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {rate}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _current_rate(self.model.optimizer)


def _takes_two_arguments(function) -> bool:
    """Whether ``function(epoch, lr)`` is the call to make (Keras tries it and falls back to ``(epoch)`` on a
    TypeError, which also hides TypeErrors raised inside the schedule; the signature says it cleanly)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # a callable without an inspectable signature: the current form
        return True
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in parameters)
