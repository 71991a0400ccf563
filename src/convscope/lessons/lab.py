"""What every lesson shares: the bench it runs on (``Lab``), what it hands back (``LessonResult``),
the data, the model it studies and the small helpers that several lessons need.

A lesson records numbers, tables and pictures on the lab, and states its claim as
``Check``s: a measured value, a relation and an explicit limit. The lesson's verdict
is True when every check holds.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .. import backend, datasets, zoo
from ..layers import Conv2D
from ..layers.base import snake_case
from ..models import Model, Sequential
from ..saving import load_model

RELATIONS = {"<=": lambda v, limit: v <= limit, ">=": lambda v, limit: v >= limit, "==": lambda v, limit: v == limit}


@dataclass
class Check:
    """One measured statement: ``value relation limit``, e.g. max |difference| <= 1e-12."""

    claim: str
    value: float
    relation: str
    limit: float

    @property
    def passed(self) -> bool:
        # NaN fails every relation: a check that could not be measured does not hold.
        return bool(RELATIONS[self.relation](float(self.value), float(self.limit)))

    def line(self) -> str:
        return f"{'ok    ' if self.passed else 'FAILED'} {self.claim}: {fmt(self.value)} {self.relation} {fmt(self.limit)}"


@dataclass
class LessonResult:
    """A lesson's outcome: its numbers, tables, checks, pictures, and the verdict (all checks hold)."""

    name: str
    title: str
    explanation: str
    question: str = ""
    notes: list = field(default_factory=list)
    numbers: dict = field(default_factory=dict)
    tables: list = field(default_factory=list)
    checks: list = field(default_factory=list)
    pictures: list = field(default_factory=list)

    @property
    def verdict(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failures(self) -> list:
        return [c for c in self.checks if not c.passed]

    def report(self, introduction: bool = True) -> str:
        """Everything a reader needs, as text: title and explanation (if ``introduction``), notes, numbers,
        tables, checks, pictures, and the verdict line (PASSED: ... or FAILED: ...)."""
        lines = introduce(self.name, self.title, self.explanation, self.question) if introduction else []
        lines += [f"  {note}" for note in self.notes]
        lines += [f"  {key}: {fmt(value)}" for key, value in self.numbers.items()]
        for title, header, rows in self.tables:
            lines += ["", f"  {title}", *format_table(header, rows)]
        lines += ["", *(f"  {c.line()}" for c in self.checks)]
        lines += [f"  picture: {path}" for path in self.pictures]
        if self.verdict:
            lines.append(f"PASSED: {self.name}: {self.title}")
        else:
            failed = "; ".join(f"{c.claim} ({fmt(c.value)}, required {c.relation} {fmt(c.limit)})" for c in self.failures)
            lines.append(f"FAILED: {self.name}: {failed or 'no check was made'}")
        return "\n".join(lines)


def introduce(name, title, explanation, question="") -> list[str]:
    """The lines a lesson opens with: its title, the learner's question it answers (when given), its explanation."""
    return [f"== Lesson {name}: {title} ==", "", *([f"Question: {question}", ""] if question else []),
            explanation.strip(), ""]


def fmt(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return f"{value:.4g}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.3e}"
    return str(value)


def format_table(header, rows) -> list[str]:
    cells = [list(map(str, header))] + [[fmt(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return ["    " + "  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]


class Lab:
    """The bench a lesson runs on: its settings, data, model, and the result it fills in.

    ``model`` is the user's trained model (a Sequential or graph, a ``.convscope`` / ``.keras`` /
    ``.h5`` file or a run folder) or None, in which case lessons that study a trained model get a small one
    trained here. ``fast`` means the offline sample and small sizes (seconds);
    otherwise full MNIST when it is found on disk. ``out`` is the folder for pictures
    (None: draw none). ``layer`` names the Conv2D layer a lesson studies (``conv_layers``).
    """

    def __init__(self, result: LessonResult, model=None, fast=False, out=None, layer=None):
        self.result = result
        self.fast = fast
        self.out = out
        self._pictures = None   # the viz.outputs.PictureFolder of out, made with the first picture
        self.layer = layer
        self.model_path = None
        if isinstance(model, (str, os.PathLike)):
            self.model_path = model_file(model)
            model = load_model(self.model_path)
        if model is not None and not isinstance(model, Model):
            raise TypeError(f"lessons: argument \"model\" must be a convscope Model or a model file, received {type(model).__name__}")
        self.user_model = model
        if model is not None:
            self.note(f"model: {self.model_path or 'the model given'} ({model.count_params():,} parameters)")

    # -- what the lesson records ---------------------------------------------------------------
    def note(self, text: str) -> None:
        if text not in self.result.notes:
            self.result.notes.append(text)

    def number(self, name: str, value) -> None:
        self.result.numbers[name] = value

    def table(self, title: str, header, rows) -> None:
        self.result.tables.append((title, list(header), [list(r) for r in rows]))

    def check(self, claim: str, value, relation: str, limit) -> None:
        self.result.checks.append(Check(claim, float(value), relation, float(limit)))

    def picture(self, filename: str, draw, *args, **kwargs) -> None:
        """Draw ``draw(*args, **kwargs)`` (a matplotlib Figure) into ``out/filename``; nothing when ``out`` is None.
        ``filename`` may hold a layer name from the user's file: it is made safe and kept inside ``out`` as
        ``convscope show`` does (``viz.outputs``)."""
        if self.out is None:
            return
        from ..viz import save_figure
        from ..viz.outputs import PictureFolder

        if self._pictures is None:
            self._pictures = PictureFolder(self.out)
        stem, suffix = os.path.splitext(filename)
        path = self._pictures.path(stem, suffix=suffix)
        try:
            figure = draw(*args, **kwargs)
        except ImportError as e:   # no matplotlib: the numbers and the verdict stand without pictures
            self.note(f"pictures left out: {e}")
            return
        self.result.pictures.append(save_figure(figure, path))

    def progress(self, iterable, total=None, description=""):
        """``iterable``'s items, one by one, while a progress display shows how far the step has come: the
        ONE way a lesson shows progress for a step longer than a few seconds.

        The display is fit's (``callbacks.progbar``): tqdm's bar on standard output when tqdm is installed
        (``pip install convscope[progress]``) and standard output is a terminal, else plain lines such as
        ``  initialization: training he_normal: 234/468 - 12s - 51ms/step``, one at every tenth of the way
        (every step when ``total`` is unknown), which read well in a log or a captured report where a bar's
        redrawing would leave hundreds of lines. ``total``: the number of items (default ``len(iterable)``
        where it has one); ``description`` names the step."""
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)
        label = f"{self.result.name}: {description}" if description else self.result.name
        if sys.stdout.isatty():
            try:
                from tqdm.auto import tqdm
            except ImportError:   # tqdm is the optional "progress" extra: plain lines then
                pass
            else:
                return tqdm(iterable, total=total, desc=f"  {label}", unit="step", dynamic_ncols=True, leave=True,
                            file=sys.stdout)
        return progress_lines(iterable, total, label)

    # -- what the lesson works on -----------------------------------------------------------------
    def data(self):
        """``(x_train, y_train), (x_test, y_test)``: digits as the studied model takes them, integer labels.

        Floats in [0, 1] shaped (n, 28, 28, 1) for an MNIST model; for another input shape (an imported
        graph such as MobileNetV2), resized, the gray copied into every channel and scaled to the model's
        range (``viz.sources.input_adapter``), with fewer training images when the images are large."""
        name, data = load_digits(self.fast)
        adapter = self.adapter()
        if adapter is None or adapter.is_mnist:
            self.note(f"data: {name}")
            return data
        key = (name, adapter)
        if key not in _ADAPTED:
            (x, y), (x_test, y_test) = data
            keep = max(1, min(len(x), ADAPTED_VALUES // (adapter.height * adapter.width * adapter.channels)))
            _ADAPTED[key] = ((adapter(x[:keep, :, :, 0] * 255.0), y[:keep]),
                             (adapter(x_test[:, :, :, 0] * 255.0), y_test))
        (x, _), _ = _ADAPTED[key]
        self.note(f"data: {name}, {adapter.describe()[len('input: '):]}"
                  + ("" if len(x) == len(data[0][0]) else f"; {len(x):,} of the {len(data[0][0]):,} training images "
                     f"(the {adapter.height}x{adapter.width}x{adapter.channels} copies are large)"))
        return _ADAPTED[key]

    def digits(self):
        """The MNIST digits themselves, floats in [0, 1] shaped (n, 28, 28, 1), whatever model is studied:
        for the experiments that build their own small layers."""
        name, data = load_digits(self.fast)
        self.note(f"digits for the lesson's own layers: {name}")
        return data

    def adapter(self):
        """How digits become the user's model's input (``viz.sources.InputAdapter``); None without a user model."""
        if self.user_model is None:
            return None
        from ..viz.sources import input_adapter

        return input_adapter(self.user_model)

    def model(self) -> Sequential:
        """The trained model the lesson studies: the user's, else a Keras convnet trained here (cached)."""
        if self.user_model is not None:
            return self.user_model
        (x, y), (x_test, y_test) = self.data()
        key = (len(x), len(x_test))
        if key not in _DEFAULT_MODELS:
            with seeded(0):
                model = fresh_model(self.architecture())
                model.fit(x, y, batch_size=128, epochs=1, verbose=0)
            _DEFAULT_MODELS[key] = (model, model.evaluate(x_test, y_test, verbose=0)[1])
        model, accuracy = _DEFAULT_MODELS[key]
        self.note(f"model: none given, so the Keras MNIST convnet trained here for 1 epoch on {len(x):,} images "
                  f"(seed 0; test accuracy {accuracy:.4f})")
        return model

    def architecture(self) -> dict:
        """The config of the user's model (to rebuild it untrained), else of the Keras convnet."""
        return self.user_model.get_config() if self.user_model is not None else keras_convnet_config()

    def conv_layers(self, model) -> list:
        """The Conv2D layers of ``model``'s own graph, in order, the one named by ``--layer`` first.

        A nested model's layers are left out: ``model.trace`` records a nested model as one call, so the
        lessons cannot see what its inner layers received."""
        layers = [layer for layer in model.layers if type(layer) is Conv2D]
        if self.layer is None:
            if not layers:
                raise ValueError(f"lesson {self.result.name}: the model has no Conv2D layer of its own")
            return layers
        chosen = self.chosen(model)
        if type(chosen) is not Conv2D:
            raise ValueError(f"lesson {self.result.name}: layer {chosen.name!r} is a {type(chosen).__name__}, not a "
                             f"Conv2D; the model's Conv2D layers: {', '.join(l.name for l in layers) or 'none'}")
        self.note(f"layer studied: {chosen.name} (--layer)")
        return [chosen] + [layer for layer in layers if layer is not chosen]

    def chosen(self, model):
        """The layer ``--layer`` names, among ``model``'s own layers (ValueError naming the nested model that
        holds it, or listing the layers)."""
        names = [layer.name for layer in model.layers]
        if self.layer in names:
            return model.get_layer(self.layer)
        for outer in model.layers:
            if hasattr(outer, "layers") and any(self.layer == l.name for l in walk(outer)):
                raise ValueError(f"lesson {self.result.name}: layer {self.layer!r} is inside the nested model "
                                 f"{outer.name!r}, which model.trace records as one call; choose a layer of the "
                                 f"outer model, or run the lesson on {outer.name!r} itself")
        raise ValueError(f"lesson {self.result.name}: no layer named {self.layer!r}; the layers: {', '.join(names)}")


def progress_lines(iterable, total, label):
    """``iterable``'s items, printing fit's plain progress line (``progbar.progress_line``) after the steps that
    complete a tenth of ``total`` (every step when ``total`` is None)."""
    from ..callbacks.progbar import progress_line

    start, marks = time.perf_counter(), set() if total is None else {(total * k + 9) // 10 for k in range(1, 11)}
    for step, item in enumerate(iterable, start=1):
        yield item
        if total is None or step in marks:
            print(f"  {label}: {progress_line(step, total, time.perf_counter() - start, None)}", flush=True)


def walk(model) -> list:
    """Every layer of ``model``, nested models' layers included."""
    return [inner for layer in model.layers for inner in ([layer] + (walk(layer) if hasattr(layer, "layers") else []))]


# Values held by the adapted copies of the training digits (float32): about 200 MB at most.
ADAPTED_VALUES = 50_000_000
_ADAPTED: dict = {}
_DEFAULT_MODELS: dict = {}
_DATA: dict = {}


def load_digits(fast: bool):
    """(name, data): the offline sample when ``fast``, else full MNIST if found on disk (never downloads)."""
    folder = None if fast else datasets.find_local("mnist")
    key = "mnist" if folder else "mnist-sample"
    if key not in _DATA:
        (x, y), (x_test, y_test) = datasets.mnist.load_data(folder) if folder else datasets.mnist_sample.load_data()
        _DATA[key] = (as_images(x), y.astype(np.int64)), (as_images(x_test), y_test.astype(np.int64))
    name = key if fast or folder else "mnist-sample (full MNIST not found on disk; set CONVSCOPE_DATA)"
    return name, _DATA[key]


def as_images(digits):
    """uint8 (n, 28, 28) -> float32 (n, 28, 28, 1) in [0, 1], as the models take them."""
    return (digits.astype(np.float32) / 255.0)[..., None]


def keras_convnet_config() -> dict:
    """The Keras MNIST convnet's config, its layers named as a fresh session names them (conv2d, conv2d_1, ...)."""
    config = zoo.keras_convnet().get_config()
    counts = Counter()
    for spec in config["layers"]:
        prefix = snake_case(spec["class_name"])
        spec["config"]["name"] = f"{prefix}_{counts[prefix]}" if counts[prefix] else prefix
        counts[prefix] += 1
    return config


def model_file(path) -> str:
    """A model file, or a run folder's model (its final model, else its checkpoint), as every command opens it."""
    from ..runs import model_file as run_model_file

    path = run_model_file(path)
    if not os.path.isfile(path):
        raise ValueError(f"lessons: no model file at {path!r} (give a .convscope, .keras or .h5 file or a run folder)")
    return path


# -- helpers several lessons use ----------------------------------------------------------------------


@contextmanager
def float64():
    """Compute in float64 inside the block (where a lesson claims exactness); the previous floatx after."""
    previous = backend.floatx()
    backend.set_floatx("float64")
    try:
        yield
    finally:
        backend.set_floatx(previous)


@contextmanager
def seeded(seed: int):
    """Seed the global generator inside the block and give the caller's generator back after."""
    state = backend.get_rng_state()
    backend.set_seed(seed)
    try:
        yield
    finally:
        backend.set_rng_state(state)


def type_of(config: dict):
    """The model class a config describes: a functional graph ("input_layers") or a Sequential chain."""
    return Model if "input_layers" in config else Sequential


def fresh_model(config: dict, loss="sparse_categorical_crossentropy", optimizer="adam") -> Sequential:
    """An untrained network built from ``config`` (weights drawn now from the global generator), compiled."""
    model = type_of(config).from_config(config)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return model


def float64_copy(model) -> Sequential:
    """The same network with the same weights, computing in float64 (sparse cross-entropy loss)."""
    with float64():
        copy = type(model).from_config(model.get_config())
        copy.set_weights(model.get_weights())
        copy.compile(loss="sparse_categorical_crossentropy")
    return copy


def max_abs(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def relative_error(a, b) -> float:
    """max |a - b| / max |b|: the disagreement measured against the size of the values."""
    scale = float(np.max(np.abs(b)))
    return max_abs(a, b) / scale if scale > 0 else max_abs(a, b)


def planes(maps):
    """(N, H, W, C) feature maps -> (N, C, H, W): the image axes last, as ``arraymath.reference``'s 2-D loops want."""
    return np.moveaxis(maps, 3, 1)


def kernel_planes(kernel):
    """(KH, KW, C, F) kernel -> (C, F, KH, KW): one 2-D slice per (input channel, filter)."""
    return kernel.transpose(2, 3, 0, 1)
