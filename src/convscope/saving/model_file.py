"""The convscope model file: a zip of ``config.json`` and ``.npy`` arrays, written atomically, read as untrusted.

Layout (format version 1):
    config.json            {"format": "convscope.model", "format_version": 1, "model": <Sequential config>,
                            "compile": {"optimizer", "loss", "metrics"} | null,
                            "weights": [{"name", "shape", "dtype"}...], "optimizer_state": [{...}...],
                            "training_state": {...} | null}
    weights/0000.npy ...   every parameter, in Keras's order (model.get_weights())
    optimizer/0000.npy ... the optimizer's state (iterations, slots), so training can resume

Loading trusts nothing: members are read by exact name (anything else in the
archive, ``..`` or absolute names, duplicates are refused), sizes are checked
against the declared shapes before anything is read, layer types come from a
closed list, dtypes from an allowlist, ``.npy`` files are read with
``allow_pickle=False``, and every failure is a ``ModelFileError`` saying what is wrong.
"""

from __future__ import annotations

import io
import json
import math
import os
import tokenize
import zipfile
import zlib

from .. import backend, losses, metrics, optimizers
from ..errors import ModelFileError
from ..layers import InputLayer, deserialize
from .atomic import atomic_write

FORMAT = "convscope.model"
FORMAT_VERSION = 1
MAX_CONFIG_BYTES = 16 * 2**20
NPY_HEADER_ALLOWANCE = 4096
DTYPES = {"float32", "float64", "int64"}


def save_model(model, path, training_state: dict | None = None) -> None:
    """Write ``model`` (config, weights, optimizer state, optional JSON-able ``training_state``) to ``path``."""
    if not model.built:
        raise ValueError(f'save_model: model "{model.name}" has not been built; call it on data or give it an Input first')
    weights = [(p.name, p.value) for p in model.parameters]
    opt_state = sorted(model.optimizer.get_state().items()) if model.optimizer is not None else []
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.get_config(),
        "compile": None if model.loss is None else {
            "optimizer": optimizers.serialize(model.optimizer),
            "loss": losses.serialize(model.loss),
            "metrics": [m.name for m in model.metrics],
        },
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


def load_model(path, compile: bool = True):
    """The model saved at ``path``; raises ``ModelFileError`` for anything damaged, foreign or unsafe.

    Keras files (``.keras``, ``.h5``) are read by ``convscope.interop.load_keras`` (uncompiled).
    """
    if os.fspath(path).lower().endswith((".keras", ".h5")):
        from ..interop import load_keras

        return load_keras(path)
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
    from ..models import Sequential

    try:
        layers = [deserialize(spec) for spec in config["model"]["layers"]]
        if any(isinstance(layer, InputLayer) for layer in layers):
            # Sequential would build (allocate) every later layer on the spot, before any size is checked.
            raise ValueError('an InputLayer in "layers"; the input shape belongs in "input_shape"')
        model = Sequential(layers, name=config["model"].get("name"))
        input_shape = config["model"].get("input_shape")
        if not isinstance(input_shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape
        ):
            raise ValueError(f"input_shape must be a list of positive int sizes, received {input_shape!r}")
        declared = _declared_parameters(model, input_shape)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:  # OverflowError: huge ints as floats
        raise ModelFileError(f"{path!r} holds an invalid model config: {e}") from e
    weights = _read_arrays(zf, members, config["weights"], "weights", path, expected=declared)
    _check_expected_members(members, len(config["weights"]), len(config["optimizer_state"]), path)
    # Building draws initial weights that the file's replace; loading must not move the global generator.
    rng_state = backend.get_rng_state()
    model.build((None, *input_shape))
    backend.set_rng_state(rng_state)
    model.set_weights(weights)
    if compile and config.get("compile"):
        try:
            spec = config["compile"]
            model.compile(optimizers.get(spec["optimizer"]), losses.get(spec["loss"]), list(spec["metrics"]))
            state = _read_arrays(zf, members, config["optimizer_state"], "optimizer", path)
            names = [entry["name"] for entry in config["optimizer_state"]]
            model.optimizer.set_state(dict(zip(names, state)), model.trainable_parameters)
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
            raise ModelFileError(f"{path!r} holds an invalid training configuration: {e}") from e
    return model, config.get("training_state")


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


def _declared_parameters(model, input_shape) -> list:
    """Every parameter's (name, shape) the config implies, computed without allocating anything."""
    shape, declared = (None, *input_shape), []
    for layer in model.layers:
        for name, pshape in layer.param_shapes(shape).items():
            declared.append((f"{layer.name}/{name}", tuple(pshape)))
        shape = layer.compute_output_shape(shape)
    return declared


def _read_arrays(zf, members, entries, folder, path, expected=None) -> list:
    if expected is not None and len(entries) != len(expected):
        raise ModelFileError(f"{path!r}: the model needs {len(expected)} weight arrays, the file lists {len(entries)}")
    arrays = []
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
        arrays.append(_read_npy(zf, members, member, shape, dtype, path))
    return arrays


def _read_npy(zf, members, member, shape, dtype, path):
    info = members.get(member)
    if info is None:
        raise ModelFileError(f"{path!r}: missing array {member}")
    if not isinstance(dtype, str) or dtype not in DTYPES or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ModelFileError(f"{path!r}: {member} declares dtype {dtype!r} and shape {shape}; allowed dtypes: {sorted(DTYPES)}")
    needed = math.prod(shape) * backend.xp.dtype(dtype).itemsize
    if info.file_size > needed + NPY_HEADER_ALLOWANCE:
        raise ModelFileError(f"{path!r}: {member} is {info.file_size} bytes, more than its declared shape {shape} needs")
    if info.file_size < needed:
        # Checked before reading so that a forged header can never make np.load allocate more than the file holds.
        raise ModelFileError(
            f"{path!r}: {member} is {info.file_size} bytes, too small for its declared {dtype} shape {shape} "
            f"({needed} bytes of data); the file is truncated or forged"
        )
    raw = zf.read(info)
    if len(raw) < needed:
        raise ModelFileError(f"{path!r}: {member} holds {len(raw)} bytes, too small for its declared {dtype} shape {shape}")
    try:
        # The .npy header's own shape decides what np.load allocates: it must be the declared one first.
        header_shape, header_dtype = _npy_header(raw)
        if header_shape != shape or header_dtype.name != dtype:
            raise ModelFileError(
                f"{path!r}: {member} holds {header_dtype.name} {header_shape}, the config declares {dtype} {shape}"
            )
        array = backend.xp.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, SyntaxError, tokenize.TokenError) as e:  # numpy tokenizes a malformed header
        if isinstance(e, ModelFileError):
            raise
        raise ModelFileError(f"{path!r}: {member} is not a valid .npy array: {e}") from e
    if array.shape != shape or array.dtype.name != dtype:
        raise ModelFileError(
            f"{path!r}: {member} holds {array.dtype.name} {array.shape}, the config declares {dtype} {shape}"
        )
    return array


def _npy_header(raw: bytes):
    """(shape, dtype) a .npy file's header declares, read without touching its data; ValueError if malformed."""
    fmt = backend.xp.lib.format
    f = io.BytesIO(raw)
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
