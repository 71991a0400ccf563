"""``ProgbarLogger``: Keras's progress display for ``fit``, ``evaluate`` and ``predict``, fitted to where it goes."""

from __future__ import annotations

import shutil
import sys
import time

from .base import Callback

#: Seconds between the progress lines ``verbose=1`` writes during an epoch when there is no live bar.
HEARTBEAT_SECONDS = 10.0
#: Columns assumed when the terminal does not say (``COLUMNS`` unset and no size reported).
DEFAULT_COLUMNS = 80
#: The live bar's fields ahead of its step time and metrics (tqdm's names), and its cells: 20 as Keras's bar, down
#: to 8 to make room for the metrics.
_BAR = "{{n_fmt}}/{{total_fmt}} {{bar:{cells}}} {{elapsed}}<{{remaining}}"
_CELLS, _MIN_CELLS = 20, 8
#: Where every time shown is read (a test puts a fake clock here).
clock = time.perf_counter


class ProgbarLogger(Callback):
    """Keras's progress display, driven by ``params["verbose"]`` (``"auto"`` is 1, as in Keras):

    * ``verbose=1``, standard output a terminal: a live bar per epoch (tqdm's: ``pip install convscope[progress]``),
      ``120/422 █████▋        00:04<00:10 35ms/step - accuracy: 0.9123 - loss: 0.2358``, never wider than the
      terminal (its cells shrink from 20 to 8, then metrics that still do not fit are left off the live bar, the
      last first); it gives way to the epoch's line.
    * ``verbose=1`` anywhere else (a pipe, a file, CI, a notebook), or without tqdm: a line once
      ``HEARTBEAT_SECONDS`` have passed since the last one, after the batch that passes the mark
      (``  batch 120/422 - 10s - accuracy: 0.9000 - loss: 0.3100``, the running averages), then the epoch's line.
    * ``verbose=2``: the epoch's line alone.

    The epoch's line is Keras's ``3/3 - 0s - 5ms/step - accuracy: 0.9712 - loss: 0.0934 - val_accuracy: ...``
    (``progress_line``): whole when standard output is not a terminal, and on a terminal cut between metrics
    into lines that fit its width (``wrap_parts``), so that no metric is lost off the edge. The width is
    ``columns()``.

    ``fit`` prints ``Epoch 2/10`` before each epoch when it runs more than one; its validation is silent.
    ``evaluate`` and ``predict`` show the same bar or lines (``predict``'s without metrics).
    """

    def __init__(self):
        super().__init__()
        self.verbose, self.epochs, self.target = 1, 1, None
        self._called_in_fit = False
        self._bar, self._terminal = None, False
        self._start = self._last_line = clock()
        self.seen = 0

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
        self._start = self._last_line = clock()
        self.seen, self._bar = 0, None
        self._terminal = _is_terminal(sys.stdout)
        if self.verbose == 1 and self._terminal:
            self._bar = _live_bar(self.target)

    def _advance(self, batch, logs):
        self.seen = batch + 1
        if self._bar is not None:
            _draw(self._bar, self.seen, logs, columns())
        elif self.verbose == 1:
            now = clock()
            if now - self._last_line >= HEARTBEAT_SECONDS:
                self._last_line = now
                print(batch_line(self.seen, self.target, now - self._start, logs), flush=True)

    def _finish(self, logs):
        if self._bar is not None:
            self._bar.close()  # leave=False: the epoch's line takes the bar's place
            self._bar = None
        if self.verbose:
            parts = line_parts(self.seen, self.target, clock() - self._start, logs)
            lines = wrap_parts(parts, columns()) if self._terminal else [" - ".join(parts)]
            print("\n".join(lines), flush=True)


def progress_line(seen: int, steps, seconds: float, logs) -> str:
    """Keras's ``verbose=2`` line: ``3/3 - 1s - 402ms/step - accuracy: 0.9712 - loss: 0.0934``.

    ``seen`` may be less than ``steps`` when a callback stopped the loop early.
    """
    return " - ".join(line_parts(seen, steps, seconds, logs))


def line_parts(seen: int, steps, seconds: float, logs) -> list[str]:
    """``progress_line``'s pieces: ``["3/3", "1s", "402ms/step", "accuracy: 0.9712", "loss: 0.0934"]``."""
    return [_count(seen, steps), f"{seconds:.0f}s", _per_step(seconds / max(seen, 1)), *log_parts(logs)]


def batch_line(seen: int, steps, seconds: float, logs) -> str:
    """The line written during an epoch without a live bar: ``  batch 120/422 - 10s - accuracy: 0.9000 - ...``
    (the running averages so far)."""
    return "  " + " - ".join([f"batch {_count(seen, steps)}", f"{seconds:.0f}s", *log_parts(logs)])


def wrap_parts(parts: list[str], width: int) -> list[str]:
    """``parts`` joined by `` - `` into lines of at most ``width`` columns, cut only between parts; each further
    line starts with ``  - ``. A part wider than a line of its own stays whole (the terminal folds it)."""
    lines = [parts[0]]
    for part in parts[1:]:
        if len(lines[-1]) + len(" - ") + len(part) <= width:
            lines[-1] += " - " + part
        else:
            lines.append("  - " + part)
    return lines


def columns() -> int:
    """The terminal's width: ``COLUMNS`` when set, else what the terminal reports, else ``DEFAULT_COLUMNS``
    (a terminal that reports 0 columns included)."""
    return shutil.get_terminal_size((DEFAULT_COLUMNS, 24)).columns


def format_logs(logs) -> str:
    """``accuracy: 0.9712 - loss: 0.0934 - val_accuracy: ...`` in Keras's order (train first, then val), each
    value as Keras's progress bar writes it: 4 decimals, or ``1.2346e-04`` when its magnitude is 0.001 or less."""
    return " - ".join(log_parts(logs))


def log_parts(logs) -> list[str]:
    """``format_logs``'s pieces, one ``name: value`` per metric."""
    items = sorted((logs or {}).items(), key=lambda kv: (kv[0].startswith("val_"), kv[0]))
    return [f"{k}: {_number(v)}" for k, v in items]


def _count(seen: int, steps) -> str:
    steps = seen if steps is None else steps
    return f"{seen:{len(str(steps))}d}/{steps}"


def _per_step(seconds: float) -> str:
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


def _number(value) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _live_bar(total):
    """tqdm's bar for one epoch, or None without tqdm (the optional "progress" extra)."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    # On standard output, where Keras draws its bar (tqdm's default is standard error).
    return tqdm(total=total, unit="step", leave=False, file=sys.stdout, ncols=columns(), bar_format=_BAR.format(cells=_CELLS))


def _draw(bar, seen: int, logs, width: int) -> None:
    """Move ``bar`` to ``seen`` steps with the step time and the metrics in ``width`` columns: the bar's cells
    shrink first, then metrics are left off, the last first."""
    from tqdm.utils import disp_len

    state = {**bar.format_dict, "n": seen, "ncols": None}  # no width: measure the whole line, untrimmed
    per_step = 1 / state["rate"] if state["rate"] else state["elapsed"] / seen
    parts = [_per_step(per_step), *log_parts(logs)]
    for keep in range(len(parts), 0, -1):
        # Braces are tqdm's field marks: a metric's name may hold one.
        tail = (" " + " - ".join(parts[:keep])).replace("{", "{{").replace("}", "}}")
        over = disp_len(bar.format_meter(**dict(state, bar_format=_BAR.format(cells=_CELLS) + tail))) - width
        if over <= _CELLS - _MIN_CELLS:
            break
    cells = _CELLS - min(max(over, 0), _CELLS - _MIN_CELLS)  # what still overflows (under ~40 columns) tqdm trims
    bar.bar_format, bar.ncols = _BAR.format(cells=cells) + tail, width
    bar.update(seen - bar.n)
