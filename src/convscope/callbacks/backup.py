"""``BackupAndRestore``: resume an interrupted ``fit`` where it stopped, as if it had never stopped."""

from __future__ import annotations

import json
import os
import shutil

from .. import backend, formats
from ..atomic import atomic_write, write_text
from ..errors import ConvscopeFileError
from .base import Callback

MODEL_FILE = "latest.convscope"
METADATA_FILE = "training_metadata.json"


class BackupAndRestore(Callback):
    """Back up the training state after every epoch (or every ``save_freq`` batches); a later ``fit`` with
    the same callback starts from the last backup.

    ``BackupAndRestore(backup_dir, save_freq="epoch", double_checkpoint=False, delete_checkpoint=True)``,
    Keras 3's arguments:

    * ``backup_dir``: a folder for this callback alone; it holds ``latest.convscope`` (the model file:
      weights and optimizer state) and ``training_metadata.json`` (``{"epoch": <epochs done>, "batch":
      <last batch>, "rng_state": <the global generator's state>}``);
    * ``save_freq``: ``"epoch"`` or a number of training batches (counted across epochs); a backup made
      inside an epoch resumes at the start of that epoch, with the weights of that batch (as in Keras);
    * ``double_checkpoint=True`` keeps the previous backup too (``*.bkp``), used when the latest cannot be
      read;
    * ``delete_checkpoint=True`` removes ``backup_dir`` when ``fit`` ends normally.

    Restoring, at ``on_train_begin``: the weights and the optimizer state (slots, iterations, learning
    rate) are put into the model, the global random generator (``convscope.backend``) continues where it
    was, and ``model._initial_epoch`` is set to the epochs done, which ``fit`` starts from. So a run
    interrupted after epoch 2 and fitted again ends with exactly the weights of an uninterrupted run
    (shuffling and dropout draw the same numbers). Keras keeps the weights and optimizer state in a
    ``.weights.h5`` file and does not restore the random state.

    The model must be built, and saveable with ``model.save`` (Sequential or functional).

    >>> callback = BackupAndRestore(backup_dir="/tmp/backup")
    >>> model.fit(x, y, epochs=10, callbacks=[callback])   # interrupted at epoch 4 ...
    >>> model.fit(x, y, epochs=10, callbacks=[callback])   # ... runs epochs 4 to 9
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False, delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError("Invalid value for argument `save_freq`. "
                             f"Received: save_freq={save_freq!r}. Expected either 'epoch' or a positive integer value.")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq, self.double_checkpoint, self.delete_checkpoint = save_freq, double_checkpoint, delete_checkpoint
        self._model_path = os.path.join(self.backup_dir, MODEL_FILE)
        self._metadata_path = os.path.join(self.backup_dir, METADATA_FILE)
        self._batches_seen_since_last_saving = self._last_batch_seen = self._current_epoch = 0
        self._epoch_rng_state = None

    def on_train_begin(self, logs=None):
        if not self.model.built:
            raise ValueError("To use the BackupAndRestore callback, your model must be built before you call "
                             f"`fit()`. Model {self.model.name!r} is unbuilt: give it an Input or call it on data.")
        try:
            self._restore()
        except (OSError, ConvscopeFileError, json.JSONDecodeError, KeyError):
            # The latest backup is unreadable (e.g. cut short): fall back on the previous one, if kept.
            if not os.path.exists(self._model_path + ".bkp"):
                raise
            shutil.copyfile(self._model_path + ".bkp", self._model_path)
            if os.path.exists(self._metadata_path + ".bkp"):
                shutil.copyfile(self._metadata_path + ".bkp", self._metadata_path)
            elif os.path.exists(self._metadata_path):
                os.remove(self._metadata_path)
            self._restore()

    def _restore(self) -> None:
        if os.path.exists(self._model_path):
            saved = formats.loader_for(self._model_path)(self._model_path, compile=True)
            self.model.set_weights(saved.get_weights())
            if self.model.optimizer is not None and saved.optimizer is not None:
                self.model.optimizer.set_state(saved.optimizer.get_state(), self.model.trainable_parameters)
        if os.path.exists(self._metadata_path):
            with open(self._metadata_path) as f:
                metadata = json.load(f)
            self.model._initial_epoch = metadata["epoch"]
            self._current_epoch = metadata["epoch"]
            backend.set_rng_state(metadata["rng_state"])

    def on_epoch_begin(self, epoch, logs=None):
        # Before the epoch draws its shuffle: what a backup made inside this epoch resumes from.
        self._epoch_rng_state = backend.get_rng_state()

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save(self._epoch_rng_state)

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch, self._last_batch_seen = epoch + 1, 0
        if self.save_freq == "epoch":
            self._save(backend.get_rng_state())

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and os.path.exists(self.backup_dir):
            shutil.rmtree(self.backup_dir)

    def _should_save_on_batch(self, batch) -> bool:
        if self.save_freq == "epoch":
            return False
        added = batch + 1 if batch <= self._last_batch_seen else batch - self._last_batch_seen
        self._batches_seen_since_last_saving += added
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _save(self, rng_state) -> None:
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint:
            for path in (self._model_path, self._metadata_path):
                if os.path.exists(path):
                    with open(path, "rb") as source, atomic_write(path + ".bkp") as copy:
                        shutil.copyfileobj(source, copy)
        self.model.save(self._model_path)
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen, "rng_state": rng_state}
        write_text(self._metadata_path, json.dumps(metadata))
