"""Inference speed of keras.applications models saved by Keras 3: convscope, onnxruntime, PyTorch.

    python benchmarks/bench_applications.py --keras-python /work/kvenv/bin/python   # builds the models
    python benchmarks/bench_applications.py a.keras b.keras --keras-python ...      # models of your own
    python benchmarks/bench_applications.py --profile     # + where convscope's time goes (MobileNetV2)

The models: MobileNetV2 (alpha 0.35, 96x96x3) and EfficientNetB0 (64x64x3), ``weights=None``, 10
classes. Without file arguments the script reads each from tests/fixtures/applications/ (a file whose
name contains "mobilenetv2" / "efficientnetb0") and builds the others under ``--keras-python``
(default ``$CONVSCOPE_KERAS_PYTHON``), a Python with Keras 3 and torch, into a temporary folder, with
their BatchNormalization statistics and scales drawn at random (seed 0) so no layer computes the
identity and the outputs are not uniform.

Each model is timed, on the same random input, at batch 1 and 32 in

- convscope: ``convscope.load_model(path)`` then ``model.predict(x, batch_size=b, verbose=0)``; the
  "convscope call" row is ``model(x)``, the same graph without predict's batching and callbacks;
- onnxruntime: convscope's ``model.export_onnx`` of the same model, CPU provider, all graph
  optimizations, ``intra_op_num_threads`` = the thread count, one inter-op thread;
- PyTorch: Keras 3's torch backend loading the same ``.keras`` file (``keras.saving.load_model``) in
  a process of its own under ``--keras-python`` (this script again, ``--torch-worker``), timing
  ``model(x, training=False)`` under ``torch.no_grad()``, torch at the thread count.

Timing: warm-up (at least 3 calls and twice ``--block`` seconds: torch's first calls at a new shape
are several times slower), then ``--repeats`` blocks of k calls each (k chosen so a block takes about
``--block`` seconds), the best block reported as images/s. All pools run at ``--threads`` threads
(default 2, the project's machines' core count): OMP / OpenBLAS / MKL / Numba via the environment,
set before NumPy loads (the script re-executes itself to set them and to drop OPENBLAS_CORETYPE /
OPENBLAS_L2_SIZE, which slow OpenBLAS where a machine sets them). The largest difference between
each framework's outputs and convscope's is printed beside its row.

``--profile`` times every step of convscope's predict on MobileNetV2 at batch 32 by layer type (1x1
and kxk convolutions apart), then runs cProfile over the same calls and lists the functions with the
most time of their own.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time


def _threads_from_argv() -> str:
    argv = sys.argv[1:]
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return "2"


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
SLOW_BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

# The pools read their sizes once, when their library loads: set them (and drop the slow-BLAS settings)
# before NumPy is imported, by re-executing with the environment fixed.
_threads = _threads_from_argv()
if any(k in os.environ for k in SLOW_BLAS_VARS) or any(os.environ.get(k) != _threads for k in THREAD_VARS):
    _env = {k: v for k, v in os.environ.items() if k not in SLOW_BLAS_VARS}
    _env.update({k: _threads for k in THREAD_VARS})
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *sys.argv[1:]], _env)

import numpy as np  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "applications")
APPLICATIONS = {  # file-name key -> (keras.applications constructor, its keyword arguments)
    "mobilenetv2": ("MobileNetV2", {"input_shape": (96, 96, 3), "alpha": 0.35}),
    "efficientnetb0": ("EfficientNetB0", {"input_shape": (64, 64, 3)}),
}
BATCHES = (1, 32)


def best_rate(call, x, repeats: int, block: float) -> float:
    """Images/s of ``call(x)``: warm-up (3 calls, 2 blocks' time at least), then the best of ``repeats`` blocks
    of k calls (~``block`` s each, k from the last warm-up call)."""
    start = time.perf_counter()
    calls = 0
    while calls < 3 or time.perf_counter() - start < 2 * block:  # torch's oneDNN settles over several calls
        last = time.perf_counter()
        call(x)
        calls += 1
    k = max(1, math.ceil(block / (time.perf_counter() - last)))
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(k):
            call(x)
        best = min(best, (time.perf_counter() - start) / k)
    return len(x) / best


def inputs(shape, batch: int):
    """The input every framework sees: uniform [0, 1) pixels, seeded by the batch size."""
    return np.random.default_rng(batch).random((batch, *shape), dtype=np.float32)


# ---- run under --keras-python (Keras 3 + torch): building the models, timing the torch backend ----

def build_models(folder: str) -> None:
    """Save each of APPLICATIONS as ``folder/<key>.keras``, BatchNormalization state randomized (seed 0)."""
    import keras

    rng = np.random.default_rng(0)
    for key, (name, kwargs) in APPLICATIONS.items():
        model = getattr(keras.applications, name)(weights=None, classes=10, **kwargs)
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                # Fresh BN layers are the identity (gamma 1, beta 0, mean 0, variance 1): draw values that
                # make them compute something, as trained ones do.
                gamma, beta, mean, variance = (w.shape for w in layer.get_weights())
                layer.set_weights([rng.uniform(0.5, 1.5, gamma), rng.normal(0, 0.1, beta),
                                   rng.normal(0, 0.1, mean), rng.uniform(0.5, 1.5, variance)])
        model.save(os.path.join(folder, f"{key}.keras"))


def torch_worker(path: str, threads: int, repeats: int, block: float, out: str) -> None:
    """Time Keras's torch backend on ``path`` at BATCHES; write rates, outputs and versions to ``out``."""
    import keras
    import torch

    torch.set_num_threads(threads)
    model = keras.saving.load_model(path, compile=False)
    shape = tuple(model.inputs[0].shape[1:])
    rates, outputs = {}, {}

    def call(x):
        with torch.no_grad():
            return model(x, training=False)

    for b in BATCHES:
        x = torch.from_numpy(inputs(shape, b))
        rates[str(b)] = best_rate(call, x, repeats, block)
        outputs[f"batch{b}"] = keras.ops.convert_to_numpy(call(x))
    np.savez(out + ".npz", **outputs)
    with open(out, "w") as f:
        json.dump({"rates": rates, "torch": torch.__version__, "keras": keras.__version__,
                   "threads": torch.get_num_threads(), "backend": keras.backend.backend()}, f)


def run_keras_python(python: str, args) -> subprocess.CompletedProcess:
    env = dict(os.environ, KERAS_BACKEND="torch", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([python, os.path.abspath(__file__), *args], env=env, capture_output=True, text=True)


def torch_rates(python, path, args):
    """``(rates by batch, outputs by batch, versions)`` from a --torch-worker process, or a reason string."""
    if not python:
        return "no --keras-python given and CONVSCOPE_KERAS_PYTHON is not set"
    with tempfile.TemporaryDirectory(prefix="convscope-bench-torch-") as folder:
        out = os.path.join(folder, "result.json")
        done = run_keras_python(python, ["--torch-worker", path, "--out", out, "--threads", str(args.threads),
                                         "--repeats", str(args.repeats), "--block", str(args.block)])
        if done.returncode:
            return f"the torch worker failed: {' | '.join(done.stderr.strip().splitlines()[-2:])}"
        with open(out) as f:
            info = json.load(f)
        with np.load(out + ".npz") as z:
            outputs = {int(k[5:]): z[k] for k in z.files}
    return {int(b): r for b, r in info.pop("rates").items()}, outputs, info


# ---- the main process: convscope and onnxruntime ----

def model_files(args):
    """``[(key, path)]`` to benchmark, and the TemporaryDirectory holding built ones (or None).

    File arguments win; else each of APPLICATIONS is read from FIXTURES when a file there names it, and the
    others are built under ``--keras-python`` (or left out, with a note, without one)."""
    if args.files:
        return [(os.path.splitext(os.path.basename(p))[0], p) for p in args.files], None
    found = {}
    for key in APPLICATIONS:
        hits = sorted(p for p in glob.glob(os.path.join(FIXTURES, "*.keras")) if key in os.path.basename(p).lower())
        if hits:
            found[key] = hits[0]
    missing = [key for key in APPLICATIONS if key not in found]
    folder = None
    if missing and args.keras_python:
        folder = tempfile.TemporaryDirectory(prefix="convscope-bench-apps-")
        done = run_keras_python(args.keras_python, ["--build-into", folder.name])
        if done.returncode:
            sys.exit(f"building the models under {args.keras_python} failed:\n{done.stderr[-2000:]}")
        found.update({key: os.path.join(folder.name, f"{key}.keras") for key in missing})
    elif missing:
        print(f"not in {FIXTURES} and no --keras-python to build them: {', '.join(missing)}")
    if not found:
        sys.exit("no model files: give .keras paths, put them in tests/fixtures/applications, or pass --keras-python")
    return [(key, found[key]) for key in APPLICATIONS if key in found], folder


def ort_session(model, folder: str, threads: int):
    import onnxruntime as ort

    path = os.path.join(folder, "model.onnx")
    model.export_onnx(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def bench_model(key, path, args):
    """Rows ``{framework: {batch: img/s}}`` and max |output - convscope's| per framework, or a reason."""
    import convscope

    try:
        model = convscope.load_model(path, compile=False)
    except Exception as error:  # a model convscope cannot read yet: report the row as skipped, with why
        return f"convscope.load_model failed: {type(error).__name__}: {str(error)[:200]}"
    shape = tuple(model.input_shape[1:])
    calls = {"convscope": lambda x: model.predict(x, batch_size=len(x), verbose=0),
             "convscope call": lambda x: model(x)}
    notes = {}
    with tempfile.TemporaryDirectory(prefix="convscope-bench-onnx-") as folder:
        try:
            calls["onnxruntime"] = ort_session(model, folder, args.threads)
        except Exception as error:  # export or session failure: the row is skipped with the reason
            notes["onnxruntime"] = f"{type(error).__name__}: {str(error)[:200]}"
        rows = {f: {} for f in calls}
        diffs = {}
        for b in BATCHES:
            x = inputs(shape, b)
            reference = calls["convscope"](x)
            for f, call in calls.items():
                rows[f][b] = best_rate(call, x, args.repeats, args.block)
                diffs[f] = max(diffs.get(f, 0.0), float(np.abs(np.asarray(call(x)) - reference).max()))
    peer = torch_rates(args.keras_python, path, args)
    if isinstance(peer, str):
        notes["pytorch"] = peer
    else:
        rows["pytorch"], outputs, info = peer
        notes["versions"] = info
        diffs["pytorch"] = max(float(np.abs(outputs[b] - model.predict(inputs(shape, b), verbose=0)).max())
                               for b in BATCHES)
    return {"shape": shape, "params": model.count_params(), "rows": rows, "diffs": diffs, "notes": notes}


def print_table(key, result) -> None:
    rows, diffs = result["rows"], result["diffs"]
    print(f"\n{key} {result['shape']}, {result['params']:,} parameters: images/s, best of the blocks")
    print(f"{'':16}" + "".join(f"{'batch ' + str(b):>12}" for b in BATCHES) + f"{'max |diff|':>13}")
    for f, r in rows.items():
        print(f"{f:16}" + "".join(f"{r[b]:12.1f}" for b in BATCHES) + f"{diffs.get(f, 0.0):13.1e}")
    for peer in ("onnxruntime", "pytorch"):
        if peer in rows:
            print(f"{'/ ' + peer:16}" + "".join(f"{rows['convscope'][b] / rows[peer][b]:12.2f}" for b in BATCHES)
                  + "   (convscope / " + peer + "; >= 1.0: convscope as fast or faster)")
        else:
            print(f"{peer} skipped: {result['notes'].get(peer)}")


def layer_kind(layer) -> str:
    """The profile's row name: the class, convolutions split by 1x1 / kxk kernel, ReLU6 named as such."""
    name = type(layer).__name__
    if name == "Conv2D":
        return "Conv2D 1x1" if tuple(layer.kernel_size) == (1, 1) else "Conv2D %dx%d" % tuple(layer.kernel_size)
    if name == "ReLU" and getattr(layer, "max_value", None) is not None:
        return f"ReLU (max {layer.max_value:g})"
    return name


def profile(path: str, calls: int) -> None:
    """Per-layer-type ms per batch of predict at batch 32 (wall clock per step), then cProfile's top functions."""
    import cProfile
    import pstats

    import convscope

    model = convscope.load_model(path, compile=False)
    x = inputs(tuple(model.input_shape[1:]), 32)
    predict = lambda: model.predict(x, batch_size=32, verbose=0)  # noqa: E731
    predict()
    spent, counts = {}, {}
    originals = []
    for layer in model.layers:
        kind = layer_kind(layer)
        counts[kind] = counts.get(kind, 0) + 1
        original = layer.forward

        def timed(inp, training=False, _original=original, _kind=kind):
            start = time.perf_counter()
            out = _original(inp, training=training)
            spent[_kind] = spent.get(_kind, 0.0) + time.perf_counter() - start
            return out

        layer.forward = timed  # an instance attribute: the graph's steps call it in place of the class's
        originals.append(layer)
    start = time.perf_counter()
    for _ in range(calls):
        predict()
    total = (time.perf_counter() - start) / calls * 1e3
    for layer in originals:
        del layer.forward
    print(f"\nWhere convscope's predict spends its time: {os.path.basename(path)}, batch 32, mean of {calls} calls,"
          f" {total:.1f} ms per batch")
    print(f"{'layer type':24}{'layers':>7}{'ms/batch':>10}{'share':>8}")
    for kind, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        ms = seconds / calls * 1e3
        print(f"{kind:24}{counts[kind]:7d}{ms:10.2f}{ms / total:8.1%}")
    other = total - sum(spent.values()) / calls * 1e3
    print(f"{'(outside layers)':24}{'':7}{other:10.2f}{other / total:8.1%}")

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        predict()
    profiler.disable()
    stats = pstats.Stats(profiler)
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:15]
    print(f"\ncProfile, the same {calls} calls: functions by own time (ms per batch, profiler overhead included)")
    print(f"{'own ms':>8}{'cum ms':>8}{'calls/batch':>12}  function")
    for (file, line, func), (_, ncalls, own, cum, _) in rows:
        shown = os.path.relpath(file, ROOT) if "convscope" in file else os.path.basename(file)
        where = file if file.startswith("~") else f"{shown}:{line}"
        print(f"{own / calls * 1e3:8.2f}{cum / calls * 1e3:8.2f}{ncalls / calls:12.0f}  {func} ({where})")


def machine(threads: int) -> str:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        from threadpoolctl import threadpool_info

        blas = "; ".join(f"{i['internal_api']} {i.get('version')} {i.get('architecture')} x{i['num_threads']}"
                         for i in threadpool_info() if i["user_api"] == "blas")
    except ImportError:
        blas = "threadpoolctl not installed"
    from convscope.arraymath import jit

    try:
        import onnxruntime

        ort = f"onnxruntime {onnxruntime.__version__}"
    except ImportError:
        ort = "onnxruntime not installed"
    numba = f"numba {jit.numba.__version__} kernels {'on' if jit.enabled() else 'off'}" if jit.numba else "no numba"
    pools = ", ".join(f"{k}={os.environ.get(k)}" for k in THREAD_VARS)
    return (f"{cpu}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; numpy {np.__version__}, BLAS: {blas}; "
            f"{numba}; {ort}; {pools}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help=".keras files (default: tests/fixtures/applications, else built)")
    parser.add_argument("--keras-python", default=os.environ.get("CONVSCOPE_KERAS_PYTHON"),
                        help="a Python with keras 3 and torch: builds the models and runs the PyTorch column "
                             "(default: $CONVSCOPE_KERAS_PYTHON)")
    parser.add_argument("--threads", type=int, default=2, help="threads of every pool (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks per measurement; the best is kept")
    parser.add_argument("--block", type=float, default=0.5, help="seconds per timed block (about)")
    parser.add_argument("--profile", action="store_true", help="also profile convscope's predict on MobileNetV2")
    parser.add_argument("--profile-calls", type=int, default=10)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--torch-worker", help=argparse.SUPPRESS)
    parser.add_argument("--build-into", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_into:
        return build_models(args.build_into)
    if args.torch_worker:
        return torch_worker(args.torch_worker, args.threads, args.repeats, args.block, args.out)

    files, folder = model_files(args)
    print(f"Machine: {machine(args.threads)}")
    print(f"Timing: warm-up >= 3 calls and {2 * args.block:g} s, best of {args.repeats} blocks of ~{args.block:g} s, "
          f"{args.threads} threads")
    results = {}
    try:
        for key, path in files:
            result = bench_model(key, path, args)
            if isinstance(result, str):
                print(f"\n{key}: skipped, {result}")
                results[key] = {"skipped": result}
                continue
            if "versions" in result["notes"]:
                v = result["notes"]["versions"]
                print(f"\nPyTorch column: torch {v['torch']} via keras {v['keras']} ({v['backend']} backend), "
                      f"{v['threads']} threads")
            print_table(key, result)
            results[key] = {**result, "path": path}
        if args.profile:
            profile(next((p for k, p in files if "mobilenet" in k.lower()), files[0][1]), args.profile_calls)
    finally:
        if folder is not None:
            folder.cleanup()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(args.threads), **results}, f, indent=1, default=str)


if __name__ == "__main__":
    main()
