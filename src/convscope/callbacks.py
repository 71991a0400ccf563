"""Callbacks, with Keras's names, arguments and hook points.

``fit`` calls ``on_train_begin``, then per epoch ``on_epoch_begin``, per batch
``on_train_batch_begin`` / ``on_train_batch_end(batch, logs)``, then
``on_epoch_end(epoch, logs)`` with the epoch's averaged metrics (and ``val_*``),
then ``on_train_end``. A callback stops training by setting
``model.stop_training = True``.
"""

from __future__ import annotations

import math
import os
import time


class Callback:
    def __init__(self):
        self.model = None
        self.params: dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_begin(self, batch, logs=None): ...
    def on_train_batch_end(self, batch, logs=None): ...


class History(Callback):
    """Records every epoch's logs: ``history.history["loss"]``, ``history.epoch``."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


def _check_mode(mode: str, monitor: str, owner: str):
    """``less`` or ``greater`` is better for ``monitor``; "auto" guesses from the name as Keras does."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f'{owner}: argument "mode" must be "auto", "min" or "max", received {mode!r}')
    if mode == "auto":
        mode = "max" if ("acc" in monitor or monitor.endswith("auc")) else "min"
    return mode


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs."""

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor, self.min_delta, self.patience = monitor, abs(min_delta), patience
        self.verbose, self.baseline = verbose, baseline
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch
        self.mode = _check_mode(mode, monitor, "EarlyStopping")
        self.stopped_epoch = 0

    def _better(self, value, reference) -> bool:
        if reference is None:
            return True
        if self.mode == "min":
            return value < reference - self.min_delta
        return value > reference + self.min_delta

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch = 0, 0
        self.best, self.best_weights, self.best_epoch = None, None, 0

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or epoch < self.start_from_epoch:
            return
        self.wait += 1
        if self._better(value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._better(value, self.baseline):
                self.wait = 0
            return  # an improving epoch never stops training (Keras), even with patience=0
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    def on_train_end(self, logs=None):
        if self.stopped_epoch and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")


class ModelCheckpoint(Callback):
    """Save the model (atomically) after every epoch, or only when ``monitor`` improves.

    ``filepath`` may hold Keras format fields: ``"ckpt-{epoch:02d}-{val_loss:.3f}.convscope"``
    (``epoch`` counts from 1).
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        if save_freq != "epoch":
            raise ValueError(f'ModelCheckpoint: only save_freq="epoch" is supported, received {save_freq!r}')
        if save_weights_only:
            raise ValueError("ModelCheckpoint: save_weights_only=True is not supported; the full model is saved")
        self.filepath, self.monitor, self.verbose = os.fspath(filepath), monitor, verbose
        self.save_best_only = save_best_only
        self.mode = _check_mode(mode, monitor, "ModelCheckpoint")
        self.best = initial_value_threshold

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None:
                return
            improved = self.best is None or (value < self.best if self.mode == "min" else value > self.best)
            if not improved:
                return
            self.best = value
        self.model.save(path)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved model to {path}")


class TerminateOnNaN(Callback):
    """Stop at the first batch whose loss is NaN or infinite, naming the epoch and batch.

    ``stopped_at`` is then ``(epoch, batch, loss)`` (epoch counted from 1, batch from 0,
    as printed); None while training stays finite.
    """

    def __init__(self):
        super().__init__()
        self.epoch, self.stopped_at = 0, None

    def on_train_begin(self, logs=None):
        self.stopped_at = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Epoch {self.epoch + 1}, batch {batch}: invalid loss {loss}, terminating training", flush=True)
            self.stopped_at = (self.epoch + 1, batch, loss)
            self.model.stop_training = True


class ProgbarLogger(Callback):
    """Keras's progress display: a live bar per epoch (``verbose=1``) or one line per epoch (``verbose=2``).

    The bar is tqdm's when tqdm is installed (``pip install convscope[progress]``);
    without it, ``verbose=1`` prints the same one line per epoch.
    """

    def __init__(self, verbose=1):
        super().__init__()
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        steps = self.params.get("steps")
        self.start, self.seen = time.perf_counter(), 0
        print(f"Epoch {epoch + 1}/{self.params.get('epochs')}", flush=True)
        self.bar = None
        if self.verbose == 1:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=steps, unit="step", dynamic_ncols=True, leave=True,
                            bar_format="{n_fmt}/{total_fmt} {bar:20} {elapsed} {rate_inv_fmt}{postfix}")

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.bar is not None:
            self.bar.set_postfix_str(format_logs(logs), refresh=False)
            self.bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is not None:
            self.bar.set_postfix_str(format_logs(logs), refresh=False)
            self.bar.close()
        else:
            steps, seen = self.params.get("steps"), max(self.seen, 1)  # seen < steps when training stopped early
            seconds = time.perf_counter() - self.start
            print(f"{self.seen}/{steps} - {seconds:.0f}s - {1000 * seconds / seen:.0f}ms/step - {format_logs(logs)}",
                  flush=True)


def format_logs(logs) -> str:
    """``accuracy: 0.9712 - loss: 0.0934 - val_accuracy: ...`` in Keras's order (train first, then val)."""
    items = list((logs or {}).items())
    items.sort(key=lambda kv: (kv[0].startswith("val_"), kv[0]))
    return " - ".join(f"{k}: {v:.4f}" for k, v in items)

