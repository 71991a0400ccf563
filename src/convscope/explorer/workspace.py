"""What one explorer serves: a model (read once, never written), a few replicas of it lent to requests, the test
images, and a run folder's history and filter snapshots when it was opened on a run folder."""

from __future__ import annotations

import contextlib
import copy
import os
import queue
import threading

from .. import backend
from ..runs import CONFIG
from ..viz.evolution import load_snapshots
from ..viz.sources import load_test_set, model_path, open_model
from .compute import conv_kernel, describe, edited, mistakes

REPLICAS = 2
"""How many requests run the model at once (one replica each): more would only share the same cores, and each
replica costs the model's size in memory."""
WAIT_SECONDS = 30


class Busy(RuntimeError):
    """Every replica stayed lent for ``WAIT_SECONDS``: the server answers 503."""


class ModelPool:
    """Replicas of the model, each lent to one request at a time. A request's kernel edits are applied to its
    replica and undone when it is given back (``compute.edited``), so no request copies the model: memory is
    ``size`` models however many clients edit. The original is the first replica; the others are copied on
    first need."""

    def __init__(self, model, size: int = REPLICAS):
        self._model, self._size, self._made = model, size, 1
        self._free = queue.Queue()
        self._free.put(model)
        self._lock = threading.Lock()

    def _take(self):
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._made < self._size:
                self._made += 1
                return copy.deepcopy(self._model)
        try:
            return self._free.get(timeout=WAIT_SECONDS)
        except queue.Empty:
            raise Busy(f"the explorer is busy: {self._size} requests have held the model for {WAIT_SECONDS} s") from None

    @contextlib.contextmanager
    def lend(self, edits=()):
        """A replica with ``edits`` applied, for the ``with`` block only (ValueError for a bad edit)."""
        replica = self._take()
        try:
            with edited(replica, list(edits)) as model:
                yield model
        finally:
            self._free.put(replica)


class Workspace:
    """The read-only state behind the explorer; requests borrow replicas of ``model`` from ``pool``."""

    def __init__(self, source, dataset: str = "mnist", announce=print):
        self.source = os.fspath(source)
        self.model_file = model_path(self.source)
        self.model = open_model(self.source)
        if self.model.input_shape is None or tuple(self.model.input_shape[1:]) != (28, 28, 1):
            raise ValueError(f"the explorer shows models of 28x28x1 digits; {self.model_file!r} takes "
                             f"{self.model.input_shape}")
        if isinstance(self.model.output_shape, list):
            raise ValueError(f"the explorer shows models with one output (class probabilities); {self.model_file!r} "
                             f"has {len(self.model.output_shape)}")
        self.pool = ModelPool(self.model)
        with self.pool.lend() as model:
            self.calls = describe(model)
        self.dtype = str(self.model.parameters[0].value.dtype) if self.model.parameters else backend.floatx()
        self.dataset, self.x_test, self.y_test = load_test_set(dataset, announce)
        self.run_dir = self.source if os.path.isfile(os.path.join(self.source, CONFIG)) else None
        self.history = self._read_history()
        self.snapshots = self._read_snapshots()
        self._mistakes = None
        self._mistakes_lock = threading.Lock()

    def mistakes(self) -> list[int]:
        """Indices of the test images the model misclassifies (computed on first use, then kept)."""
        with self._mistakes_lock:
            if self._mistakes is None:
                with self.pool.lend() as model:
                    self._mistakes = mistakes(model, self.x_test, self.y_test)
            return self._mistakes

    def _read_history(self):
        from ..runs import read_history

        return None if self.run_dir is None else read_history(self.run_dir)

    def _read_snapshots(self):
        """``{layer: [(epoch, kernel, bias), ...]}`` for every conv layer with snapshots in the run folder."""
        if self.run_dir is None or not os.path.isdir(os.path.join(self.run_dir, "filters")):
            return {}
        out = {}
        for layer in self.model.layers:
            if conv_kernel(layer) is not None:
                out[layer.name] = load_snapshots(self.run_dir, layer.name)[1]
        return out
