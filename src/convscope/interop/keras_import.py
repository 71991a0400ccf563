"""Keras files into convscope models: ``load_keras(path)``, ``load_keras_weights(model, path)``, ``load_weights``.

* ``.keras`` (Keras 3): a zip of ``config.json`` (the architecture, read by ``keras_config`` for
  a Sequential model and ``keras_graph`` for functional and nested ones, and the
  ``compile_config``), ``metadata.json`` and ``model.weights.h5`` (read by ``keras_weights``).
* legacy ``.h5`` / ``.hdf5`` (Keras 2, or Keras 3's ``model.save("x.h5")``): HDF5 whose root attributes
  ``model_config`` and ``training_config`` are the architecture's and the compile configuration's
  JSON and whose ``model_weights`` group holds the weights.
* ``.weights.h5`` (Keras 3 ``save_weights``) holds no architecture: build the same model in
  convscope and call ``model.load_weights(path)`` (which also takes ``.keras`` and legacy ``.h5``).

A loaded model is compiled as the file says (optimizer, loss, metrics, loss weights: see
``compile_config``), so ``evaluate`` and ``fit`` work at once, as in Keras; ``compile=False`` skips it.
The optimizer starts fresh (Keras's optimizer variables are not read).

Everything in the file is data. Archive member names are all checked (no ``..``, absolute
paths or drive letters) and only ``config.json`` and ``model.weights.h5`` are read, by
name, after their declared sizes (and then the bytes actually inflated) are checked
against limits; the architecture is checked layer by layer, and every weight's shape
against it, before the model allocates anything; weights are assigned only once all of them
have been read and checked. Every failure is a ``ModelFileError`` saying what is wrong.

Sizes are bounded by what the architecture needs, before anything is inflated: building the
model (a value and a gradient per weight) must fit the memory budget (``convscope.budget``);
its weights may not be more than ``MAX_EXPANSION`` times the file on disk; ``model.weights.h5``
may not declare more bytes than those weights can take (as float64, with an optimizer's state
beside them, and HDF5's structure), nor expand more than ``MAX_EXPANSION`` times from its
compressed bytes, and inflating it must fit the budget with the model. Then ``keras_weights``
checks every dataset, and all of them together against the file's size and the budget, before
reading any. The model is built with placeholder initial values (``initializers.placeholders``).
"""

from __future__ import annotations

import io
import json
import lzma
import math
import os
import zipfile
import zlib

from typing import NamedTuple

from .. import backend, budget, initializers
from ..errors import ModelFileError
from ..layers import MODEL_CLASSES
from ..saving import declared_parameters
from .compile_config import compile_from_keras
from .keras_config import architecture_from_config
from .keras_graph import has_nested_model, model_spec_from_keras
from .keras_weights import (
    BOMB_FLOOR_BYTES, MAX_EXPANSION, MAX_ITEMSIZE, ReadLimits, import_h5py, is_keras3_layout, keras3_groups,
    read_keras3, read_keras3_model, read_legacy, read_legacy_model,
)

CONFIG_MEMBER = "config.json"
WEIGHTS_MEMBER = "model.weights.h5"
MAX_CONFIG_BYTES = 16 * 2**20
MIN_ITEMSIZE = 2  # float16: the narrowest type a weight may be stored as
OPTIMIZER_SLOTS = 4  # per weight, the most an optimizer's state saved beside it holds (Adam with amsgrad: 3, EMA: 1)
H5_OVERHEAD_BYTES = 64 * 2**10  # HDF5's superblock, root group and heaps
H5_OBJECT_BYTES = 4 * 2**10  # per group or dataset (Keras's files take about 1 KiB)
ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
# What damaged zip / HDF5 content raises from zipfile, zlib, lzma and h5py (bz2 raises OSError).
# NotImplementedError: a member needing a newer zip version than zipfile knows; UnicodeError: a zip member name
# flagged UTF-8 that is not, or an HDF5 name / string attribute that h5py decoded into surrogates; OverflowError:
# h5py's file-object driver asked for a damaged offset beyond a C size ("int too large to convert to C ssize_t").
_DAMAGED = (
    zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, KeyError, RuntimeError, zlib.error, lzma.LZMAError,
    NotImplementedError, UnicodeError, OverflowError,
)


def load_keras(path, compile: bool = True):
    """The convscope model equal to the Keras model saved at ``path`` (``.keras`` or legacy ``.h5``), compiled
    as the file says unless ``compile=False``: a ``Sequential`` for a Keras Sequential, else a functional ``Model``."""
    source = _check_exists(path)
    limits = ReadLimits(os.path.getsize(path))
    try:
        if _is_zip(path):
            with zipfile.ZipFile(path) as zf:
                members = _archive_members(zf, source)
                config = _parse_json(_read_member(zf, members[CONFIG_MEMBER], MAX_CONFIG_BYTES, source), source,
                                     CONFIG_MEMBER)
                plan = _plan(config, source, limits)
                weights = _read_weights_member(zf, members[WEIGHTS_MEMBER], plan.needs, source, plan.build_bytes)
            limits = limits._replace(reserved=len(weights) + plan.build_bytes)

            def read(target, shapes=None):
                h5py = import_h5py()
                with h5py.File(io.BytesIO(weights), "r") as f:
                    return read_keras3_model(f, target, source, limits) if shapes is None else read_keras3(
                        f, target.layers, shapes, source, limits)

            model = _build(plan, source, read)
            training = config.get("compile_config")
        else:
            h5py = import_h5py()
            if not h5py.is_hdf5(path):
                raise ModelFileError(f"{source} is not a Keras model file (neither a .keras zip archive nor HDF5)")
            with h5py.File(path, "r") as f:
                plan = _plan(_legacy_config(f, source), source, limits)
                limits = limits._replace(reserved=plan.build_bytes)
                model = _build(plan, source, lambda target, shapes=None: read_legacy_model(f, target, source, limits)
                               if shapes is None else read_legacy(f, target.layers, shapes, source, limits))
                training = _json_attribute(f, "training_config", source)
    except ModelFileError:
        raise
    except _DAMAGED as e:
        raise ModelFileError(f"{source} is damaged or truncated: {e}") from e
    if compile:
        compile_from_keras(model, training, source)
    return model


def load_keras_weights(model, path) -> None:
    """Fill the built convscope ``model`` with the weights of a Keras file of the same architecture.

    Takes a ``.weights.h5`` (Keras 3 ``save_weights``), a ``.keras`` or a legacy ``.h5`` file. Layers
    are matched as Keras matches them: by class and position for Keras 3 files, by name for legacy ones.
    Every count, shape and type is checked before any weight changes.
    """
    if not model.built:
        raise ValueError(f'load_keras_weights: model "{model.name}" has not been built; give it an Input first')
    source = _check_exists(path)
    limits = ReadLimits(os.path.getsize(path))
    try:
        h5py = import_h5py()
        if _is_zip(path):
            with zipfile.ZipFile(path) as zf:
                needs = _Needs.of(model.parameters, len(keras3_groups(model)))
                weights = _read_weights_member(zf, _archive_members(zf, source)[WEIGHTS_MEMBER], needs, source)
            with h5py.File(io.BytesIO(weights), "r") as f:
                arrays = read_keras3_model(f, model, source, limits._replace(reserved=len(weights)))
        else:
            if not h5py.is_hdf5(path):
                raise ModelFileError(f"{source} is not a Keras weights file (not HDF5)")
            with h5py.File(path, "r") as f:
                read = read_keras3_model if is_keras3_layout(f) else read_legacy_model
                arrays = read(f, model, source, limits)
    except ModelFileError:
        raise
    except _DAMAGED as e:
        raise ModelFileError(f"{source} is damaged or truncated: {e}") from e
    model.set_weights(arrays)


def load_weights(model, path) -> None:
    """``model.load_weights(path)``: Keras 3's rule on names (``.keras``, ``.weights.h5``, legacy ``.h5`` /
    ``.hdf5``; anything else is a ValueError), then ``load_keras_weights``."""
    name = os.fspath(path)
    if not name.endswith((".keras", ".weights.h5", ".h5", ".hdf5")):
        raise ValueError(
            f"File format not supported: filepath={name}. Keras 3 only supports V3 `.keras` files, "
            "`.weights.h5` files, legacy H5 format files (`.h5` extension)"
        )
    load_keras_weights(model, path)


def _check_exists(path) -> str:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelFileError(f"Model file {path!r} does not exist")
    return repr(path)


def _is_zip(path) -> bool:
    # By the first bytes rather than zipfile.is_zipfile, so that a truncated archive is reported as one.
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def _archive_members(zf, source: str) -> dict:
    """``{name: ZipInfo}`` of a ``.keras`` archive, every name and method checked, both members it needs there."""
    members = {}
    for info in zf.infolist():
        name = info.filename.replace("\\", "/")
        if name.startswith("/") or ".." in name.split("/") or ":" in name:
            raise ModelFileError(f"{source} has an unsafe member name {info.filename!r}")
        if info.filename in members:
            raise ModelFileError(f"{source} has two members named {info.filename!r}; refusing an ambiguous file")
        if info.flag_bits & 0x1 or info.compress_type not in ZIP_METHODS:
            raise ModelFileError(
                f"{source}: member {info.filename!r} is encrypted or uses an unknown compression method "
                f"({info.compress_type}); convscope reads plain stored or compressed members"
            )
        members[info.filename] = info
    if CONFIG_MEMBER not in members:
        raise ModelFileError(f"{source} is not a Keras 3 model file (no {CONFIG_MEMBER})")
    if WEIGHTS_MEMBER not in members:
        raise ModelFileError(f"{source} has no {WEIGHTS_MEMBER} (convscope reads weights saved in HDF5, Keras's default)")
    return members


class _Needs(NamedTuple):
    """What a model's weights take, from their shapes: ``values`` numbers in ``arrays`` arrays over ``layers``."""

    values: int
    arrays: int
    layers: int

    @classmethod
    def of(cls, shapes, layers: int) -> "_Needs":
        """Of parameters or shapes (anything with a ``shape``, or a shape)."""
        shapes = [tuple(getattr(s, "shape", s)) for s in shapes]
        return cls(sum(math.prod(s) for s in shapes), len(shapes), layers)

    def member_limit(self) -> int:
        """The most bytes an honest ``model.weights.h5`` for these weights holds: each weight as float64 at most,
        an optimizer's state beside it (Keras saves it in the same file once trained), and HDF5's own structure."""
        copies = 1 + OPTIMIZER_SLOTS
        return (self.values * MAX_ITEMSIZE * copies + H5_OVERHEAD_BYTES
                + H5_OBJECT_BYTES * (self.layers + self.arrays * copies))


def _read_weights_member(zf, info, needs: _Needs, source: str, reserved: int = 0) -> bytes:
    """The bytes of ``model.weights.h5``, inflated only once its declared size is known to fit what the model's
    weights can need, its compression ratio to stay under ``MAX_EXPANSION`` and its bytes (with the ``reserved``
    ones of the model built to receive it) the memory budget."""
    limit = needs.member_limit()
    if info.file_size > limit:
        raise ModelFileError(
            f"{source}: {info.filename} declares {info.file_size} bytes, more than the {limit} that the model's "
            f"{needs.values:,} weights ({needs.arrays} arrays) can need with an optimizer's state beside them; "
            "refusing it before inflating"
        )
    if info.file_size > BOMB_FLOOR_BYTES and info.file_size > MAX_EXPANSION * info.compress_size:
        raise ModelFileError(
            f"{source}: {info.filename} expands to {info.file_size} bytes from {info.compress_size} compressed, "
            f"more than {MAX_EXPANSION} times; refusing a decompression bomb"
        )
    budget.check(info.file_size + reserved, f"{source}: inflating {info.filename} ({info.file_size} bytes)"
                 + (" beside the model built for it" if reserved else ""), error=ModelFileError)
    return _read_member(zf, info, info.file_size, source)


def _read_member(zf, info, limit: int, source: str) -> bytes:
    if info.file_size > limit:
        raise ModelFileError(f"{source}: {info.filename} declares {info.file_size} bytes, more than the {limit} allowed")
    with zf.open(info) as f:
        data = f.read(info.file_size + 1)  # never more than declared, whatever the compressed stream says
    if len(data) != info.file_size:
        raise ModelFileError(f"{source}: {info.filename} holds {len(data)} bytes, its header declares {info.file_size}")
    return data


def _parse_json(raw: bytes, source: str, what: str):
    """The parsed JSON of ``raw``, the file's ``what`` (a member or an attribute, named in the error)."""
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # RecursionError: absurdly deep nesting
        # ValueError: json.JSONDecodeError, and integers longer than Python's int_max_str_digits.
        raise ModelFileError(
            f"{source}: {what} is not valid JSON ({e}); a Keras model file describes its model in JSON"
        ) from e


def _legacy_config(f, source: str):
    if f.attrs.get("model_config") is None:
        if is_keras3_layout(f) or "layer_names" in f.attrs:
            raise ModelFileError(
                f"{source} holds weights only, no architecture: build the same model in convscope and "
                "call model.load_weights(path) (convscope.interop.load_keras_weights(model, path))"
            )
        raise ModelFileError(f"{source} is HDF5 but not a Keras model file (no model_config)")
    return _json_attribute(f, "model_config", source)


def _json_attribute(f, key: str, source: str):
    """The parsed JSON of the root attribute ``key``, None if absent."""
    raw = f.attrs.get(key)
    if raw is None:
        return None
    try:
        raw = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    except (UnicodeEncodeError, TypeError, ValueError) as e:  # h5py hands undecodable bytes back as surrogates
        raise ModelFileError(f"{source}: {key} is not UTF-8 text: {e}") from e
    if len(raw) > MAX_CONFIG_BYTES:
        raise ModelFileError(f"{source}: {key} is {len(raw)} bytes, more than the {MAX_CONFIG_BYTES} allowed")
    return _parse_json(raw, source, f"the {key} attribute")


class _Plan(NamedTuple):
    """A Keras model config read and checked, nothing built: a flat Sequential's ``arch`` and each of its layers'
    ``{parameter: shape}`` (``layer_shapes``), or a graph's convscope ``spec``; and what its weights need."""

    arch: object
    layer_shapes: list | None
    spec: dict | None
    needs: _Needs

    @property
    def build_bytes(self) -> int:
        """What building the model allocates: a value and a gradient of floatx for every weight."""
        return 2 * self.needs.values * backend.xp.dtype(backend.floatx()).itemsize


def _plan(config, source: str, limits: ReadLimits) -> _Plan:
    """The plan of a config, refused when building it would not fit the memory budget, or when its weights would
    expand from the file on disk more than ``MAX_EXPANSION`` times (before anything is inflated or read)."""
    if not isinstance(config, dict) or config.get("class_name") != "Sequential" or has_nested_model(config):
        try:
            spec = model_spec_from_keras(config, source)
            shapes = [shape for _, shape in declared_parameters(spec)]
        except (AttributeError, TypeError, KeyError, ValueError, OverflowError, RecursionError) as e:
            if isinstance(e, ModelFileError):
                raise
            raise ModelFileError(f"{source}: malformed model config: {e}") from e
        plan = _Plan(None, None, spec, _Needs.of(shapes, _layer_count(spec)))
    else:
        try:
            arch = architecture_from_config(config, source)
        except (AttributeError, TypeError, KeyError, OverflowError) as e:
            raise ModelFileError(f"{source}: malformed model config: {e}") from e
        layer_shapes = _declared_shapes(arch, source)
        plan = _Plan(arch, layer_shapes, None,
                     _Needs.of([s for layer in layer_shapes for s in layer.values()], len(arch.layers)))
    budget.check(plan.build_bytes, f"{source}: the model declares {plan.needs.values:,} weights, more than "
                 "convscope loads: building them", error=ModelFileError)
    smallest = plan.needs.values * MIN_ITEMSIZE
    if smallest > BOMB_FLOOR_BYTES and smallest > MAX_EXPANSION * limits.disk_bytes:
        raise ModelFileError(
            f"{source}: the model's {plan.needs.values:,} weights take at least {smallest} bytes: the file expands to "
            f"more than {MAX_EXPANSION} times its {limits.disk_bytes} bytes; refusing a decompression bomb"
        )
    return plan


def _layer_count(spec) -> int:
    """The layers of a convscope model spec, those of the models inside it included."""
    layers = spec["config"]["layers"]
    return sum(1 + (_layer_count(s) if s.get("class_name") in MODEL_CLASSES else 0) for s in layers)


def _build(plan: _Plan, source: str, read_weights):
    """The model a plan describes, with the weights ``read_weights`` returns: ``read_weights(model)`` reads them
    for a built model, ``read_weights(architecture, declared shapes)`` for a flat Sequential before it is built.
    The model is built with placeholder initial values, which the file's weights replace."""
    if plan.arch is None:
        return _build_graph(plan.spec, source, read_weights)
    from ..models import Sequential

    arch = plan.arch
    arrays = read_weights(arch, plan.layer_shapes)
    try:
        model = Sequential(arch.layers, name=arch.name)
        # Building draws initial weights that the file's replace; loading must not move the global generator.
        state = backend.get_rng_state()
        with initializers.placeholders():
            model.build((None, *arch.input_shape))
        backend.set_rng_state(state)
        model.set_weights(arrays)
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{source}: {e}") from e
    return model


def _build_graph(spec, source: str, read_weights):
    """A functional model, or a model holding models, from its spec (its sizes checked by ``_plan``)."""
    # Building draws initial weights that the file's replace; loading must not move the global generator.
    state = backend.get_rng_state()
    try:
        with initializers.placeholders():
            model = MODEL_CLASSES[spec["class_name"]].from_config(spec["config"])
    except (AttributeError, TypeError, KeyError, ValueError, OverflowError) as e:
        raise ModelFileError(f"{source}: {e}") from e
    finally:
        backend.set_rng_state(state)
    model.set_weights(read_weights(model))
    return model


def _declared_shapes(arch, source: str) -> list[dict]:
    """Each layer's ``{parameter: shape}`` for the file's input shape, computed without allocating anything."""
    shape, shapes = (None, *arch.input_shape), []
    try:
        for layer in arch.layers:
            shapes.append({name: tuple(s) for name, s in layer.param_shapes(shape).items()})
            shape = layer.compute_output_shape(shape)
    except (TypeError, ValueError, OverflowError) as e:
        raise ModelFileError(f"{source}: {e}") from e
    return shapes
