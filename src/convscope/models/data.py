"""Data as a model takes it, and the batches ``fit`` / ``evaluate`` / ``predict`` run, as Keras 3 gives them.

Inputs and targets: one array, a list (in ``model.inputs`` order) or a dict by name; NumPy
arrays or (nested) Python lists of numbers, integer labels of any integer dtype. Every array
is checked before any work starts, with messages naming the model, the argument and what was
expected: rank and sizes against the model's input shapes (with hints for a missing batch axis
or channels-first data), numeric dtypes, NaN / infinity, equal sample counts, and the number
of arrays against the number of inputs / outputs. As Keras 3's functional models do, an input
one trailing axis of size 1 short of the model's (``(N, 28, 28)`` for ``Input((28, 28, 1))``)
gains it, and one with an extra trailing axis of size 1 loses it, silently.

Batches (Keras's data adapters): arrays are cut into batches of ``batch_size`` (32 unless
given, or ``ceil(n / steps)`` when only ``steps`` is), reshuffled every pass; a
``convscope.utils.PyDataset`` (Keras's ``PyDataset`` / ``Sequence``) gives batch ``i`` as
``dataset[i]`` and hears ``on_epoch_begin`` / ``on_epoch_end``; a Python generator is one
stream of batches. A batch is ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``.
``EpochIterator`` then decides which batches each epoch runs (``steps_per_epoch`` included).
"""

from __future__ import annotations

import itertools
import math
import types
import warnings

from .. import backend
from ..utils import PyDataset


def structure_of(value):
    """("single" | "list" | "dict", dict keys or None) of how tensors were given (a Model's inputs / outputs)."""
    if isinstance(value, dict):
        return "dict", list(value)
    if isinstance(value, (list, tuple)):
        return "list", None
    return "single", None


def pack(values: list, structure):
    """``values`` (one per tensor) back in the structure the model was given: an array, a list or a dict."""
    kind, keys = structure
    if kind == "dict":
        return dict(zip(keys, values))
    return list(values) if kind == "list" else values[0]


def arrays_for(model, value, names: list, arg: str, what: str) -> list:
    """``value`` (an array, list or dict by name) as a list of arrays, one per name, or an error naming ``arg``."""
    if value is None:
        raise ValueError(f'{model}: argument "{arg}" is required, received None')
    count = len(names)
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        missing = [n for n in names if n not in value]
        if unknown or missing:
            raise ValueError(
                f'{model}: argument "{arg}" is a dict whose keys must be the model\'s {what} names {names}; '
                f"missing {missing}, unknown {unknown}"
            )
        return [value[n] for n in names]
    if isinstance(value, (list, tuple)) and not _is_nested_numbers(value):
        if len(value) != count:
            raise ValueError(
                f'{model}: argument "{arg}" holds {len(value)} array{"s" if len(value) != 1 else ""}, but the model '
                f"has {count} {what}s ({', '.join(names)})"
            )
        return list(value)
    if count != 1:
        raise ValueError(
            f'{model}: argument "{arg}" is a single array, but the model has {count} {what}s ({", ".join(names)}); '
            f"give a list of {count} arrays or a dict by name"
        )
    return [value]


def _is_nested_numbers(value) -> bool:
    """True for a plain list of numbers (one array written as a list), false for a list of arrays."""
    first = value[0] if value else None
    return isinstance(first, (int, float)) or (isinstance(first, (list, tuple)) and first and
                                               isinstance(first[0], (int, float, list, tuple)))


def check_input_array(model, x, expected, arg: str, index: int):
    """``x`` as an array fitting input ``index`` of shape ``expected`` (batch axis None)."""
    xp = backend.xp
    x = xp.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f'{model}: argument "{arg}" must be numeric, received dtype {x.dtype}')
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f'{model}: argument "{arg}" is empty (shape {x.shape}); expected at least one sample')
    x = _adjust_rank(x, tuple(expected))
    if x.ndim != len(expected) or x.shape[1:] != tuple(expected[1:]):
        raise ValueError(
            f'Input {index} of layer "{model.name}" is incompatible with the layer: '
            f"expected shape={tuple(expected)}, found shape={tuple(x.shape)}{_shape_hint(x.shape, expected)}"
        )
    if x.dtype.kind == "f" and not xp.isfinite(x).all():
        bad = int(xp.flatnonzero(~xp.isfinite(x.reshape(len(x), -1)).all(axis=1))[0])
        raise ValueError(f'{model}: argument "{arg}" contains NaN or infinite values (first in sample {bad})')
    return x


def _adjust_rank(x, expected: tuple):
    """Keras 3's ``Functional._adjust_input_rank``: add or drop one trailing axis of size 1 where that makes
    ``x`` fit ``expected``; anything else is left for the shape check to report as received."""
    if x.ndim == len(expected) - 1 and expected[-1] == 1 and x.shape[1:] == expected[1:-1]:
        return x[..., None]
    if x.ndim == len(expected) + 1 and x.shape[-1] == 1 and x.shape[1:-1] == expected[1:]:
        return x[..., 0]
    return x


def _shape_hint(shape, expected) -> str:
    expected = tuple(expected[1:])
    if tuple(shape) == expected:
        return " (a single sample without the batch axis: use x[None] for a batch of one)"
    if len(shape) == 4 and len(expected) == 3 and (shape[2], shape[3], shape[1]) == expected:
        return " (this looks like channels-first NCHW data; convscope uses NHWC: x.transpose(0, 2, 3, 1))"
    return ""


def same_count(model, arrays: list, args: list) -> int:
    n = len(arrays[0])
    for a, arg in zip(arrays, args):
        if len(a) != n:
            raise ValueError(
                f'{model}: "{args[0]}" and "{arg}" must have the same number of samples, '
                f"received {args[0]}: {n} and {arg}: {len(a)}"
            )
    return n


def check_target_array(model, y, arg: str, n: int, arg_x: str):
    xp = backend.xp
    y = xp.asarray(y)
    if y.ndim == 0 or len(y) != n:
        raise ValueError(
            f'{model}: "{arg_x}" and "{arg}" must have the same number of samples, '
            f"received {arg_x}: {n} and {arg}: {y.shape[0] if y.ndim else 'a scalar'}"
        )
    if y.dtype.kind == "f" and not xp.isfinite(y).all():
        raise ValueError(f'{model}: argument "{arg}" contains NaN or infinite values')
    return y


# -- sample weights -----------------------------------------------------------------------------


def check_sample_weight(model, weight, n: int, arg: str):
    """``weight`` as a ``floatx()`` array of shape ``(n,)``, one weight per sample (``(n, 1)`` accepted)."""
    xp = backend.xp
    weight = xp.asarray(weight)
    if weight.dtype.kind not in "biuf":
        raise TypeError(f'{model}: argument "{arg}" must hold numbers, received dtype {weight.dtype}')
    if weight.ndim == 2 and weight.shape[1] == 1:
        weight = weight[:, 0]
    if weight.ndim != 1 or len(weight) != n:
        raise ValueError(
            f'{model}: argument "{arg}" must hold one weight per sample, shape ({n},), received shape {weight.shape}'
        )
    if not xp.isfinite(weight).all():
        raise ValueError(f'{model}: argument "{arg}" contains NaN or infinite values')
    return backend.cast(weight)


def check_class_weight(model, class_weight) -> None:
    """``class_weight`` must map class indices to numbers, and the model have one output (as Keras requires)."""
    if not isinstance(class_weight, dict):
        raise TypeError(
            f'{model}: argument "class_weight" must be a dict from class index to weight, e.g. {{0: 1.0, 1: 5.0}}, '
            f"received {type(class_weight).__name__}"
        )
    for k, v in class_weight.items():
        if isinstance(k, bool) or not isinstance(k, (int, backend.xp.integer)) or isinstance(v, bool) \
                or not isinstance(v, (int, float, backend.xp.number)):
            raise TypeError(
                f'{model}: argument "class_weight" must map class indices (ints) to weights (numbers), '
                f"received {k!r}: {v!r}"
            )
    if len(model.output_names) > 1:
        raise ValueError(
            f'{model}: argument "class_weight" is only supported for models with a single output; this one has '
            f"{len(model.output_names)} ({', '.join(model.output_names)}): give sample_weight per output instead"
        )


def class_weight_to_sample_weight(y, class_weight: dict):
    """Keras's rule: a sample weighs ``class_weight.get(label, 1.0)``, its label being ``y`` rounded to an
    integer, or the argmax of a one-hot row (a ``(n, 1)`` column holds labels).

    >>> class_weight_to_sample_weight(np.array([0, 2, 1]), {2: 5.0})
    array([1., 5., 1.], dtype=float32)
    """
    xp = backend.xp
    y = xp.asarray(y)
    if y.ndim > 1:
        y = y.argmax(axis=-1) if y.shape[-1] != 1 else y[..., 0]
    labels = xp.round(y).astype(xp.int64).reshape(len(y), -1)[:, 0]
    table = {int(k): float(v) for k, v in class_weight.items()}
    return backend.cast(xp.array([table.get(int(c), 1.0) for c in labels]))


def standardize(model, x, y, sample_weight, class_weight, names=("x", "y", "sample_weight"), targets=True):
    """``(inputs, targets, weights)`` checked: one array per input, one target per output (None where an
    output has no loss) and one ``(n,)`` weight array or None per output. A single ``sample_weight`` array
    weighs every output; a list or dict gives one per output; ``class_weight`` becomes sample weights."""
    arg_x, arg_y, arg_w = names
    xs = model._inputs(x, arg_x)
    if not targets:
        return xs, [], []
    model._require_compiled("fit")
    n = len(xs[0])
    ys = model._targets(y, n, arg_x, arg_y)
    if sample_weight is not None and class_weight is not None:
        raise ValueError(f'{model}: give "sample_weight" or "class_weight", not both (as Keras)')
    outputs = model.output_names
    if class_weight is not None:
        check_class_weight(model, class_weight)
        return xs, ys, [class_weight_to_sample_weight(ys[0], class_weight)]
    if sample_weight is None:
        return xs, ys, [None] * len(ys)
    if isinstance(sample_weight, dict):
        unknown = sorted(set(sample_weight) - set(outputs))
        if unknown:
            raise ValueError(f'{model}: argument "{arg_w}" names outputs {unknown}; the model\'s outputs are {outputs}')
        given = [sample_weight.get(name) for name in outputs]  # an output left out is not weighted
        labels = [f"{arg_w}[{name!r}]" for name in outputs]
    elif isinstance(sample_weight, (list, tuple)) and len(outputs) > 1 and not _is_nested_numbers(sample_weight):
        given = arrays_for(model, sample_weight, outputs, arg_w, "output")
        labels = [f"{arg_w}[{name!r}]" for name in outputs]
    else:
        given, labels = [sample_weight] * len(outputs), [arg_w] * len(outputs)
    return xs, ys, [None if w is None or t is None else check_sample_weight(model, w, n, label)
                    for w, t, label in zip(given, ys, labels)]


def split_for_validation(model, x, y, sample_weight, class_weight, validation_split):
    """Keras's ``validation_split``: the last ``validation_split`` of the samples (taken before any shuffling)
    are the validation data. Returns ``(train parts, validation parts)``, each ``(inputs, targets, weights)``
    of checked arrays; ``class_weight`` weighs the training part only, as in Keras."""
    if isinstance(x, (PyDataset, types.GeneratorType)):
        raise ValueError(
            f'{model}: argument "validation_split" is only supported for arrays, received x of type '
            f"{type(x).__name__}; give validation_data instead"
        )
    xs, ys, ws = standardize(model, x, y, sample_weight, class_weight)
    n = len(xs[0])
    split = int(math.floor(n * (1.0 - validation_split)))
    if split == 0 or split == n:
        raise ValueError(
            f"{model}: validation_split={validation_split} leaves no training or no validation samples out of {n}"
        )
    val_ws = [None] * len(ws) if class_weight is not None else ws

    def part(arrays, s):
        return [None if a is None else a[s] for a in arrays]

    head, tail = slice(split), slice(split, None)
    return (part(xs, head), part(ys, head), part(ws, head)), (part(xs, tail), part(ys, tail), part(val_ws, tail))


# -- batch sources (Keras's data adapters) ----------------------------------------------------------


class ArrayBatches:
    """Checked arrays (one list per part: inputs, targets, weights) cut into batches of ``batch_size``, the last
    one smaller; each pass draws a fresh order when ``shuffle`` is True, and shuffles within each batch when it
    is ``"batch"``, as Keras's ``ArrayDataAdapter``."""

    def __init__(self, xs, ys, ws, batch_size: int, shuffle):
        self.parts, self.batch_size, self.shuffle = (xs, ys, ws), batch_size, shuffle
        self.samples = len(xs[0])
        self.num_batches = math.ceil(self.samples / batch_size)

    def batches(self):
        rng = backend.global_rng()
        order = rng.permutation(self.samples) if self.shuffle is True else None
        for i in range(self.num_batches):
            start, stop = i * self.batch_size, min((i + 1) * self.batch_size, self.samples)
            if self.shuffle == "batch":
                idx = rng.permutation(stop - start) + start
            else:
                idx = slice(start, stop) if order is None else order[start:stop]
            yield tuple([None if a is None else a[idx] for a in part] for part in self.parts)

    def on_epoch_begin(self) -> None:
        """Arrays need nothing at an epoch's edges (a PyDataset does)."""

    on_epoch_end = on_epoch_begin


class PyDatasetBatches:
    """A ``PyDataset``'s batches ``dataset[i]`` in order (a shuffled order each pass when ``shuffle``), each one
    checked by ``check(x, y, sample_weight)``; ``num_batches`` None for an infinite dataset. The dataset's
    ``workers`` / ``use_multiprocessing`` / ``max_queue_size`` are accepted and the batches made in-process."""

    def __init__(self, dataset, shuffle, check):
        self.dataset, self.shuffle, self.check = dataset, shuffle, check
        self.num_batches = dataset.num_batches

    def batches(self):
        if self.num_batches is None:
            indices = itertools.count()
        elif self.shuffle:
            indices = backend.global_rng().permutation(self.num_batches)
        else:
            indices = range(self.num_batches)
        for i in indices:
            yield self.check(*unpack_batch(self.dataset[int(i)], "PyDataset.__getitem__()"))

    def on_epoch_begin(self) -> None:
        self.dataset.on_epoch_begin()

    def on_epoch_end(self) -> None:
        self.dataset.on_epoch_end()


class GeneratorBatches:
    """A Python generator's batches, one stream across epochs (an epoch of ``steps_per_epoch`` batches goes on
    where the last one stopped). The first batch is read at once, so an empty generator or a batch that is not
    a tuple is reported before training starts, with Keras's messages."""

    num_batches = None

    def __init__(self, generator, check):
        first = next(generator, None)
        if first is None:
            raise ValueError(
                "When passing a Python generator to a Keras model, the generator must yield at least one batch. "
                "Received an empty generator."
            )
        self.check = check
        self._stream = itertools.chain([first], generator)

    def batches(self):
        for batch in self._stream:
            if not isinstance(batch, tuple):
                raise ValueError(
                    "When passing a Python generator to a Keras model, the generator must return a tuple, either "
                    "(input,) or (inputs, targets) or (inputs, targets, sample_weights). "
                    f"Received: {type(batch).__name__}"
                )
            yield self.check(*unpack_batch(batch, "the generator"))

    def on_epoch_begin(self) -> None:
        """A generator hears nothing at an epoch's edges."""

    on_epoch_end = on_epoch_begin


def unpack_batch(batch, source: str) -> tuple:
    """``(x, y, sample_weight)`` of one batch: ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)`` (a list
    counts as a tuple, as Keras's ``unpack_x_y_sample_weight``); missing parts are None."""
    if isinstance(batch, list):
        batch = tuple(batch)
    if not isinstance(batch, tuple):
        return batch, None, None
    if not 1 <= len(batch) <= 3:
        raise ValueError(
            f"{source} must give a batch as (inputs,), (inputs, targets) or (inputs, targets, sample_weights); "
            f"received a tuple of {len(batch)} items"
        )
    return (*batch, *([None] * (3 - len(batch))))


def batch_source(model, x, y=None, sample_weight=None, class_weight=None, batch_size=None, shuffle=False,
                 steps=None, names=("x", "y", "sample_weight"), targets=True):
    """The batch source for ``x`` (arrays, a PyDataset or a generator), refusing what Keras refuses with it."""
    if isinstance(x, (PyDataset, types.GeneratorType)):
        kind = "PyDataset" if isinstance(x, PyDataset) else "generator"
        for arg, value, what in ((names[1], y, "the targets"), (names[2], sample_weight, "the sample weights")):
            if value is not None:
                raise ValueError(
                    f"When providing `{names[0]}` as a {kind}, `{arg}` should not be passed. Instead, {what} should "
                    f"be included as part of the {kind}."
                )
        if class_weight is not None and kind == "generator":
            raise ValueError(
                f"Argument `class_weight` is not supported for Python generator inputs. Received: "
                f"class_weight={class_weight}"
            )

        def check(bx, by, bw):
            return standardize(model, bx, by, bw, class_weight, names, targets)

        if kind == "PyDataset":
            if x.num_batches is None and shuffle:
                warnings.warn("`shuffle=True` was passed, but will be ignored since the data `x` was provided as an "
                              "infinite PyDataset. The PyDataset is expected to already be shuffled.", stacklevel=3)
            return PyDatasetBatches(x, bool(shuffle) and x.num_batches is not None, check)
        if shuffle:
            warnings.warn("`shuffle=True` was passed, but will be ignored since the data `x` was provided as a "
                          "generator. The generator is expected to yield already-shuffled data.", stacklevel=3)
        return GeneratorBatches(x, check)
    return array_batches(standardize(model, x, y, sample_weight, class_weight, names, targets), batch_size, steps,
                         shuffle)


def array_batches(parts, batch_size, steps, shuffle) -> ArrayBatches:
    """Batches of checked ``(inputs, targets, weights)``; ``batch_size`` None is Keras's default: ``ceil(n / steps)``
    when ``steps`` is given, else 32."""
    if batch_size is None:
        batch_size = math.ceil(len(parts[0][0]) / steps) if steps else 32
    return ArrayBatches(*parts, batch_size, shuffle)


def validation_source(model, validation_data, batch_size, steps):
    """``fit``'s ``validation_data`` as a batch source: ``(x_val, y_val)``, ``(x_val, y_val, val_sample_weight)``,
    a PyDataset or a generator, never shuffled."""
    if isinstance(validation_data, (PyDataset, types.GeneratorType)):
        return batch_source(model, validation_data, batch_size=batch_size, steps=steps,
                            names=("validation_data", "y_val", "val_sample_weight"))
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise ValueError(
            'fit: argument "validation_data" must be a tuple (x_val, y_val) or (x_val, y_val, val_sample_weight), '
            f"a PyDataset or a generator, received {type(validation_data).__name__}"
            + (f" of {len(validation_data)} items" if isinstance(validation_data, (tuple, list)) else "")
        )
    x, y, w = (*validation_data, None)[:3]
    return batch_source(model, x, y, w, None, batch_size, False, steps, names=("x_val", "y_val", "val_sample_weight"))


# -- epochs -------------------------------------------------------------------------------------------


RAN_OUT = ("Your input ran out of data; interrupting training. Make sure that your dataset or generator can "
           "generate at least `steps_per_epoch * epochs` batches. You may need to use the `.repeat()` function "
           "when building your dataset.")
"""Keras's warning, word for word, when a source gives fewer batches than asked for."""


class EpochIterator:
    """Which batches each epoch runs, as Keras 3's ``EpochIterator``.

    Without ``steps``, every epoch is one full pass over the source (a generator: until it ends). With
    ``steps`` (``steps_per_epoch``), an epoch runs ``steps`` batches and the next epoch goes on from there;
    a source of known length is never read past its end within an epoch: an epoch that reaches it stops
    short (with Keras's "ran out of data" warning) and the next one starts a fresh pass. So 5 batches with
    ``steps=3`` run 3, 2, 3, 2, ... batches per epoch. A generator that ends is done for good:
    ``exhausted`` turns True and ``fit`` stops after that epoch (Keras would replay its first batches).
    """

    def __init__(self, source, steps=None):
        self.source, self.steps = source, steps
        self._known = source.num_batches
        self._current, self._seen = None, 0
        self.exhausted = False

    @property
    def num_batches(self):
        """Batches per epoch: ``steps``, else the source's count (None while a generator's is unknown)."""
        return self.steps or self._known

    def reset(self) -> None:
        """Start the next epoch from a fresh pass (``evaluate`` does, each time)."""
        self._current, self._seen = None, 0

    def epoch(self):
        """``(step, (inputs, targets, weights))`` for one epoch; the source hears ``on_epoch_begin`` / ``_end``
        around it (close the generator, e.g. with ``contextlib.closing``, when leaving early)."""
        self.source.on_epoch_begin()
        try:
            if self._current is None or self.steps is None:
                self._current, self._seen = self.source.batches(), 0
            for step in itertools.count() if self.num_batches is None else range(self.num_batches):
                if self._known and self._seen >= self._known:
                    warnings.warn(RAN_OUT, stacklevel=2)
                    break
                batch = next(self._current, None)
                if batch is None:
                    self._ran_out()
                    break
                self._seen += 1
                yield step, batch
            if self._known and self._seen >= self._known:
                self._current = None
        finally:
            self.source.on_epoch_end()

    def _ran_out(self) -> None:
        warnings.warn(RAN_OUT, stacklevel=3)
        self._known = self._known or self._seen
        self._current = None
        self.exhausted = isinstance(self.source, GeneratorBatches)
