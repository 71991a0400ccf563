"""The convscope model file: a zip of ``config.json`` and ``.npy`` arrays, written atomically, read as untrusted.

Layout (format version 2):
    config.json            {"format": "convscope.model", "format_version": 2,
                            "model": {"class_name": "Sequential" | "Functional", "config": <the model's get_config()>},
                            "compile": {"optimizer", "loss", "metrics"} | null,
                            "weights": [{"name", "shape", "dtype"}...], "optimizer_state": [{...}...],
                            "training_state": {...} | null}
    weights/0000.npy ...   every parameter, in Keras's order (model.get_weights())
    optimizer/0000.npy ... the optimizer's state (iterations, slots), so training can resume

A Functional config is the graph: every layer with its calls (``inbound_nodes``: the
``[layer, call, tensor]`` each call reads) and the input and output tensors (see
``models.rebuild``). Version 1 files (a Sequential config as ``"model"``) still load.

Loading trusts nothing: members are read by exact name (anything else in the
archive, ``..`` or absolute names, duplicates are refused), sizes are checked
against the declared shapes before anything is read, layer types come from a
closed list, dtypes from an allowlist, ``.npy`` files are read with
``allow_pickle=False``, and every failure is a ``ModelFileError`` saying what is wrong.

A file can be honest about its sizes and still ask for gigabytes (784 x 340,000 zero weights
deflate to 1 MB), so before anything is built or read, what loading will allocate is computed
from the config and checked against the memory budget (``convscope.budget``): each weight's value
and gradient, the largest one read in another dtype (while it is cast), and, when compiling, the
optimizer state read and copied; each optimizer entry is compared with the slot the optimizer
keeps (its name and its parameter's shape) before it is read. The model is built with
placeholder initial values (``initializers.placeholders``: the file's weights replace them), and
weights are read one at a time into it.
"""

from __future__ import annotations

import io
import json
import math
import os
import tokenize
import zipfile
import zlib
from typing import NamedTuple

from .. import backend, budget, formats, initializers, losses, optimizers
from ..errors import ModelFileError
from ..layers import MODEL_CLASSES, InputLayer, deserialize, serialize
from ..models import load_model  # noqa: F401 -- re-exported: saving.load_model is models.load_model
from ..models.model import refuse_unregistered_layers
from ..models.rebuild import rebuild_graph
from ..atomic import atomic_write

FORMAT = "convscope.model"
FORMAT_VERSION = 2
MAX_CONFIG_BYTES = 16 * 2**20
NPY_HEADER_ALLOWANCE = 4096
DTYPES = {"float32", "float64", "int64"}


def save_model(model, path, training_state: dict | None = None) -> None:
    """Write ``model`` (config, weights, optimizer state, optional JSON-able ``training_state``) to ``path``."""
    if not model.built:
        raise ValueError(f'save_model: model "{model.name}" has not been built; call it on data or give it an Input first')
    refuse_unregistered_layers(model)
    weights = [(p.name, p.value) for p in model.parameters]
    opt_state = sorted(model.optimizer.get_state().items()) if model.optimizer is not None else []
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": serialize(model),
        "compile": _compile_config(model),
        "weights": [_describe(name, value) for name, value in weights],
        "optimizer_state": [_describe(name, value) for name, value in opt_state],
        "training_state": training_state,
    }
    with atomic_write(path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("config.json", json.dumps(config, indent=1))
        for i, (_, value) in enumerate(weights):
            zf.writestr(f"weights/{i:04d}.npy", _npy_bytes(value))
        for i, (_, value) in enumerate(opt_state):
            zf.writestr(f"optimizer/{i:04d}.npy", _npy_bytes(value))


def _compile_config(model):
    if model.optimizer is None:
        return None
    several = len(model._specs) > 1
    return {
        "optimizer": optimizers.serialize(model.optimizer),
        "loss": [None if s.loss is None else losses.serialize(s.loss) for s in model._specs] if several
        else losses.serialize(model._specs[0].loss),
        "loss_weights": [s.weight for s in model._specs] if several else None,
        "metrics": [[m.name for m in s.metrics] for s in model._specs] if several else [m.name for m in model.metrics],
    }


def _load_native(path, compile: bool = True):
    return load_checkpoint(path, compile=compile)[0]


def load_checkpoint(path, compile: bool = True):
    """``(model, training_state)`` from a file written by ``save_model``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelFileError(f"Model file {path!r} does not exist")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path!r} is not a convscope model file (not a zip archive)")
    try:
        with zipfile.ZipFile(path) as zf:
            return _read(zf, path, compile)
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, zlib.error, NotImplementedError,
            UnicodeDecodeError) as e:
        # NotImplementedError: a member needing a newer zip version than zipfile knows;
        # UnicodeDecodeError: a member name flagged UTF-8 that is not.
        raise ModelFileError(f"{path!r} is damaged or truncated: {e}") from e


def _read(zf: zipfile.ZipFile, path: str, compile: bool):
    members = _members(zf, path)
    config = _read_config(zf, members, path)
    try:
        spec = config["model"] if config["format_version"] >= 2 else {"class_name": "Sequential", "config": config["model"]}
        if not isinstance(spec, dict) or spec.get("class_name") not in MODEL_CLASSES or not isinstance(spec.get("config"), dict):
            raise ValueError(f"the model must be one of {sorted(MODEL_CLASSES)} with a config dict")
        _, declared = _declared(spec)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, RecursionError) as e:
        # OverflowError: huge ints as floats; RecursionError: models nested absurdly deep
        raise ModelFileError(f"{path!r} holds an invalid model config: {e}") from e
    weights = _entries(zf, members, config["weights"], "weights", path, expected=declared)
    _check_expected_members(members, len(config["weights"]), len(config["optimizer_state"]), path)
    compiling = bool(compile and config.get("compile"))
    state = _entries(zf, members, config["optimizer_state"], "optimizer", path) if compiling else []
    budget.check(_load_bytes(weights, state), _load_what(path, weights, state), error=ModelFileError)
    # Building draws initial weights that the file's replace; loading must not move the global generator.
    rng_state = backend.get_rng_state()
    try:
        with initializers.placeholders():
            model = MODEL_CLASSES[spec["class_name"]].from_config(spec["config"])
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
        raise ModelFileError(f"{path!r} holds an invalid model config: {e}") from e
    finally:
        backend.set_rng_state(rng_state)
    built = [(p.name, tuple(p.value.shape)) for p in model.parameters]
    if built != declared:
        # Weights are read in the config's layer order; the model holds them in its graph's order.
        raise ModelFileError(
            f"{path!r}: the file lists its weights in another order than the model's layers hold them "
            f"(first difference: file {next(d for d, b in zip(declared, built) if d != b)}); refusing a reordered file"
        )
    for param, entry in zip(model.parameters, weights):
        # One array in flight at a time; it replaces the placeholder (set_weights would hold all of them at once).
        # C order as the model makes its own (a .npy may be Fortran-ordered); no copy when it already is.
        param.value = backend.xp.ascontiguousarray(backend.cast(_read_npy(zf, entry, path), param.value.dtype))
    if compiling:
        try:
            spec = config["compile"]
            model.compile(optimizers.get(spec["optimizer"]), _compile_losses(spec["loss"]), _metrics(spec["metrics"]),
                          loss_weights=spec.get("loss_weights"))
            _check_state_entries(state, model, path)
            arrays = [_read_npy(zf, entry, path) for entry in state]
            model.optimizer.set_state({entry.name: a for entry, a in zip(state, arrays)}, model.trainable_parameters)
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
            raise ModelFileError(
                f"{path!r} holds an invalid training configuration: {e}. (A loss or metric written as a Python "
                "function is saved by name only: load such a model with compile=False and call compile().)"
            ) from e
    return model, config.get("training_state")


def _compile_losses(spec):
    return [None if s is None else losses.get(s) for s in spec] if isinstance(spec, list) else losses.get(spec)


def _metrics(spec):
    if not isinstance(spec, list):
        raise ValueError(f"metrics must be a list, received {spec!r}")
    return [list(m) if isinstance(m, list) else m for m in spec]


def declared_parameters(spec) -> list:
    """``[(parameter name, shape)]`` that a model spec (``serialize(model)``'s form) declares, in the model's
    weight order, from shapes alone: nothing is built or allocated. ValueError / KeyError / TypeError if malformed."""
    return _declared(spec)[1]


def _declared(spec, input_shape=None, depth: int = 0):
    """(output shape, [(parameter name, shape)]) of a model spec, from shapes alone: nothing is built or allocated."""
    if depth > 32:
        raise ValueError("models nested more than 32 deep")
    kind, body = spec["class_name"], spec["config"]
    if kind == "Sequential":
        shape = body.get("input_shape")
        if shape is None and input_shape is not None:
            shape = list(input_shape[1:])
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
            raise ValueError(f"input_shape must be a list of positive int sizes, received {shape!r}")
        shape, declared = (None, *shape), []
        for layer_spec in body["layers"]:
            if isinstance(layer_spec, dict) and layer_spec.get("class_name") in MODEL_CLASSES:
                shape, inner = _declared(layer_spec, shape, depth + 1)
                declared += inner
                continue
            layer = deserialize(layer_spec)
            if isinstance(layer, InputLayer):
                # Sequential would build (allocate) every later layer on the spot, before any size is checked.
                raise ValueError('an InputLayer in "layers"; the input shape belongs in "input_shape"')
            declared += _layer_params(layer, shape)
            shape = layer.compute_output_shape(shape)
        return shape, declared
    first_calls, declared = {}, []

    def make(layer_spec):
        if isinstance(layer_spec, dict) and layer_spec.get("class_name") in MODEL_CLASSES:
            return _Nested(layer_spec, depth)
        return deserialize(layer_spec)

    def apply(layer, args, as_list):
        shape = list(args) if as_list else args[0]
        if layer.name not in first_calls:
            first_calls[layer.name] = layer.params_for(shape) if isinstance(layer, _Nested) else _layer_params(layer, shape)
        return layer.compute_output_shape(shape)

    _, outputs, layers = rebuild_graph(body, apply, make_layer=make, input_of=lambda layer: layer.input_shape)
    for name in layers:
        declared += first_calls.get(name, [])
    return (outputs[0] if len(outputs) == 1 else outputs), declared


class _Nested:
    """A model inside a model, during the shapes-only walk: its name, output shape and parameters."""

    def __init__(self, spec, depth):
        self.spec, self.depth = spec, depth
        config = spec.get("config")
        self.name = config.get("name") if isinstance(config, dict) else None
        self._result = None

    def _walk(self, shape):
        if self._result is None:
            self._result = _declared(self.spec, shape, self.depth + 1)
        return self._result

    def params_for(self, shape):
        return self._walk(shape)[1]

    def compute_output_shape(self, shape):
        return self._walk(shape)[0]


def _layer_params(layer, shape) -> list:
    try:
        shapes = layer.param_shapes(shape)
    except IndexError:  # a file that feeds a layer an input of the wrong rank (a Conv2D a 2-D tensor)
        raise ValueError(f'layer "{layer.name}" ({type(layer).__name__}) cannot take an input of shape {shape}') from None
    return [(f"{layer.name}/{name}", tuple(pshape)) for name, pshape in shapes.items()]


def _members(zf: zipfile.ZipFile, path: str) -> dict:
    infos = zf.infolist()
    names = [info.filename for info in infos]
    if len(names) != len(set(names)):
        raise ModelFileError(f"{path!r} has duplicate archive members; refusing an ambiguous file")
    for name in names:
        if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/") or ":" in name:
            raise ModelFileError(f"{path!r} has an unsafe member name {name!r}")
    for info in infos:
        if info.flag_bits & 0x1:
            raise ModelFileError(f"{path!r}: member {info.filename!r} is encrypted; convscope model files never are")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ModelFileError(
                f"{path!r}: member {info.filename!r} uses zip compression method {info.compress_type}; "
                "convscope reads stored or deflated members only"
            )
    return {info.filename: info for info in infos}


def _read_config(zf, members, path) -> dict:
    info = members.get("config.json")
    if info is None:
        raise ModelFileError(f"{path!r} is not a convscope model file (no config.json)")
    if info.file_size > MAX_CONFIG_BYTES:
        raise ModelFileError(f"{path!r}: config.json declares {info.file_size} bytes, more than the {MAX_CONFIG_BYTES} allowed")
    try:
        config = json.loads(zf.read(info).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # RecursionError: absurdly deep nesting
        # ValueError: json.JSONDecodeError, and integers longer than Python's int_max_str_digits.
        raise ModelFileError(f"{path!r}: config.json is not valid JSON: {e}") from e
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{path!r} is not a convscope model file (config.json has no \"format\": \"{FORMAT}\")")
    version = config.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path!r}: unknown format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path!r} was written by a newer convscope (format version {version}; this one reads up to {FORMAT_VERSION})"
        )
    for key in ("model", "weights", "optimizer_state"):
        if key not in config:
            raise ModelFileError(f"{path!r}: config.json lacks {key!r}")
    if not isinstance(config["weights"], list) or not isinstance(config["optimizer_state"], list):
        raise ModelFileError(f"{path!r}: config.json's weights and optimizer_state must be lists")
    return config


class _Entry(NamedTuple):
    """One array the config lists (its name, shape and dtype) and the archive member that holds it."""

    name: str
    shape: tuple
    dtype: str
    member: zipfile.ZipInfo

    @property
    def nbytes(self) -> int:
        return budget.nbytes(self.shape, backend.xp.dtype(self.dtype).itemsize)


def _entries(zf, members, entries, folder, path, expected=None) -> list:
    """The config's ``entries`` for ``folder`` (``weights``, ``optimizer``), each checked against its member's
    size, its member's .npy header (and ``expected``'s names and shapes), without reading its data."""
    if expected is not None and len(entries) != len(expected):
        raise ModelFileError(f"{path!r}: the model needs {len(expected)} weight arrays, the file lists {len(entries)}")
    checked = []
    for i, entry in enumerate(entries):
        member = f"{folder}/{i:04d}.npy"
        try:
            name, shape, dtype = entry["name"], tuple(entry["shape"]), entry["dtype"]
        except (KeyError, TypeError) as e:
            raise ModelFileError(f"{path!r}: malformed entry {i} of {folder}: {entry!r}") from e
        if expected is not None and (name, shape) != expected[i]:
            raise ModelFileError(
                f"{path!r}: weight {i} should be {expected[i][0]} of shape {expected[i][1]}, the file has {name} of shape {shape}"
            )
        info = members.get(member)
        if info is None:
            raise ModelFileError(f"{path!r}: missing array {member}")
        if not isinstance(dtype, str) or dtype not in DTYPES or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise ModelFileError(f"{path!r}: {member} declares dtype {dtype!r} and shape {shape}; allowed dtypes: {sorted(DTYPES)}")
        if not isinstance(name, str):
            raise ModelFileError(f"{path!r}: {member} is named {name!r}; names are strings")
        checked.append(_Entry(name, shape, dtype, info))
        needed = checked[-1].nbytes
        if info.file_size > needed + NPY_HEADER_ALLOWANCE:
            raise ModelFileError(f"{path!r}: {member} is {info.file_size} bytes, more than its declared shape {shape} needs")
        if info.file_size < needed:
            # Checked before reading so that a forged header can never make np.load allocate more than the file holds.
            raise ModelFileError(
                f"{path!r}: {member} is {info.file_size} bytes, too small for its declared {dtype} shape {shape} "
                f"({needed} bytes of data); the file is truncated or forged"
            )
        _check_header(zf, checked[-1], path)
    return checked


def _load_bytes(weights: list, state: list) -> int:
    """What loading allocates at most: every weight's value and gradient (floatx, or the weight's wider type; the
    placeholder values of the build are zeros never touched, which the arrays read replace), the largest array
    read in another dtype than floatx (held while it is cast), and the optimizer state (all of it read, then
    copied by ``set_state``)."""
    floatx = backend.xp.dtype(backend.floatx())
    model = sum(2 * budget.nbytes(e.shape, max(floatx.itemsize, backend.xp.dtype(e.dtype).itemsize)) for e in weights)
    in_flight = max((e.nbytes for e in weights if e.dtype != floatx.name), default=0)
    return model + in_flight + 2 * sum(e.nbytes for e in state)


def _load_what(path: str, weights: list, state: list) -> str:
    largest = max([*weights, *state], key=lambda e: e.nbytes, default=None)
    count = sum(math.prod(e.shape) for e in weights)
    described = "" if largest is None else f"; the largest array: {largest.name} {largest.dtype} {largest.shape}"
    with_state = f" and its optimizer state ({len(state)} arrays)" if state else ""
    return f"{path!r}: loading its model ({count:,} weight values){with_state}{described}"


def _check_state_entries(state: list, model, path: str) -> None:
    """Each optimizer entry must be one the compiled optimizer keeps (``iterations``, its scalars, a slot of a
    trainable parameter), of that shape, once: checked before any of them is read. A name it does not keep is a
    ValueError, as ``set_state`` raises; a shape that is not its parameter's, a ``ModelFileError``."""
    optimizer = model.optimizer
    kind = type(optimizer).__name__
    wanted = {name: tuple(value.shape) for name, value in optimizer.get_state().items()}  # fresh: no slots yet
    for i, param in enumerate(model.trainable_parameters):
        wanted.update({f"{slot}/{i}": tuple(param.value.shape) for slot in optimizer.slot_names()})
    seen = set()
    for k, entry in enumerate(state):
        if entry.name in seen:
            raise ModelFileError(f"{path!r}: optimizer state entry {k} repeats {entry.name!r}")
        seen.add(entry.name)
        if entry.name not in wanted:
            listed = ", ".join(sorted(wanted)[:8]) + (", ..." if len(wanted) > 8 else "")
            raise ValueError(f"{kind}: unexpected {[entry.name]} in the optimizer state (entry {k}); for this model "
                             f"it keeps {listed}")
        if entry.shape != wanted[entry.name]:
            raise ModelFileError(
                f"{path!r}: optimizer state {entry.name!r} declares shape {entry.shape}, {kind} keeps it in the "
                f"shape of its parameter, {wanted[entry.name]}"
            )


def _check_header(zf, entry: _Entry, path: str) -> None:
    """The .npy header of ``entry``'s member must declare its shape and dtype: that header decides what
    ``np.load`` allocates. Only the header is inflated."""
    member = entry.member.filename
    try:
        with zf.open(entry.member) as f:
            header_shape, header_dtype = _npy_header(f)
    except (ValueError, SyntaxError, tokenize.TokenError) as e:  # numpy tokenizes a malformed header
        raise ModelFileError(f"{path!r}: {member} is not a valid .npy array: {e}") from e
    if header_shape != entry.shape or header_dtype.name != entry.dtype:
        raise ModelFileError(
            f"{path!r}: {member} holds {header_dtype.name} {header_shape}, the config declares {entry.dtype} {entry.shape}"
        )


def _read_npy(zf, entry: _Entry, path: str):
    """The array of ``entry`` (its header already checked), read in chunks straight into the array: the member
    is never held in memory as bytes beside it."""
    member = entry.member.filename
    try:
        with zf.open(entry.member) as f:
            array = backend.xp.lib.format.read_array(f, allow_pickle=False)
            f.read()  # the few bytes after the data: reaching the end makes zipfile check the member's CRC
    except (ValueError, SyntaxError, tokenize.TokenError) as e:  # numpy tokenizes a malformed header
        raise ModelFileError(f"{path!r}: {member} is not a valid .npy array: {e}") from e
    if array.shape != entry.shape or array.dtype.name != entry.dtype:
        raise ModelFileError(
            f"{path!r}: {member} holds {array.dtype.name} {array.shape}, the config declares {entry.dtype} {entry.shape}"
        )
    return array


def _npy_header(f):
    """(shape, dtype) the .npy header at the start of the stream ``f`` declares, its data untouched; ValueError
    if malformed."""
    fmt = backend.xp.lib.format
    version = fmt.read_magic(f)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"unsupported .npy format version {version}")
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, _fortran_order, dtype = read_header(f)
    return tuple(shape), dtype


def _check_expected_members(members, n_weights, n_state, path) -> None:
    allowed = {"config.json"} | {f"weights/{i:04d}.npy" for i in range(n_weights)}
    allowed |= {f"optimizer/{i:04d}.npy" for i in range(n_state)}
    extra = sorted(set(members) - allowed)
    if extra:
        raise ModelFileError(f"{path!r} has unexpected members {extra[:5]}; refusing a file that is not what it claims")


def _describe(name, value) -> dict:
    return {"name": name, "shape": list(value.shape), "dtype": value.dtype.name}


def _npy_bytes(value) -> bytes:
    buf = io.BytesIO()
    backend.xp.save(buf, backend.xp.asarray(value), allow_pickle=False)
    return buf.getvalue()


formats.register_default(save_model, _load_native, ".convscope")
