"""``ProgbarLogger``: Keras's progress display for ``fit``, ``evaluate`` and ``predict``."""

from __future__ import annotations

import sys
import time

from .base import Callback


class ProgbarLogger(Callback):
    """Keras's progress display, driven by ``params["verbose"]`` (``"auto"`` is 1):

    * ``verbose=1``: a live bar per epoch (tqdm's, when tqdm is installed: ``pip install convscope[progress]``);
    * ``verbose=2``, or 1 without tqdm: one line per epoch, Keras's
      ``3/3 - 0s - 5ms/step - accuracy: 0.9712 - loss: 0.0934 - val_accuracy: ...``.

    ``fit`` prints ``Epoch 2/10`` before each epoch when it runs more than one; its validation is silent.
    ``evaluate`` and ``predict`` show the same bar or line (``predict``'s without metrics).
    """

    def __init__(self):
        super().__init__()
        self.verbose, self.epochs, self.target = 1, 1, None
        self._called_in_fit = False
        self._bar = None
        self._start, self.seen = time.perf_counter(), 0

    def set_params(self, params):
        super().set_params(params)
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else verbose
        self.epochs, self.target = params.get("epochs", 1), params.get("steps")

    def on_train_begin(self, logs=None):
        self._called_in_fit = True

    def on_train_end(self, logs=None):
        self._called_in_fit = False

    def on_epoch_begin(self, epoch, logs=None):
        if self.verbose and self.epochs > 1:
            print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)
        self._begin()

    def on_train_batch_end(self, batch, logs=None):
        self._advance(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._finish(logs)

    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._begin()

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._advance(batch, logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._finish(logs)

    def on_predict_begin(self, logs=None):
        self._begin()

    def on_predict_batch_end(self, batch, logs=None):
        self._advance(batch, None)  # the predictions themselves are not shown, as in Keras

    def on_predict_end(self, logs=None):
        self._finish(None)

    def _begin(self):
        self._start, self.seen, self._bar = time.perf_counter(), 0, None
        if self.verbose != 1:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return
        # On standard output, where Keras draws its bar (tqdm's default is standard error).
        self._bar = tqdm(total=self.target, unit="step", dynamic_ncols=True, leave=True, file=sys.stdout,
                         bar_format="{n_fmt}/{total_fmt} {bar:20} {elapsed} {rate_inv_fmt}{postfix}")

    def _advance(self, batch, logs):
        self.seen = batch + 1
        if self._bar is not None:
            if logs:
                self._bar.set_postfix_str(format_logs(logs), refresh=False)
            self._bar.update(self.seen - self._bar.n)

    def _finish(self, logs):
        if self._bar is not None:
            if logs:
                self._bar.set_postfix_str(format_logs(logs), refresh=False)
            self._bar.close()
            self._bar = None
        elif self.verbose:
            print(progress_line(self.seen, self.target, time.perf_counter() - self._start, logs), flush=True)


def progress_line(seen: int, steps, seconds: float, logs) -> str:
    """Keras's ``verbose=2`` line: ``3/3 - 1s - 402ms/step - accuracy: 0.9712 - loss: 0.0934``.

    ``seen`` may be less than ``steps`` when a callback stopped the loop early.
    """
    steps = seen if steps is None else steps
    parts = [f"{seen:{len(str(steps))}d}/{steps}", f"{seconds:.0f}s", _per_step(seconds / max(seen, 1))]
    text = " - ".join(parts)
    return f"{text} - {format_logs(logs)}" if logs else text


def _per_step(seconds: float) -> str:
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


def format_logs(logs) -> str:
    """``accuracy: 0.9712 - loss: 0.0934 - val_accuracy: ...`` in Keras's order (train first, then val), each
    value as Keras's progress bar writes it: 4 decimals, or ``1.2346e-04`` when its magnitude is 0.001 or less."""
    items = sorted((logs or {}).items(), key=lambda kv: (kv[0].startswith("val_"), kv[0]))
    return " - ".join(f"{k}: {_number(v)}" for k, v in items)


def _number(value) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"
