"""``CSVLogger``: one CSV row per epoch."""

from __future__ import annotations

import collections.abc
import csv
import os

from .. import backend
from ..atomic import regular_destination
from .base import Callback


class CSVLogger(Callback):
    """Stream each epoch's logs to a CSV file, as Keras's ``CSVLogger(filename, separator=",", append=False)``.

    Columns: ``epoch`` (from 0), then the first epoch's log keys sorted; when none of them starts with
    ``val_``, the ``val_`` twin of every key is added after them (Keras does, so a later fit with
    validation data fits the same header), filled with ``NA`` while absent. Values are written as Python
    writes them (``0.6931471805599453``); a list or array as ``"[1, 2]"``. Rows end with ``\\r\\n`` (the csv
    module's Excel dialect, as Keras). ``append=True`` continues an existing file, writing the header only if
    the file is empty.

    >>> CSVLogger("training.csv")
    epoch,accuracy,loss,val_accuracy,val_loss
    0,0.5625,0.6941,0.55,0.6902
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f'CSVLogger: argument "separator" must be one character, received {separator!r}')
        self.sep, self.filename, self.append = separator, os.fspath(filename), append
        self.writer = self.keys = self.csv_file = None
        self.append_header = True

    def on_train_begin(self, logs=None):
        if self.append and os.path.exists(self.filename):
            with open(self.filename) as f:
                self.append_header = not f.readline()
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        # Appended row by row, so not through a temporary file; but never into a device, a FIFO or a folder.
        self.csv_file = open(regular_destination(self.filename), "a" if self.append else "w", newline="")
        self.writer = self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(key.startswith("val_") for key in self.keys):
                self.keys += [f"val_{key}" for key in self.keys]
        if self.writer is None:
            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch", *self.keys], dialect=csv.excel,
                                         delimiter=self.sep)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch, **{key: _cell(logs.get(key, "NA")) for key in self.keys}}
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


def _cell(value):
    if isinstance(value, str):
        return value
    if isinstance(value, collections.abc.Iterable) and not (isinstance(value, backend.xp.ndarray) and value.ndim == 0):
        return f'"[{", ".join(map(str, value))}]"'
    return value
