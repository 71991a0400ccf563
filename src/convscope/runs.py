"""Training runs that leave a folder every other tool can open, and that resume exactly.

A run folder holds:

    config.json             the exact configuration (recipe, data, seed, versions)
    model.convscope         the final model (written when training ends)
    checkpoint.convscope    the latest checkpoint: weights, optimizer state, epochs done,
                            random-generator state, history so far (rewritten atomically
                            after every complete epoch whose loss and weights are finite,
                            and once before the first)
    history.json / .csv     loss and metrics per epoch
    filters/epoch_000.npz   every conv layer's kernel and bias at initialization (000)
                            and after each epoch (001, 002, ...)

``resume`` reloads the checkpoint and the generator state, so a run killed at any
moment and resumed ends with the same weights, bit for bit, as one never interrupted
(on the same machine): the epoch in progress is simply run again.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import re
from dataclasses import asdict, dataclass

from . import __version__, backend, layers, optimizers, utils
from .callbacks import Callback
from .saving import atomic_write, load_checkpoint, save_model, write_text
from .zoo import MODELS

CONFIG = "config.json"
CHECKPOINT = "checkpoint.convscope"
FINAL_MODEL = "model.convscope"


@dataclass
class RunConfig:
    """Everything that determines a run; written to ``config.json``."""

    dataset: str = "mnist"
    model: str = "keras-convnet"
    epochs: int = 15
    batch_size: int = 128
    optimizer: str = "adam"
    learning_rate: float | None = None
    kernel_initializer: str = "glorot_uniform"
    activation: str | None = None
    seed: int = 0
    limit: int | None = None
    validation_split: float = 0.1


def build_model(cfg: RunConfig):
    """The recipe's model, compiled with the run's optimizer (Keras defaults unless a learning rate is given)."""
    if cfg.model not in MODELS:
        raise ValueError(f'--model must be one of {", ".join(MODELS)}, received {cfg.model!r}')
    kwargs = {"kernel_initializer": cfg.kernel_initializer}
    if cfg.activation:
        kwargs["activation"] = cfg.activation
    model = MODELS[cfg.model](**kwargs)
    optimizer = optimizers.get(cfg.optimizer)
    if cfg.learning_rate is not None:
        optimizer.learning_rate = cfg.learning_rate
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def prepare(x, y):
    """uint8 images (n, 28, 28) -> floats in [0, 1] shaped (n, 28, 28, 1); labels unchanged."""
    return (x.astype(backend.floatx()) / 255.0)[..., None], y


class RunRecorder(Callback):
    """Writes the history, filter snapshots and an atomic checkpoint after every epoch.

    Only complete, finite epochs are recorded: an epoch cut short (e.g. by ``TerminateOnNaN``),
    or one that ends with a non-finite loss or non-finite weights, writes nothing, stops
    training and sets ``refused`` to the reason, so the checkpoint on disk stays the last
    good one.
    """

    def __init__(self, run_dir, history: dict | None = None):
        super().__init__()
        self.run_dir = run_dir
        self.history = history or {}
        self.refused: str | None = None
        self._batches = 0

    @property
    def epochs_recorded(self) -> int:
        """Epochs in the history, i.e. the epoch count of the checkpoint on disk."""
        return len(next(iter(self.history.values()), []))

    def on_train_begin(self, logs=None):
        self.refused = None
        if not os.path.exists(os.path.join(self.run_dir, CHECKPOINT)):
            self._snapshot(0)
            self._checkpoint(0)

    def on_epoch_begin(self, epoch, logs=None):
        self._batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1

    def on_epoch_end(self, epoch, logs=None):
        problem = self._problem(logs or {})
        if problem:
            self.refused = f"epoch {epoch + 1} {problem}"
            self.model.stop_training = True
            return
        for key, value in (logs or {}).items():
            if key != "time":
                self.history.setdefault(key, []).append(float(value))
        self._snapshot(epoch + 1)
        write_history(self.run_dir, self.history)
        self._checkpoint(epoch + 1)

    def _problem(self, logs: dict) -> str | None:
        """Why this epoch's state must not be saved, or None."""
        steps = self.params.get("steps")
        if steps is not None and self._batches < steps:
            return f"stopped after {self._batches} of {steps} batches"
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(loss):
            return f"ended with loss {loss}"
        if not all(backend.xp.isfinite(w).all() for w in self.model.get_weights()):
            return "ended with NaN or infinite weights"
        return None

    def _checkpoint(self, epochs_done: int) -> None:
        state = {"epochs_done": epochs_done, "rng_state": _jsonable(backend.get_rng_state()), "history": self.history}
        save_model(self.model, os.path.join(self.run_dir, CHECKPOINT), training_state=state)

    def _snapshot(self, epoch: int) -> None:
        arrays = {}
        for layer in self.model.layers:
            if isinstance(layer, layers.Conv2D):
                arrays[f"{layer.name}/kernel"] = layer.kernel.value
                if layer.use_bias:
                    arrays[f"{layer.name}/bias"] = layer.bias.value
        folder = os.path.join(self.run_dir, "filters")
        os.makedirs(folder, exist_ok=True)
        with atomic_write(os.path.join(folder, f"epoch_{epoch:03d}.npz")) as f:
            backend.xp.savez(f, **arrays)


def write_history(run_dir, history: dict) -> None:
    write_text(os.path.join(run_dir, "history.json"), json.dumps(history, indent=1))
    keys = list(history)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["epoch", *keys])
    for i in range(len(history[keys[0]]) if keys else 0):
        writer.writerow([i + 1, *(history[k][i] for k in keys)])
    write_text(os.path.join(run_dir, "history.csv"), buf.getvalue())


def start(cfg: RunConfig, run_dir):
    """A fresh run: seed, build the model, write ``config.json``. Returns the model.

    The configuration is checked (by building the model) before the folder is
    created, so a bad setting leaves no empty run folder behind.
    """
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise ValueError(f"{run_dir!r} is a file, not a run folder; choose another --out")
    if os.path.exists(os.path.join(run_dir, CHECKPOINT)):
        raise ValueError(f"{run_dir!r} already holds a run; resume it with --resume or choose another --out")
    utils.set_random_seed(cfg.seed)
    layers.clear_session()
    model = build_model(cfg)
    os.makedirs(run_dir, exist_ok=True)
    remove_stale_temp_files(run_dir)  # a start killed before its first checkpoint may have left some
    record = {"run": asdict(cfg), "model": model.get_config(), "convscope": __version__,
              "numpy": backend.xp.__version__, "python": platform.python_version(), "floatx": backend.floatx()}
    write_text(os.path.join(run_dir, CONFIG), json.dumps(record, indent=1))
    return model


def resume(run_dir):
    """``(cfg, model, epochs_done, history)`` of an interrupted run, with the generator state restored."""
    path = os.path.join(run_dir, CONFIG)
    if not os.path.isfile(path):
        raise ValueError(f"{run_dir!r} is not a run folder (no {CONFIG})")
    with open(path, encoding="utf-8") as f:
        cfg = RunConfig(**json.load(f)["run"])
    if not os.path.exists(os.path.join(run_dir, CHECKPOINT)):
        # Stopped after writing its config but before its first checkpoint: start it again exactly as start() did.
        remove_stale_temp_files(run_dir)
        utils.set_random_seed(cfg.seed)
        layers.clear_session()
        return cfg, build_model(cfg), 0, {}
    model, state = load_checkpoint(os.path.join(run_dir, CHECKPOINT))
    backend.set_rng_state(state["rng_state"])
    remove_stale_temp_files(run_dir)
    return cfg, model, state["epochs_done"], state["history"]


# The hidden temp files atomic_write makes for a run's own files (".NAME.<random>.tmp"), and only those:
# a run folder given with --out may be any folder, and other programs' temp files are not ours to delete.
_RUN_TEMP = re.compile(r"\.(config\.json|checkpoint\.convscope|model\.convscope|history\.json|history\.csv)\.\w+\.tmp")
_SNAPSHOT_TEMP = re.compile(r"\.epoch_\d{3,}\.npz\.\w+\.tmp")


def remove_stale_temp_files(run_dir) -> list[str]:
    """Delete the hidden ``.NAME.*.tmp`` files that ``atomic_write`` leaves when a run is killed mid-write."""
    removed = []
    for folder, pattern in ((run_dir, _RUN_TEMP), (os.path.join(run_dir, "filters"), _SNAPSHOT_TEMP)):
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            if pattern.fullmatch(name) and os.path.isfile(path):
                os.remove(path)
                removed.append(path)
    return removed


def _jsonable(state: dict) -> dict:
    """The generator state as pure JSON (NumPy may hand back its big integers as Python ints already)."""
    return json.loads(json.dumps(state, default=int))
