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

One process at a time: ``start`` and ``resume`` take the folder's lock (``LOCK``, a
hidden file holding the owner's PID, locked with ``flock``) and keep it until the
process ends or calls ``unlock_run``; a second ``train`` into the folder, or a
``--resume`` of a run still training, is refused naming the PID that holds it. The
kernel drops the lock of a process that dies, however it dies, so a lock file left by
a killed run is simply taken over. While the lock is held, SIGTERM and SIGHUP raise
``atomic.Interrupted`` (a ``KeyboardInterrupt``): training stops as for Ctrl-C,
keeping the last checkpoint, and ``convscope train`` prints the resume command.

A run folder is a file like any other: ``resume`` checks ``config.json`` and the
checkpoint's training state (every setting's type and range, the epoch count, the
history, the generator state) and refuses a folder that does not add up, in one
line, before anything trains; ``RunRecorder`` checks the optimizer's step count
against the epochs done when training begins.
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import io
import json
import math
import os
import platform
import re
import stat
from dataclasses import asdict, dataclass, fields

from . import __version__, backend, layers, optimizers, utils
from .callbacks import Callback
from .saving import atomic_write, load_checkpoint, save_model, write_text
from .atomic import stop_signals_interrupt
from .zoo import MODELS

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not locked against each other
    fcntl = None

CONFIG = "config.json"
CHECKPOINT = "checkpoint.convscope"
FINAL_MODEL = "model.convscope"
LOCK = ".convscope-train.lock"
DATASETS = ("mnist", "fashion-mnist", "mnist-sample")
CONFIG_MAX_BYTES = 2**20
"""``config.json`` holds a few settings and the recipe's layer configs (about 5 KB): a bigger one is not a run's."""


def model_file(path) -> str:
    """The model file named by ``path``: the file itself, or a run folder's final model (else its checkpoint: a run
    still training or interrupted). Every command and tool that takes a model opens it through here."""
    path = os.fspath(path)
    if os.path.isdir(path):
        for name in (FINAL_MODEL, CHECKPOINT):
            if os.path.isfile(os.path.join(path, name)):
                return os.path.join(path, name)
        raise ValueError(f"{path!r} is a folder without {FINAL_MODEL} or {CHECKPOINT}")
    return path


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


def _integer(low: int, high: int | None = None):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v and (high is None or v <= high)


def _number(accept):
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and accept(v)


def _text(v) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 100


# setting -> (accepts the value, what is expected); None is accepted where the default is None.
SETTINGS = {
    "dataset": (lambda v: v in DATASETS, "one of " + ", ".join(DATASETS)),
    "model": (lambda v: v in MODELS, "one of " + ", ".join(MODELS)),
    "epochs": (_integer(1), "an integer >= 1"),
    "batch_size": (_integer(1), "an integer >= 1"),
    "optimizer": (_text, "an optimizer name"),
    "learning_rate": (_number(lambda v: v > 0), "a finite number > 0 or null"),
    "kernel_initializer": (_text, "an initializer name"),
    "activation": (_text, "an activation name or null"),
    "seed": (_integer(0, 2**32 - 1), "an integer from 0 to 2**32 - 1"),
    "limit": (_integer(1), "an integer >= 1 or null"),
    "validation_split": (_number(lambda v: 0 <= v < 1), "a number in [0, 1)"),
}
_NULLABLE = {f.name for f in fields(RunConfig) if f.default is None}


def checked_config(values, where: str) -> RunConfig:
    """``values`` (a dict of every ``RunConfig`` setting) as a RunConfig, or one ValueError naming ``where``,
    the setting, what is expected and what was found (a missing or unknown setting included)."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: the run settings must be an object of {len(SETTINGS)} settings, found "
                         f"{type(values).__name__}")
    unknown = sorted(set(values) - set(SETTINGS), key=str)
    missing = [name for name in SETTINGS if name not in values]
    if unknown or missing:
        raise ValueError(f"{where}: " + "; ".join(
            ([f"unknown setting(s) {', '.join(map(repr, unknown))}"] if unknown else [])
            + ([f"missing setting(s) {', '.join(map(repr, missing))}"] if missing else [])))
    for name, (accept, expected) in SETTINGS.items():
        value = values[name]
        if not (value is None and name in _NULLABLE) and not accept(value):
            raise ValueError(f"{where}: setting {name!r} must be {expected}, found {_shown(value)}")
    return RunConfig(**values)


def _shown(value) -> str:
    try:
        text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    except ValueError:  # an integer too long to print
        text = f"an integer of {value.bit_length()} bits"
    return text if len(text) <= 60 else text[:57] + "..."


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
    """Writes the filter snapshot, an atomic checkpoint and then the history after every epoch.

    Only complete, finite epochs are recorded: an epoch cut short (e.g. by ``TerminateOnNaN``),
    or one that ends with a non-finite loss or non-finite weights, writes nothing, stops
    training and sets ``refused`` to the reason, so the checkpoint on disk stays the last
    good one. ``history`` grows only once the checkpoint holding it is written, so it always
    says what the checkpoint on disk holds (``history.json`` never runs ahead of it).

    When training begins, the optimizer's step count must be what the epochs done make
    (epochs x batches per epoch): a checkpoint whose ``iterations`` were altered (2**63 - 1
    would overflow when the next checkpoint is saved) is refused before the first batch.
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
        steps, optimizer = self.params.get("steps"), self.model.optimizer
        if steps is not None and optimizer is not None and optimizer.iterations != self.epochs_recorded * steps:
            raise ValueError(f"{os.path.join(self.run_dir, CHECKPOINT)!r}: its optimizer has made "
                             f"{optimizer.iterations} steps, but {self.epochs_recorded} epochs of {steps} batches make "
                             f"{self.epochs_recorded * steps}: the checkpoint was altered or comes from another run; nothing "
                             "was trained")
        if not os.path.exists(os.path.join(self.run_dir, CHECKPOINT)):
            self._snapshot(0)
            self._checkpoint(0, self.history)

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
        history = {key: list(values) for key, values in self.history.items()}
        for key, value in (logs or {}).items():
            if key != "time":
                history.setdefault(key, []).append(float(value))
        self._snapshot(epoch + 1)
        self._checkpoint(epoch + 1, history)
        self.history = history
        write_history(self.run_dir, history)

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

    def _checkpoint(self, epochs_done: int, history: dict) -> None:
        state = {"epochs_done": epochs_done, "rng_state": _jsonable(backend.get_rng_state()), "history": history}
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


MAX_HISTORY_BYTES = 16 * 2**20   # 100,000 epochs of ten metrics fit in a tenth of it


def read_history(run_dir) -> dict | None:
    """``history.json`` of ``run_dir`` as ``{metric: [value, ...]}``, or None when there is none.

    The file comes from a folder anyone may have edited: one larger than MAX_HISTORY_BYTES is refused before it is
    read, and anything but an object of lists of numbers (``null`` allowed) is refused in one line. Values that are
    not finite (a diverged run's NaN) become None, so that the explorer's JSON never carries NaN."""
    path = os.path.join(run_dir, "history.json")
    if not os.path.isfile(path):
        return None
    if os.path.getsize(path) > MAX_HISTORY_BYTES:
        raise ValueError(f"{path}: {os.path.getsize(path)} bytes, more than the {MAX_HISTORY_BYTES} a run history "
                         "can need")
    with open(path, encoding="utf-8") as f:
        try:
            history = json.load(f)
        except (ValueError, RecursionError) as e:  # bad JSON, a 5000-digit number, nesting too deep
            raise ValueError(f"{path}: not valid JSON ({e})") from None
    numbers = (int, float, type(None))
    if not isinstance(history, dict) or not all(
            isinstance(v, list) and all(isinstance(x, numbers) and not isinstance(x, bool) for x in v)
            for v in history.values()):
        raise ValueError(f"{path}: expected {{metric: [number, ...]}}, as convscope train writes it")
    return {key: [x if x is None or math.isfinite(x) else None for x in values] for key, values in history.items()}


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
    """A fresh run: check the settings, lock the folder, seed, build the model, write ``config.json``.
    Returns the model.

    The configuration is checked (every setting, then by building the model) before the
    folder is created, so a bad setting leaves no empty run folder behind. The folder's lock
    is kept (see the module docstring); a refusal releases it.
    """
    checked_config(asdict(cfg), "the run settings")
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise ValueError(f"{run_dir!r} is a file, not a run folder; choose another --out")
    if os.path.isdir(run_dir):
        lock_run(run_dir)  # first: a run still training there is refused naming its PID
    try:
        if os.path.exists(os.path.join(run_dir, CHECKPOINT)):
            raise ValueError(f"{run_dir!r} already holds a run; resume it with --resume or choose another --out")
        utils.set_random_seed(cfg.seed)
        layers.clear_session()
        model = build_model(cfg)
        os.makedirs(run_dir, exist_ok=True)
        lock_run(run_dir)
        remove_stale_temp_files(run_dir)  # a start killed before its first checkpoint may have left some
        record = {"run": asdict(cfg), "model": model.get_config(), "convscope": __version__,
                  "numpy": backend.xp.__version__, "python": platform.python_version(), "floatx": backend.floatx()}
        write_text(os.path.join(run_dir, CONFIG), json.dumps(record, indent=1))
    except BaseException:
        unlock_run(run_dir)
        raise
    return model


def resume(run_dir):
    """``(cfg, model, epochs_done, history)`` of an interrupted run, with the generator state restored.

    The folder is locked first (a run still training there is refused naming its PID), then
    ``config.json`` and the checkpoint's training state are checked: a folder that does not add
    up is refused with one ValueError, the lock released, nothing changed.
    """
    path = os.path.join(run_dir, CONFIG)
    if not os.path.isfile(path):
        raise ValueError(f"{run_dir!r} is not a run folder (no {CONFIG})")
    lock_run(run_dir)
    try:
        cfg = read_config(path)
        checkpoint = os.path.join(run_dir, CHECKPOINT)
        if not os.path.exists(checkpoint):
            # Stopped after writing its config but before its first checkpoint: start it again exactly as start() did.
            remove_stale_temp_files(run_dir)
            utils.set_random_seed(cfg.seed)
            layers.clear_session()
            return cfg, build_model(cfg), 0, {}
        model, state = load_checkpoint(checkpoint)
        epochs_done, history = _checked_state(state, cfg, checkpoint)
        remove_stale_temp_files(run_dir)
    except BaseException:
        unlock_run(run_dir)
        raise
    return cfg, model, epochs_done, history


def read_config(path) -> RunConfig:
    """The settings of a run folder's ``config.json``, checked (``checked_config``); a ValueError naming the file."""
    size = os.path.getsize(path)
    if size > CONFIG_MAX_BYTES:
        raise ValueError(f"{path!r} is {size} bytes; a run's {CONFIG} is a few KB (at most {CONFIG_MAX_BYTES})")
    try:
        with open(path, encoding="utf-8") as f:
            record = json.loads(f.read(CONFIG_MAX_BYTES + 1), parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{path!r} is not a run's {CONFIG}: {e}") from e
    if not isinstance(record, dict) or not isinstance(record.get("run"), dict):
        found = f"keys {sorted(record)[:10]}" if isinstance(record, dict) else type(record).__name__
        raise ValueError(f'{path!r} is not a run\'s {CONFIG}: expected an object whose "run" holds the settings, '
                         f"found {found}")
    return checked_config(record["run"], path)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a finite number")


def _checked_state(state, cfg: RunConfig, path: str) -> tuple[int, dict]:
    """``(epochs_done, history)`` of a checkpoint's training state, the generator state restored; else a
    ValueError naming ``path`` and what does not add up."""
    keys = ("epochs_done", "rng_state", "history")
    if not isinstance(state, dict) or not all(k in state for k in keys):
        found = f"keys {sorted(state, key=str)[:10]}" if isinstance(state, dict) else _shown(state)
        raise ValueError(f"{path!r} is not a run's checkpoint: its training state must hold {', '.join(keys)}; "
                         f"found {found}")
    epochs_done, history = state["epochs_done"], state["history"]
    if not _integer(0, cfg.epochs)(epochs_done):
        raise ValueError(f"{path!r}: epochs_done must be an integer from 0 to the run's {cfg.epochs} epochs, "
                         f"found {_shown(epochs_done)}")
    if not isinstance(history, dict) or (epochs_done > 0 and not history):
        raise ValueError(f"{path!r}: history must be an object of per-epoch lists ({epochs_done} epochs done), "
                         f"found {_shown(history) if not isinstance(history, dict) else 'none'}")
    for key, values in history.items():
        # Any number: a logged metric may be infinite (a validation loss), the loss itself is checked when recorded.
        if not (isinstance(values, list) and len(values) == epochs_done
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)):
            shown = f"a list of {len(values)}" if isinstance(values, list) else _shown(values)
            raise ValueError(f"{path!r}: history {key!r} must be a list of {epochs_done} numbers (one per epoch "
                             f"done), found {shown}")
    try:
        backend.set_rng_state(state["rng_state"])
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise ValueError(f"{path!r}: rng_state is not the state of a PCG64 generator "
                         f"({type(e).__name__}: {e})") from e
    return epochs_done, history


# -- one process per run folder ---------------------------------------------------------------
_held: dict[str, tuple[int, contextlib.ExitStack]] = {}  # real path of a folder -> (its lock's descriptor, signals)


def lock_run(run_dir) -> None:
    """Hold ``run_dir``'s lock until this process ends or calls ``unlock_run`` (again: nothing to do).

    A ValueError naming the PID that holds it when another process does. The lock file
    (``LOCK``) holds the holder's PID; it is ``flock``ed, so a holder that died left only a file,
    which is taken over. While held, SIGTERM and SIGHUP raise ``Interrupted`` (``stop_signals_interrupt``).
    """
    key = os.path.realpath(run_dir)
    if key in _held or fcntl is None:
        return
    path = os.path.join(key, LOCK)
    while True:
        try:
            # No symlink followed, nothing blocks (a FIFO planted there), not inherited by child programs.
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise ValueError(f"{run_dir!r}: cannot take the run folder's lock {path!r}: {e.strerror or e}") from e
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ValueError(f"{run_dir!r}: the run folder's lock {path!r} is not a regular file; remove it")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                raise ValueError(f"{run_dir!r} is in use by another convscope train (PID {holder}): one process at a "
                                 f"time trains in a run folder; wait for it to end, stop it (kill {holder}; it keeps "
                                 "its last checkpoint), or choose another folder") from None
            except OSError as e:  # a file system without locks
                raise ValueError(f"{run_dir!r}: cannot lock the run folder: {e.strerror or e}") from e
            if _same_file(fd, path):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # its holder removed the file between our open and our lock: lock the one on disk now
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    signals = contextlib.ExitStack()
    signals.enter_context(stop_signals_interrupt())
    _held[key] = (fd, signals)


def unlock_run(run_dir) -> None:
    """Release ``run_dir``'s lock if this process holds it, removing the lock file."""
    key = os.path.realpath(run_dir)
    held = _held.pop(key, None)
    if held is None:
        return
    fd, signals = held
    with contextlib.suppress(OSError):
        os.remove(os.path.join(key, LOCK))  # still locked: a process that opened it meanwhile fails, then retries
    os.close(fd)
    signals.close()


@atexit.register
def _unlock_all() -> None:
    for key in list(_held):
        unlock_run(key)


def _holder(fd: int) -> str:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return text if text.isdigit() else "unknown"


def _same_file(fd: int, path: str) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
    except FileNotFoundError:
        return False


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
