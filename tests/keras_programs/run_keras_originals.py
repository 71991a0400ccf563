"""Run the original Keras version of every ported program and record what it built and measured.

Each ``pNN_*.py`` here is a Keras program whose import lines were swapped to convscope.
This script swaps them back (``to_original``), runs the result under real Keras and writes
``keras_results.json``: per program, ``describe(...)`` of its globals after the run.
tests/test_keras_programs.py runs the ports under convscope and compares the same description.

Run it with the reference Keras (torch backend, CPU), from the repository root:

    KERAS_BACKEND=torch CUDA_VISIBLE_DEVICES="" /work/kvenv/bin/python \
        tests/keras_programs/run_keras_originals.py [pNN_name ...]

With names, only those programs run and their entries are replaced in the existing file.

Recorded per program (JSON):

    {"models":    {global name: {"count_params": int | None,
                                 "layers": [[class name, output shape | None, [weight shapes]], ...],
                                 "history": last-epoch logs of model.history | None}},
     "histories": {global name: last-epoch logs of a History},
     "values":    {global name: number | [numbers] | {name: number}}   for the names in RESULT_GLOBALS,
     "seconds": wall time}                       or {"error": "Type: message"} if the original failed.

Last-epoch logs are ``{"keys": sorted log names, "last": {name: value}, "epochs": number of epochs run}``.
This file is imported by the test (for ``describe``), so it imports neither Keras nor convscope at module level.
"""

import contextlib
import gzip
import io
import json
import math
import os
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "keras_results.json"

# Globals that programs use for evaluation results (the names the sources chose), recorded when numeric.
RESULT_GLOBALS = ("score", "scores", "results", "test_scores", "test_metrics", "test_loss", "test_acc",
                  "loss", "acc", "initial_lr", "final_lr", "epochs_run", "total_penalty", "direct_penalty",
                  "function_penalty", "subclass_penalty", "projected")

# Only the import lines change between a port and its original (module names anchored at the line start).
_IMPORT_BACK = [
    (re.compile(r"^(\s*)import convscope as keras\b", re.M), r"\1import keras"),
    (re.compile(r"^(\s*)from convscope(\.| )", re.M), r"\1from keras\2"),
]


def to_original(source: str) -> str:
    """The Keras program a port came from: its import lines turned back from convscope to keras."""
    for pattern, replacement in _IMPORT_BACK:
        source = pattern.sub(replacement, source)
    return source


def _number(value):
    """A float from a Python / NumPy / tensor scalar, or None when it is not one."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(result) else result


def _jsonable(value):
    """A number, a list of numbers or a dict of numbers as JSON, or None for anything else."""
    if isinstance(value, dict):
        out = {str(k): _number(v) for k, v in value.items()}
        return out if all(v is not None for v in out.values()) else None
    if isinstance(value, (list, tuple)):
        out = [_number(v) for v in value]
        return out if all(v is not None for v in out) else None
    if isinstance(value, (int, float)) or type(value).__module__.startswith(("numpy", "torch", "convscope")):
        if getattr(value, "ndim", 0) not in (0, None):
            return None
        return _number(value)
    return None


def _last_logs(history):
    logs = history.history
    return {"keys": sorted(logs), "last": {k: _number(v[-1]) for k, v in logs.items() if v},
            "epochs": len(history.epoch)}


def _shape(tensor):
    return [None if d is None else int(d) for d in tensor.shape]


def _output_shape(layer):
    """The layer's symbolic output shape(s), or None where it has none (subclassed internals, shared layers)."""
    try:
        out = layer.output
    except Exception:  # noqa: BLE001 -- Keras and convscope raise different types; "no single output" is recorded
        return None
    if isinstance(out, (list, tuple)):
        return [_shape(t) for t in out]
    if isinstance(out, dict):
        return {k: _shape(t) for k, t in out.items()}
    return _shape(out)


def describe_model(model, history_class):
    try:
        count = int(model.count_params())
    except Exception:  # noqa: BLE001 -- an unbuilt model has no count; None records that
        count = None
    layers = [[type(layer).__name__, _output_shape(layer), [list(map(int, w.shape)) for w in layer.weights]]
              for layer in model.layers]
    history = getattr(model, "history", None)
    return {"count_params": count, "layers": layers,
            "history": _last_logs(history) if isinstance(history, history_class) else None}


def describe(namespace: dict, model_class, history_class) -> dict:
    """What a program left in its globals: its models, its History objects and its result values."""
    models, histories, values = {}, {}, {}
    for name, value in namespace.items():
        if name.startswith("_"):
            continue
        if isinstance(value, model_class):
            models[name] = describe_model(value, history_class)
        elif isinstance(value, history_class):
            histories[name] = _last_logs(value)
        elif name in RESULT_GLOBALS and _jsonable(value) is not None:
            values[name] = _jsonable(value)
    return {"models": models, "histories": histories, "values": values}


def programs() -> list[Path]:
    return sorted(HERE.glob("p[0-9][0-9]_*.py"))


def _idx(path: Path):
    import numpy as np

    data = gzip.open(path).read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def _offline_mnist() -> Path:
    """~/.keras/datasets/mnist.npz written from the IDX files in $CONVSCOPE_DATA/mnist (or /work/shared/data)."""
    import numpy as np

    target = Path.home() / ".keras" / "datasets" / "mnist.npz"
    if not target.exists():
        folder = Path(os.environ.get("CONVSCOPE_DATA", "/work/shared/data")) / "mnist"
        arrays = {name: _idx(folder / f"{stem}-ubyte.gz") for name, stem in [
            ("x_train", "train-images-idx3"), ("y_train", "train-labels-idx1"),
            ("x_test", "t10k-images-idx3"), ("y_test", "t10k-labels-idx1")]}
        target.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(target, **arrays)
    return target


def _use_offline_mnist(keras_mnist_module, path: Path) -> None:
    """Keras's load_data checks the cached file's SHA-256 against the published archive and re-downloads on a
    mismatch; a file rebuilt from the IDX files holds the same arrays but not the same bytes, so the module's
    get_file is pointed at it (load_data's own np.load and splitting still run)."""
    keras_mnist_module.get_file = lambda *args, **kwargs: str(path)


def run_original(path: Path, keras) -> dict:
    source = to_original(path.read_text())
    keras.utils.set_random_seed(0)
    keras.backend.clear_session()
    namespace = {"__name__": "__main__", "__file__": str(path)}
    start = time.perf_counter()
    previous = os.getcwd()
    with tempfile.TemporaryDirectory() as work:
        os.chdir(work)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(source, str(path), "exec"), namespace)
        except Exception as error:  # noqa: BLE001 -- a failing original is recorded, not fatal
            traceback.print_exc()
            return {"error": f"{type(error).__name__}: {error}"}
        finally:
            os.chdir(previous)
    record = describe(namespace, keras.Model, keras.callbacks.History)
    record["seconds"] = round(time.perf_counter() - start, 2)
    return record


def main(names: list[str]) -> None:
    import keras
    from keras.src.datasets import mnist as keras_mnist

    _use_offline_mnist(keras_mnist, _offline_mnist())
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() and names else {}
    chosen = [p for p in programs() if not names or p.stem in names]
    for path in chosen:
        results[path.stem] = run_original(path, keras)
        record = results[path.stem]
        print(path.stem, record["error"] if "error" in record else f"ok {record['seconds']} s", flush=True)
    results["_keras_version"] = keras.__version__
    RESULTS.write_text(json.dumps(dict(sorted(results.items())), indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
