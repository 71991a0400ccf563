"""``History``: what ``fit`` returns, every epoch's logs as lists."""

from __future__ import annotations

from .base import Callback


class History(Callback):
    """Records every epoch's logs: ``history.history["loss"]`` is one value per epoch, ``history.epoch`` the
    epoch numbers (from 0; from ``initial_epoch`` when ``fit`` resumes), ``history.params`` what ``fit`` set.

    As in Keras, ``epoch`` restarts at each ``fit`` while ``history`` keeps growing if the same History is
    passed again; the model's ``history`` attribute is set to it after each epoch.
    """

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        self.model.history = self
