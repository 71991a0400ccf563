"""Hostile model files that tell the truth about their sizes (issue 16): refused before anything is allocated.

Each bomb is generated here (a small file whose headers honestly declare a huge shape, with data that really
inflates to it) and loaded in a fresh Python process that reports how long the reader took and how far its peak
resident memory rose above the level it had after its imports; the bound is the one ``docs/reliability.md``
promises: refused in under 2 s and 200 MB. Where a bomb is a scaled-down version of a reported one, the budget of
its process is lowered to keep the same ratio (``$CONVSCOPE_MAX_BYTES``).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import convscope
from convscope import backend, initializers, layers
from convscope.errors import ModelFileError
from convscope.saving import load_checkpoint

h5py = pytest.importorskip("h5py")

MB = 2**20
SECONDS, PEAK_MB = 2.0, 200

# Runs in a fresh process: imports first (their memory is the process's level), then one load, measured.
_PROBE = """
import json, resource, sys, time
import h5py
from convscope.interop import load_keras
from convscope.saving import load_checkpoint
load = load_keras if sys.argv[1] == "keras" else load_checkpoint
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    load(sys.argv[2])
    error, message = None, ""
except Exception as e:
    error, message = type(e).__name__, str(e)
seconds = time.perf_counter() - start
peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({"error": error, "message": message, "seconds": seconds, "peak_mb": peak_mb}))
"""


def load_in_fresh_process(kind: str, path, budget: str | None = None) -> dict:
    """``{"error", "message", "seconds", "peak_mb"}`` of loading ``path`` (``kind``: native or keras) in a new
    process, with ``$CONVSCOPE_MAX_BYTES`` set to ``budget`` if given."""
    env = {k: v for k, v in os.environ.items() if k != "CONVSCOPE_MAX_BYTES"}
    if budget is not None:
        env["CONVSCOPE_MAX_BYTES"] = budget
    done = subprocess.run([sys.executable, "-c", _PROBE, kind, str(path)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{os.path.basename(path)}: {result['error']} in {result['seconds']:.2f} s, "
          f"peak +{result['peak_mb']:.0f} MB: {result['message'][:300]}")
    return result


def assert_refused_within_bounds(result: dict, match: str) -> None:
    figures = f"{result['seconds']:.2f} s, peak +{result['peak_mb']:.0f} MB"
    assert result["error"] == "ModelFileError", f"not refused ({figures}): {result}"
    assert re.search(match, result["message"]), result["message"]
    assert result["seconds"] < SECONDS, f"refused, but in {figures}"
    assert result["peak_mb"] < PEAK_MB, f"refused, but at {figures}"


# -- generating honest bombs --------------------------------------------------------------------------------------
def npy_header(shape, dtype="<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


def write_zip(path, members, method=zipfile.ZIP_DEFLATED, level=1):
    """Write ``members``: ``(name, bytes)`` or ``(name, (header bytes, zero bytes after it))``, the zeros
    streamed through the compressor a megabyte at a time (never held whole)."""
    with zipfile.ZipFile(path, "w", method, compresslevel=level if method == zipfile.ZIP_DEFLATED else None) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
            info.compress_type = method
            with zf.open(info, "w", force_zip64=True) as f:
                head, zeros = data if isinstance(data, tuple) else (data, 0)
                f.write(head)
                chunk = bytes(min(zeros, MB))
                while zeros:
                    f.write(chunk[:min(zeros, MB)])
                    zeros -= min(zeros, MB)
    return path


def native_bomb(path, layer_specs, input_shape, weights, optimizer=None, state=()):
    """A convscope model file whose ``weights`` (and optimizer ``state``) are ``[(name, shape, dtype)]`` of zeros."""
    config = {
        "format": "convscope.model", "format_version": 2,
        "model": {"class_name": "Sequential", "config": {"name": "bomb", "input_shape": list(input_shape),
                                                         "layers": layer_specs}},
        "compile": None if optimizer is None else {"optimizer": optimizer, "loss": "mse", "metrics": []},
        "weights": [{"name": n, "shape": list(s), "dtype": d} for n, s, d in weights],
        "optimizer_state": [{"name": n, "shape": list(s), "dtype": d} for n, s, d in state],
        "training_state": None,
    }
    members = [("config.json", json.dumps(config).encode())]
    for folder, entries in (("weights", weights), ("optimizer", state)):
        for i, (_, shape, dtype) in enumerate(entries):
            item = np.dtype(dtype).itemsize
            members.append((f"{folder}/{i:04d}.npy", (npy_header(shape, np.dtype(dtype).str), math.prod(shape) * item)))
    return write_zip(path, members)


def dense(name, units, **config):
    return {"class_name": "Dense", "config": {"name": name, "units": units, **config}}


def adam_state(params):
    """Adam's state entries for ``params`` ``[(shape)]``: iterations, learning rate, momentum and velocity."""
    state = [("iterations", (), "int64"), ("learning_rate", (), "float64")]
    for slot in ("momentum", "velocity"):
        state += [(f"{slot}/{i}", shape, "float32") for i, shape in enumerate(params)]
    return state


# -- finding 2: native model files ---------------------------------------------------------------------------------
def test_dense_kernel_declared_over_the_budget_is_refused_before_reading(tmp_path):
    """784 x 340,000 zero weights deflated (4.2 GB, 44 s to load: 2.1 GB of values and gradients for a 1 GiB
    budget), scaled by 4: 784 x 85,000 under a 256 MB budget."""
    units = 85_000
    path = native_bomb(tmp_path / "dense.convscope", [dense("dense", units)], [784],
                       [("dense/kernel", (784, units), "float32"), ("dense/bias", (units,), "float32")])
    assert os.path.getsize(path) < 2 * MB
    result = load_in_fresh_process("native", path, budget="256M")
    assert_refused_within_bounds(result, r"loading its model \(66,725,000 weight values\); the largest array: "
                                         r"dense/kernel float32 \(784, 85000\) would take 534 MB, above the "
                                         r"memory budget of 268 MB")


def test_optimizer_slot_is_checked_against_its_parameter_before_it_is_read(tmp_path):
    """A slot declared (2**26,) floats (256 MB, within the budget) for a (784, 3) kernel: its shape is compared with
    the parameter's before a byte of it is read."""
    params = [(784, 3), (3,)]
    state = adam_state(params)
    state[2] = ("momentum/0", (2**26,), "float32")
    path = native_bomb(tmp_path / "slot.convscope", [dense("dense", 3)], [784],
                       [("dense/kernel", params[0], "float32"), ("dense/bias", params[1], "float32")],
                       optimizer="adam", state=state)
    result = load_in_fresh_process("native", path)
    assert_refused_within_bounds(result, r"optimizer state 'momentum/0' declares shape \(67108864,\), Adam keeps it "
                                         r"in the shape of its parameter, \(784, 3\)")


def test_optimizer_state_over_the_budget_is_refused_before_building(tmp_path):
    """The reported (2**28,) floats (1 GiB), scaled by 4: (2**26,) under a 256 MB budget."""
    params = [(784, 3), (3,)]
    state = adam_state(params)
    state[4] = ("velocity/0", (2**26,), "float32")
    path = native_bomb(tmp_path / "state.convscope", [dense("dense", 3)], [784],
                       [("dense/kernel", params[0], "float32"), ("dense/bias", params[1], "float32")],
                       optimizer="adam", state=state)
    result = load_in_fresh_process("native", path, budget="256M")
    assert_refused_within_bounds(result, r"and its optimizer state \(6 arrays\); the largest array: velocity/0 "
                                         r"float32 \(67108864,\) would take 5\d\d MB, above the memory budget")


def test_the_compiled_state_is_not_budgeted_when_loading_without_compiling(tmp_path):
    params = [(784, 3), (3,)]
    state = adam_state(params)
    state[4] = ("velocity/0", (2**20,), "float32")
    path = native_bomb(tmp_path / "state.convscope", [dense("dense", 3)], [784],
                       [("dense/kernel", params[0], "float32"), ("dense/bias", params[1], "float32")],
                       optimizer="adam", state=state)
    model, _ = load_checkpoint(path, compile=False)
    assert model.optimizer is None and model.get_weights()[0].shape == (784, 3)
    with pytest.raises(ModelFileError, match=r"'velocity/0' declares shape \(1048576,\), Adam keeps it in the shape"):
        load_checkpoint(path)


def test_an_orthogonal_initializer_costs_nothing_at_load(tmp_path):
    """A 4000 x 4000 Orthogonal kernel in a file of a few hundred KB took 6.6 s and 787 MB at build (a QR
    decomposition whose result the file's weights replace): the model is built with placeholders."""
    spec = dense("dense", 4000, kernel_initializer={"class_name": "Orthogonal", "config": {"gain": 1.0, "seed": 0}})
    path = native_bomb(tmp_path / "orthogonal.convscope", [spec], [4000],
                       [("dense/kernel", (4000, 4000), "float32"), ("dense/bias", (4000,), "float32")])
    assert os.path.getsize(path) < MB
    result = load_in_fresh_process("native", path)
    assert result["error"] is None, result
    # What a 64 MB kernel honestly takes: the array read, a gradient and little else; no QR.
    assert result["seconds"] < SECONDS and result["peak_mb"] < 3 * 64 + 32, result


def test_loading_builds_with_placeholders_and_leaves_the_generator_alone(tmp_path):
    model = convscope.Sequential([convscope.Input((6,)), layers.Dense(5, kernel_initializer="orthogonal")])
    model.save(tmp_path / "m.convscope")
    backend.set_seed(3)
    expected = backend.global_rng().random(3)
    backend.set_seed(3)
    loaded = load_checkpoint(tmp_path / "m.convscope")[0]
    assert np.array_equal(backend.global_rng().random(3), expected)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        assert np.array_equal(a, b)


def test_placeholders_draw_nothing_and_still_check_shapes():
    with initializers.placeholders():
        assert not initializers.Orthogonal(seed=1)((3000, 3000)).any()
        assert initializers.get("ones")((2, 2), "float64").dtype == np.float64
        with pytest.raises(ValueError, match=r"Orthogonal: argument `shape` expected rank >= 2, received \(5,\)"):
            initializers.Orthogonal()((5,))
    assert initializers.Ones()((2,)).tolist() == [1.0, 1.0]


def test_orthogonal_checks_its_decomposition_against_the_budget(monkeypatch):
    monkeypatch.setenv("CONVSCOPE_MAX_BYTES", "64M")
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"Orthogonal initializer for shape \(3000, 3000\) \(a QR decomposition of a "
                                         r"3000 x 3000 matrix\) would take 360 MB, above the memory budget of 67.1 MB "
                                         r"\(nothing was drawn; "):
        initializers.Orthogonal()((3000, 3000))
    assert time.perf_counter() - start < 0.5
    assert initializers.Orthogonal(seed=0)((64, 32)).shape == (64, 32)


@pytest.mark.parametrize("text", ["0", "0K", "0.0001"])
def test_a_budget_of_nothing_is_an_error_not_a_refusal_of_everything(monkeypatch, text):
    from convscope import budget

    monkeypatch.setenv("CONVSCOPE_MAX_BYTES", text)
    with pytest.raises(ValueError, match=rf"\$CONVSCOPE_MAX_BYTES must be a positive number of bytes .*received '{text}'"):
        budget.limit()


# -- finding 3: Keras files ----------------------------------------------------------------------------------------
def keras_config(inputs: int, units: int) -> dict:
    """A Keras 3 Sequential of one Dense, as ``save_keras`` writes it."""
    from convscope.interop.keras_export import keras_model_config

    config = keras_model_config(convscope.Sequential([convscope.Input((inputs,)), layers.Dense(3, name="dense")]))
    config["config"]["layers"][-1]["config"]["units"] = units
    return config


def keras_archive(path, config, weights: bytes | tuple, method=zipfile.ZIP_DEFLATED, level=1):
    metadata = {"keras_version": "3.15.1", "date_saved": "2026-01-01@00:00:00"}
    return write_zip(path, [("metadata.json", json.dumps(metadata).encode()),
                            ("config.json", json.dumps(config).encode()), ("model.weights.h5", weights)],
                     method, level)


def test_hdf5_chunks_inside_a_deflated_zip_are_measured_against_the_file(tmp_path):
    """A 5.7 KB .keras became 1.3 GB: gzip chunks (under 1000x each) inside a zip that deflates them again. Here
    a 784 x 40,000 kernel (125 MB, within the budget) in a file of a few KB."""
    units = 40_000
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        kernel = f.create_dataset("layers/dense/vars/0", shape=(784, units), dtype="f4", chunks=(784, 64),
                                  compression="gzip", compression_opts=1)
        kernel.write_direct(np.zeros((784, units), "f4"))
        f.create_dataset("layers/dense/vars/1", data=np.zeros(units, "f4"))
        assert kernel.size * 4 < 1000 * kernel.id.get_storage_size()  # each chunk passes the HDF5 check alone
    path = keras_archive(tmp_path / "nested.keras", keras_config(784, units), buf.getvalue(), level=9)
    assert os.path.getsize(path) < 64 * 2**10
    result = load_in_fresh_process("keras", path)
    assert_refused_within_bounds(result, r"the model's 31,400,000 weights take at least 62800000 bytes: the file "
                                         r"expands to more than 1000 times its \d+ bytes")


def test_weights_read_into_a_model_are_measured_against_the_file_on_disk(tmp_path):
    """``load_weights`` of a .keras into a built model: each gzip chunk passes HDF5's own 1000x check, the zip
    deflates the chunks again, and all of them together are refused against the bytes of the file."""
    from convscope.interop import load_keras_weights

    model = convscope.Sequential([convscope.Input((64,)), layers.Dense(32768, name="dense")])
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_group("vars")
        kernel = f.create_dataset("layers/dense/vars/0", shape=(64, 32768), dtype="f4", chunks=(64, 512),
                                  compression="gzip", compression_opts=9)
        kernel.write_direct(np.zeros((64, 32768), "f4"))
        f.create_dataset("layers/dense/vars/1", data=np.zeros(32768, "f4"))
        assert kernel.size * 4 < 1000 * kernel.id.get_storage_size()
    path = keras_archive(tmp_path / "into.keras", keras_config(64, 32768), buf.getvalue(), level=9)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ModelFileError, match=r"reading its weights expands to 8519680 bytes from the \d+ bytes of "
                                             r"the file, more than 1000 times"):
        load_keras_weights(model, path)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))


def test_a_weights_member_larger_than_the_architecture_needs_is_not_inflated(tmp_path):
    """A Dense(3) whose model.weights.h5 declares (and holds, deflated) 256 MB: refused from its header."""
    path = keras_archive(tmp_path / "big_member.keras", keras_config(4, 3), (b"", 256 * MB))
    result = load_in_fresh_process("keras", path)
    assert_refused_within_bounds(result, r"model\.weights\.h5 declares 268435456 bytes, more than the \d+ that the "
                                         r"model's 15 weights \(2 arrays\) can need")


def test_an_lzma_weights_member_is_compared_with_the_architecture_first(tmp_path):
    """The reported member: 2 GiB of zeros in 306 KB of LZMA (4.2 GB, 23 s before it was refused); 64 MB here."""
    path = keras_archive(tmp_path / "lzma.keras", keras_config(4, 3), (b"", 64 * MB), method=zipfile.ZIP_LZMA)
    assert os.path.getsize(path) < 64 * 2**10
    result = load_in_fresh_process("keras", path)
    assert_refused_within_bounds(result, r"model\.weights\.h5 declares 67108864 bytes, more than the \d+ that")


def test_a_weights_member_compressed_beyond_the_cap_is_not_inflated(tmp_path):
    """A member within what a (large) architecture needs, but inflating more than 1000 times: refused unread."""
    units = 400_000
    path = keras_archive(tmp_path / "ratio.keras", keras_config(4, units), (b"", 8 * units * 5),
                         method=zipfile.ZIP_LZMA)
    padding = tmp_path / "ratio.keras"
    with open(padding, "ab") as f:  # enough bytes on disk that the architecture itself is not the bomb
        f.write(os.urandom(4 * units // 1000 + 4096))
    result = load_in_fresh_process("keras", path)
    assert_refused_within_bounds(result, r"model\.weights\.h5 expands to 16000000 bytes from \d+ compressed, more "
                                         r"than 1000 times")


def test_legacy_h5_layer_names_are_bounded_by_its_groups(tmp_path):
    """10**6 layer_names in a legacy .h5 took 13.4 s: the list is counted (from its shape) against the groups."""
    path = tmp_path / "names.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f.attrs["model_config"] = json.dumps(keras_config(4, 3))
        group = f.create_group("model_weights")
        group.attrs.create("layer_names", np.array([b"dense"] * 10**6, dtype="S5"))
        dense_group = group.create_group("dense")
        dense_group.attrs["weight_names"] = [b"dense/kernel", b"dense/bias"]
        dense_group.create_dataset("dense/kernel", data=np.zeros((4, 3), "f4"))
        dense_group.create_dataset("dense/bias", data=np.zeros(3, "f4"))
    result = load_in_fresh_process("keras", path)
    assert_refused_within_bounds(result, r"/model_weights lists 1000000 layer_names in 1 attribute\(s\), more than "
                                         r"the 1 it can hold")


def test_legacy_layer_names_must_be_unique_and_present(tmp_path):
    from convscope.interop import load_keras

    def legacy(names):
        path = tmp_path / "legacy.h5"
        with h5py.File(path, "w") as f:
            f.attrs["model_config"] = json.dumps(keras_config(4, 3))
            group = f.create_group("model_weights")
            group.attrs["layer_names"] = names
            for name in ("dense", "other"):
                layer = group.create_group(name)
                layer.attrs["weight_names"] = [b"dense/kernel", b"dense/bias"] if name == "dense" else []
            group["dense"].create_dataset("dense/kernel", data=np.ones((4, 3), "f4"))
            group["dense"].create_dataset("dense/bias", data=np.ones(3, "f4"))
        return path

    assert load_keras(legacy([b"dense", b"other"]), compile=False).get_weights()[0].sum() == 12
    with pytest.raises(ModelFileError, match=r"layer_names lists a layer twice"):
        load_keras(legacy([b"dense", b"dense"]))
    with pytest.raises(ModelFileError, match=r"layer_names lists 'gone', which /model_weights does not hold"):
        load_keras(legacy([b"dense", b"gone"]))


# -- finding 4: work per layer is linear ---------------------------------------------------------------------------
def many_layers_file(path, n: int, functional: bool, reverse: bool = False):
    if functional:
        specs = [{"class_name": "InputLayer", "config": {"name": "in", "shape": [4]}, "name": "in",
                  "inbound_nodes": []}]
        for i in range(n):
            specs.append({"class_name": "Activation", "config": {"name": f"a{i}", "activation": "linear"},
                          "name": f"a{i}", "inbound_nodes": [{"args": [[specs[-1]["name"], 0, 0]], "as_list": False}]})
        if reverse:  # a file may list its layers in any order: each call then waits on the one listed after it
            specs.reverse()
        model = {"class_name": "Functional", "config": {
            "name": "deep", "layers": specs, "input_layers": [["in", 0, 0]], "output_layers": [[f"a{n - 1}", 0, 0]],
            "input_structure": {"kind": "single", "keys": None}, "output_structure": {"kind": "single", "keys": None}}}
    else:
        specs = [{"class_name": "Activation", "config": {"name": f"a{i}", "activation": "linear"}} for i in range(n)]
        specs[0]["config"]["input_shape"] = [4]  # Dense(..., input_shape=...) style: the chain has its input early
        model = {"class_name": "Sequential", "config": {"name": "deep", "input_shape": [4], "layers": specs}}
    config = {"format": "convscope.model", "format_version": 2, "model": model, "compile": None, "weights": [],
              "optimizer_state": [], "training_state": None}
    return write_zip(path, [("config.json", json.dumps(config).encode())])


@pytest.mark.parametrize("functional, n, reverse", [(False, 20_000, False), (True, 5_000, False), (True, 5_000, True)],
                         ids=["sequential", "functional", "functional-listed-backwards"])
def test_load_time_is_linear_in_the_number_of_layers(tmp_path, functional, n, reverse):
    """20,000 parameter-free layers took 12.5 s (a unique-name check per layer over all the others, and a chain
    rebuilt on each add), and a chain deeper than Python's recursion limit could not be mapped at all. A functional
    chain listed backwards was rebuilt by sweeping the waiting calls until none was left: 5,000 layers took 21 s."""
    path = many_layers_file(tmp_path / "deep.convscope", n, functional, reverse)
    start = time.process_time()  # CPU time: a busy machine does not make it fail
    model = load_checkpoint(path)[0]
    elapsed = time.process_time() - start
    print(f"{n} layers ({'functional' if functional else 'sequential'}) loaded in {elapsed:.2f} s of CPU")
    assert len(model.layers) == n + functional and elapsed < 4.0
    assert model.predict(np.ones((1, 4), "float32"), verbose=0).tolist() == [[1.0] * 4]


def test_duplicate_names_are_still_refused():
    with pytest.raises(ValueError, match=r'Sequential "s": layer names must be unique, "a" appears twice'):
        convscope.Sequential([layers.ReLU(name="a"), layers.ReLU(name="a")], name="s")
    model = convscope.Sequential([convscope.Input((2,)), layers.ReLU(name="a")])
    model.pop()
    model.add(layers.ReLU(name="a"))  # popped, so its name is free again
    x = convscope.Input((2,))
    shared = layers.ReLU(name="b")
    with pytest.raises(ValueError, match=r'layer names must be unique, "b" is used 2 times'):
        convscope.Model(x, layers.ReLU(name="b")(shared(x)))


# -- non-finite hyperparameters -------------------------------------------------------------------------------------
NAN, INF = float("nan"), float("inf")
NON_FINITE = [
    (lambda v: layers.ReLU(max_value=v), ValueError, r'ReLU "\w+": argument "max_value" must be None or a number >= 0'),
    (lambda v: layers.ReLU(negative_slope=v), ValueError, r'argument "negative_slope" must be a number >= 0'),
    (lambda v: layers.ReLU(threshold=v), ValueError, r'argument "threshold" must be a number >= 0'),
    (lambda v: layers.LeakyReLU(negative_slope=v), ValueError, r'LeakyReLU "\w+": argument "negative_slope"'),
    (lambda v: layers.BatchNormalization(epsilon=v), ValueError, r'argument "epsilon" must be a number > 0'),
    (lambda v: layers.BatchNormalization(momentum=v), ValueError, r'argument "momentum" must be in \[0, 1\)'),
    (lambda v: layers.LayerNormalization(epsilon=v), ValueError, r'LayerNormalization "\w+": argument "epsilon"'),
    (lambda v: layers.Dropout(v), ValueError, r'Dropout "\w+": argument "rate" must be a number in \[0, 1\)'),
    (lambda v: layers.Rescaling(v), TypeError, r'Rescaling "\w+": argument "scale" must be a number or a list'),
    (lambda v: layers.Rescaling(1.0, offset=[0.0, v]), TypeError, r'argument "offset" must be a number or a list'),
    (lambda v: layers.Resizing(4, 4, fill_value=v), TypeError, r'argument "fill_value" must be a number \(finite\)'),
    (lambda v: layers.RandomZoom(0.1, fill_value=v), TypeError, r'argument "fill_value" must be a number \(finite\)'),
    (lambda v: layers.RandomRotation(v), ValueError, r'argument "factor" must be a number or a list of two numbers'),
    (lambda v: layers.RandomContrast(0.1, value_range=[0, v]), ValueError, r'argument "value_range" must be a list'),
    (lambda v: layers.RandomBrightness((v, 0.2)), ValueError, r'argument "factor" must be a number or a list'),
    (lambda v: layers.Normalization(mean=[0.0, v], variance=[1.0, 1.0]), ValueError,
     r'Normalization "\w+": argument "mean" must hold finite numbers'),
    (lambda v: layers.Normalization(mean=0.0, variance=v), ValueError, r'argument "variance" must hold finite numbers'),
]


@pytest.mark.parametrize("value", [NAN, INF, -INF, 10**400], ids=["nan", "inf", "-inf", "huge-int"])
@pytest.mark.parametrize("make, error, match", NON_FINITE, ids=lambda x: None)
def test_non_finite_hyperparameters_are_refused(make, error, match, value):
    with pytest.raises(error, match=match):
        make(value)


def test_nan_in_a_model_file_config_is_refused(tmp_path):
    """JSON's NaN (which Python writes and reads) passed ``epsilon <= 0`` and ``max_value < 0``."""
    specs = [{"class_name": "BatchNormalization", "config": {"name": "bn", "epsilon": NAN}}]
    path = native_bomb(tmp_path / "nan.convscope", specs, [3],
                       [(f"bn/{w}", (3,), "float32") for w in ("gamma", "beta", "moving_mean", "moving_variance")])
    assert b"NaN" in zipfile.ZipFile(path).read("config.json")
    with pytest.raises(ModelFileError, match=r'invalid model config: BatchNormalization "bn": argument "epsilon" must '
                                             r"be a number > 0, received nan"):
        load_checkpoint(path)


def test_nan_in_a_keras_config_is_refused(tmp_path):
    from convscope.interop import load_keras
    from convscope.interop.keras_export import keras_model_config

    config = keras_model_config(convscope.Sequential([convscope.Input((4,)), layers.ReLU(max_value=6.0, name="r")]))
    config["config"]["layers"][-1]["config"]["max_value"] = NAN
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_group("layers/re_lu/vars")
    path = keras_archive(tmp_path / "nan.keras", config, buf.getvalue())
    with pytest.raises(ModelFileError, match=r'ReLU "r": argument "max_value" must be None or a number >= 0, '
                                             r"received nan"):
        load_keras(path)
