"""What one explorer serves: a model (read once, never written), the test images, and a run folder's history
and filter snapshots when it was opened on a run folder."""

from __future__ import annotations

import copy
import json
import os
import threading

from .. import backend
from ..runs import CONFIG
from ..viz.evolution import load_snapshots
from ..viz.sources import load_test_set, model_path, open_model
from .compute import conv_kernel, describe, mistakes


class Workspace:
    """The read-only state behind the explorer; requests work on copies of ``model`` (see ``compute.edited_copy``)."""

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
        self.calls = describe(copy.deepcopy(self.model))
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
            if self._mistakes is None:  # on a copy: a model is not to be run by two threads at once
                self._mistakes = mistakes(copy.deepcopy(self.model), self.x_test, self.y_test)
            return self._mistakes

    def _read_history(self):
        path = None if self.run_dir is None else os.path.join(self.run_dir, "history.json")
        if path is None or not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    def _read_snapshots(self):
        """``{layer: [(epoch, kernel, bias), ...]}`` for every conv layer with snapshots in the run folder."""
        if self.run_dir is None or not os.path.isdir(os.path.join(self.run_dir, "filters")):
            return {}
        out = {}
        for layer in self.model.layers:
            if conv_kernel(layer) is not None:
                out[layer.name] = load_snapshots(self.run_dir, layer.name)[1]
        return out
