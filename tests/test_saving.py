"""The model file: exact round trips, exact resumption, atomic writes, and hostile files refused with ModelFileError."""

from __future__ import annotations

import io
import json
import os
import pickle
import time
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

import convscope
from convscope import backend, layers, utils
from convscope.errors import ModelFileError
from convscope.saving import load_checkpoint, load_model, save_model

pytestmark = pytest.mark.usefixtures("fresh_state")


def rich_model():
    """BatchNormalization (moving statistics), Dropout, groups, same padding, strides, dilation."""
    model = convscope.Sequential([
        convscope.Input(shape=(8, 8, 4)),
        layers.Conv2D(6, 3, padding="same", groups=2, activation="relu"),
        layers.BatchNormalization(momentum=0.8),
        layers.MaxPooling2D(2, padding="same"),
        layers.Conv2D(4, 3, strides=2, padding="same", activation="tanh"),
        layers.Conv2D(4, 3, dilation_rate=2, padding="same"),
        layers.ReLU(),
        layers.AveragePooling2D(2),
        layers.Flatten(),
        layers.Dropout(0.3),
        layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8, 8, 4)).astype(np.float32)
    y = utils.to_categorical(rng.integers(0, 3, n), 3)
    return x, y


def trained_model():
    model = rich_model()
    x, y = data()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    return model, x, y


@pytest.fixture
def saved(tmp_path):
    """A valid file of a trained model: (path, model, x, y)."""
    model, x, y = trained_model()
    path = tmp_path / "model.convscope"
    model.save(path)
    return path, model, x, y


def members(path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def write_zip(path, items, compression=zipfile.ZIP_STORED):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names warn
        with zipfile.ZipFile(path, "w", compression) as zf:
            for name, content in items:
                zf.writestr(name, content)
    return path


def forged(tmp_path, source, edit_config=None, edit_members=None, name="forged.convscope"):
    """A copy of ``source`` with its config and / or its member list edited."""
    items = members(source)
    config = json.loads(items["config.json"])
    if edit_config:
        edit_config(config)
    items["config.json"] = json.dumps(config).encode()
    pairs = list(items.items())
    if edit_members:
        pairs = edit_members(pairs)
    return write_zip(tmp_path / name, pairs)


def npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def replace_member(member, content):
    return lambda pairs: [(n, content if n == member else c) for n, c in pairs]


# -- round trips -----------------------------------------------------------------------------
def test_save_load_predict_is_bit_identical(saved):
    path, model, x, y = saved
    bn = model.layers[1]
    assert not np.array_equal(bn.moving_mean.value, 0), "the moving statistics must have been trained"
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert loaded.get_config() == model.get_config()
    assert [type(l) for l in loaded.layers] == [type(l) for l in model.layers]
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)


def test_load_restores_compile_and_optimizer_state(saved):
    path, model, _, _ = saved
    loaded = load_model(path)
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.loss.get_config() == model.loss.get_config()
    assert [m.name for m in loaded.metrics] == ["accuracy"]
    assert loaded.optimizer.iterations == model.optimizer.iterations == 6
    state, expected = loaded.optimizer.get_state(), model.optimizer.get_state()
    assert sorted(state) == sorted(expected)
    for key in state:
        np.testing.assert_array_equal(state[key], expected[key])


def test_load_without_compile(saved):
    path, model, x, _ = saved
    loaded = load_model(path, compile=False)
    assert loaded.loss is None and loaded.optimizer is None
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_uncompiled_model_round_trip(tmp_path):
    model = convscope.Sequential([convscope.Input(shape=(5, 5, 2)), layers.Conv2D(3, 2), layers.Flatten(),
                                  layers.Dense(2)])
    path = tmp_path / "plain.convscope"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded.loss is None
    x = np.random.default_rng(0).random((2, 5, 5, 2), dtype=np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_float64_model_round_trip(tmp_path):
    backend.set_floatx("float64")
    model, x, _ = trained_model()
    model.save(tmp_path / "f64.convscope")
    loaded = load_model(tmp_path / "f64.convscope")
    assert all(w.dtype == np.float64 for w in loaded.get_weights())
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_saving_an_unbuilt_model_raises(tmp_path):
    with pytest.raises(ValueError, match=r'model "sequential" has not been built'):
        convscope.Sequential([layers.Dense(2)]).save(tmp_path / "m.convscope")
    assert os.listdir(tmp_path) == []


def test_saving_accepts_str_and_pathlike(saved, tmp_path):
    _, model, x, _ = saved
    model.save(str(tmp_path / "as_str.convscope"))
    np.testing.assert_array_equal(load_model(str(tmp_path / "as_str.convscope")).predict(x, verbose=0),
                                  model.predict(x, verbose=0))


def test_training_state_round_trip(saved, tmp_path):
    _, model, _, _ = saved
    state = {"epoch": 3, "rng": backend.get_rng_state(), "note": "ünïcode"}
    save_model(model, tmp_path / "ckpt.convscope", training_state=state)
    _, restored = load_checkpoint(tmp_path / "ckpt.convscope")
    assert restored == state


# -- resuming --------------------------------------------------------------------------------
@pytest.mark.parametrize("shuffle", [False, True])
def test_resumed_training_is_bit_identical_to_uninterrupted_training(tmp_path, shuffle):
    x, y = data(30)

    utils.set_random_seed(42)
    layers.clear_session()
    uninterrupted = rich_model()
    uninterrupted.fit(x, y, batch_size=7, epochs=4, shuffle=shuffle, verbose=0)

    utils.set_random_seed(42)
    layers.clear_session()
    first = rich_model()
    first.fit(x, y, batch_size=7, epochs=2, shuffle=shuffle, verbose=0)
    path = tmp_path / "half.convscope"
    save_model(first, path, training_state={"rng": backend.get_rng_state()})
    del first
    utils.set_random_seed(999)  # anything in between must not matter
    resumed, state = load_checkpoint(path)
    backend.set_rng_state(state["rng"])  # dropout masks and shuffles continue the same stream
    resumed.fit(x, y, batch_size=7, epochs=4, initial_epoch=2, shuffle=shuffle, verbose=0)

    assert resumed.optimizer.iterations == uninterrupted.optimizer.iterations == 4 * 5
    for a, b in zip(resumed.get_weights(), uninterrupted.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_resuming_without_the_optimizer_state_would_differ(tmp_path):
    """The check above means something: a fresh Adam after loading gives other weights."""
    x, y = data(30)
    utils.set_random_seed(42)
    uninterrupted = rich_model()
    uninterrupted.layers[-2].rate = 0.0
    uninterrupted.fit(x, y, batch_size=7, epochs=4, shuffle=False, verbose=0)
    utils.set_random_seed(42)
    layers.clear_session()
    first = rich_model()
    first.layers[-2].rate = 0.0
    first.fit(x, y, batch_size=7, epochs=2, shuffle=False, verbose=0)
    first.save(tmp_path / "half.convscope")
    resumed = load_model(tmp_path / "half.convscope")
    resumed.layers[-2].rate = 0.0
    resumed.compile(optimizer="adam", loss="categorical_crossentropy")
    resumed.fit(x, y, batch_size=7, epochs=2, shuffle=False, verbose=0)
    assert not all(np.array_equal(a, b) for a, b in zip(resumed.get_weights(), uninterrupted.get_weights()))


def test_model_saved_before_training_resumes(tmp_path):
    """A compiled model saved before its first step (no optimizer slots yet) loads and trains."""
    model = rich_model()
    model.save(tmp_path / "fresh.convscope")
    loaded = load_model(tmp_path / "fresh.convscope")
    assert loaded.optimizer.iterations == 0
    x, y = data()
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert loaded.optimizer.iterations == 3


# -- atomic writes ---------------------------------------------------------------------------
def _fail_on_call(monkeypatch, n, exc):
    original = zipfile.ZipFile.writestr
    calls = {"n": 0}

    def writestr(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise exc
        return original(self, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", writestr)
    return calls


@pytest.mark.parametrize("exc", [OSError(28, "No space left on device"), KeyboardInterrupt(), RuntimeError("boom")])
def test_failed_save_keeps_the_previous_file_and_leaves_no_temporary(saved, monkeypatch, exc):
    path, model, x, y = saved
    before = path.read_bytes()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # the model has changed since
    calls = _fail_on_call(monkeypatch, 4, exc)
    with pytest.raises(type(exc)) as info:
        model.save(path)
    assert calls["n"] == 4, "the failure must happen midway through the write"
    if isinstance(exc, OSError):
        assert "previous file is unchanged" in str(info.value) and str(path) in str(info.value)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]
    load_model(path)  # still a valid file


def test_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    model = rich_model()
    _fail_on_call(monkeypatch, 2, OSError(5, "I/O error"))
    with pytest.raises(OSError, match="Cannot write"):
        model.save(tmp_path / "new.convscope")
    assert os.listdir(tmp_path) == []


def test_save_into_a_missing_folder(tmp_path):
    with pytest.raises(OSError, match=r"Cannot write .*no_such_folder"):
        rich_model().save(tmp_path / "no_such_folder" / "m.convscope")


def test_overwriting_replaces_the_file(saved):
    path, model, x, y = saved
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.save(path)
    np.testing.assert_array_equal(load_model(path).predict(x, verbose=0), model.predict(x, verbose=0))
    assert os.listdir(path.parent) == [path.name]


# -- hostile and damaged files ----------------------------------------------------------------
def test_missing_path(tmp_path):
    with pytest.raises(ModelFileError, match=r"does not exist"):
        load_model(tmp_path / "nope.convscope")
    with pytest.raises(ModelFileError, match=r"does not exist"):
        load_model(tmp_path)  # a folder is not a model file


def test_model_file_error_is_a_value_error():
    assert issubclass(ModelFileError, ValueError)


def test_not_a_zip(tmp_path):
    path = tmp_path / "text.convscope"
    path.write_text("hello, I am not a model")
    with pytest.raises(ModelFileError, match=r"not a convscope model file \(not a zip archive\)"):
        load_model(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.convscope"
    path.write_bytes(b"")
    with pytest.raises(ModelFileError, match=r"not a zip archive"):
        load_model(path)


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.99])
def test_truncated_file(saved, tmp_path, fraction):
    path, *_ = saved
    raw = path.read_bytes()
    cut = tmp_path / "cut.convscope"
    cut.write_bytes(raw[: int(len(raw) * fraction)])
    with pytest.raises(ModelFileError, match=r"not a zip archive|damaged or truncated"):
        load_model(cut)


def test_corrupted_member_bytes(saved, tmp_path):
    """The central directory is intact but a weight's bytes changed: the CRC check catches it."""
    path, model, *_ = saved
    raw = bytearray(path.read_bytes())
    kernel = npy(model.layers[0].kernel.value)
    at = raw.find(kernel)
    assert at > 0
    raw[at + len(kernel) - 5] ^= 0xFF
    bad = tmp_path / "flipped.convscope"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match=r"damaged or truncated: .*CRC"):
        load_model(bad)


def test_missing_config(saved, tmp_path):
    path, *_ = saved
    bad = forged(tmp_path, path, edit_members=lambda pairs: [p for p in pairs if p[0] != "config.json"])
    with pytest.raises(ModelFileError, match=r"not a convscope model file \(no config.json\)"):
        load_model(bad)


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00", b"[" * 100_000],
                         ids=["syntax", "not-utf8", "deeply-nested"])
def test_config_that_is_not_json(saved, tmp_path, content):
    path, *_ = saved
    bad = forged(tmp_path, path, edit_members=replace_member("config.json", content))
    with pytest.raises(ModelFileError, match=r"config.json is not valid JSON"):
        load_model(bad)


def test_oversized_config(saved, tmp_path):
    path, *_ = saved
    huge = b'{"format": "convscope.model"' + b" " * (17 * 2**20) + b"}"
    bad = write_zip(tmp_path / "big.convscope", [("config.json", huge)], zipfile.ZIP_DEFLATED)
    with pytest.raises(ModelFileError, match=r"config.json declares \d+ bytes, more than the \d+ allowed"):
        load_model(bad)


@pytest.mark.parametrize("config", [[1, 2], {"format": "keras"}, {"format_version": 1}, "convscope.model"])
def test_foreign_config(saved, tmp_path, config):
    path, *_ = saved
    bad = forged(tmp_path, path, edit_members=replace_member("config.json", json.dumps(config).encode()))
    with pytest.raises(ModelFileError, match=r'not a convscope model file \(config.json has no "format": "convscope.model"\)'):
        load_model(bad)


def test_newer_format_version(saved, tmp_path):
    path, *_ = saved
    bad = forged(tmp_path, path, edit_config=lambda c: c.update(format_version=3))
    with pytest.raises(ModelFileError, match=r"written by a newer convscope \(format version 3; this one reads up to 2\)"):
        load_model(bad)


@pytest.mark.parametrize("version", [0, -1, "1", None, 1.5])
def test_invalid_format_version(saved, tmp_path, version):
    path, *_ = saved
    bad = forged(tmp_path, path, edit_config=lambda c: c.update(format_version=version))
    with pytest.raises(ModelFileError, match=r"unknown format_version"):
        load_model(bad)


@pytest.mark.parametrize("key", ["model", "weights", "optimizer_state"])
def test_config_missing_a_section(saved, tmp_path, key):
    path, *_ = saved
    bad = forged(tmp_path, path, edit_config=lambda c: c.pop(key))
    with pytest.raises(ModelFileError, match=rf"config.json lacks '{key}'"):
        load_model(bad)


def test_unknown_layer_class(saved, tmp_path):
    path, *_ = saved

    def edit(config):
        config["model"]["config"]["layers"][3] = {"class_name": "Lambda", "config": {"function": "__import__('os').system"}}

    bad = forged(tmp_path, path, edit_config=edit)
    with pytest.raises(ModelFileError, match=r"invalid model config: Unknown layer type 'Lambda'"):
        load_model(bad)


@pytest.mark.parametrize("edit, shown", [
    (lambda c: c["model"]["config"]["layers"][0]["config"].update(kernel_size=[-3, 3]), "kernel_size"),
    (lambda c: c["model"]["config"]["layers"][0]["config"].update(filters="six"), "filters"),
    (lambda c: c["model"]["config"]["layers"][0]["config"].update(evil=1), "evil"),
    (lambda c: c["model"]["config"].update(input_shape=None), "input_shape"),
    (lambda c: c["model"]["config"].update(input_shape=[2, 2, 4]), "smaller than pool_size"),
    (lambda c: c["model"]["config"].update(layers="Dense"), "Unknown layer type None"),
])
def test_invalid_layer_configs(saved, tmp_path, edit, shown):
    path, *_ = saved
    bad = forged(tmp_path, path, edit_config=edit)
    with pytest.raises(ModelFileError, match=rf"invalid model config: .*{shown}"):
        load_model(bad)


def test_input_layer_entries_are_refused_before_anything_is_built(saved, tmp_path):
    """An InputLayer in the list would make Sequential build (allocate) the next layers before any check."""
    path, *_ = saved

    def edit(config):
        config["model"]["config"]["layers"].insert(0, {"class_name": "InputLayer", "config": {"shape": [100_000]}})
        config["model"]["config"]["layers"].insert(1, {"class_name": "Dense", "config": {"units": 100_000}})

    bad = forged(tmp_path, path, edit_config=edit)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=r'InputLayer in "layers"'):
            load_model(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20


def test_weight_of_the_wrong_shape_in_the_config(saved, tmp_path):
    path, *_ = saved
    bad = forged(tmp_path, path, edit_config=lambda c: c["weights"][0].update(shape=[3, 3, 4, 6]))
    with pytest.raises(ModelFileError,
                       match=r"weight 0 should be conv2d/kernel of shape \(3, 3, 2, 6\), the file has conv2d/kernel of shape \(3, 3, 4, 6\)"):
        load_model(bad)


def test_weight_array_of_the_wrong_shape(saved, tmp_path):
    """Same number of values, other shape: the array is read and its shape refused."""
    path, *_ = saved
    wrong = npy(np.zeros((6, 2, 3, 3), np.float32))
    bad = forged(tmp_path, path, edit_members=replace_member("weights/0000.npy", wrong))
    with pytest.raises(ModelFileError,
                       match=r"weights/0000.npy holds float32 \(6, 2, 3, 3\), the config declares float32 \(3, 3, 2, 6\)"):
        load_model(bad)


def test_weight_array_too_small(saved, tmp_path):
    path, *_ = saved
    bad = forged(tmp_path, path, edit_members=replace_member("weights/0000.npy", npy(np.zeros((3,), np.float32))))
    with pytest.raises(ModelFileError, match=r"weights/0000.npy is \d+ bytes, too small for its declared float32 shape"):
        load_model(bad)


def test_weight_array_too_large(saved, tmp_path):
    path, *_ = saved
    bad = forged(tmp_path, path, edit_members=replace_member("weights/0001.npy", npy(np.zeros(5000, np.float32))))
    with pytest.raises(ModelFileError, match=r"weights/0001.npy is \d+ bytes, more than its declared shape \(6,\) needs"):
        load_model(bad)


def test_weight_of_another_dtype_than_declared(saved, tmp_path):
    path, *_ = saved
    bad = forged(tmp_path, path, edit_members=replace_member("weights/0001.npy", npy(np.zeros(6, np.float64))))
    with pytest.raises(ModelFileError, match=r"weights/0001.npy holds float64 \(6,\), the config declares float32 \(6,\)"):
        load_model(bad)


def test_missing_weight_member(saved, tmp_path):
    path, *_ = saved
    bad = forged(tmp_path, path, edit_members=lambda pairs: [p for p in pairs if p[0] != "weights/0003.npy"])
    with pytest.raises(ModelFileError, match=r"missing array weights/0003.npy"):
        load_model(bad)


def test_weight_list_of_the_wrong_length(saved, tmp_path):
    path, *_ = saved
    bad = forged(tmp_path, path, edit_config=lambda c: c["weights"].pop())
    with pytest.raises(ModelFileError, match=r"the model needs \d+ weight arrays, the file lists \d+"):
        load_model(bad)


@pytest.mark.parametrize("dtype, array", [
    ("object", None),
    ("int8", np.zeros(6, np.int8)),
    ("float16", np.zeros(6, np.float16)),
    ("complex64", np.zeros(6, np.complex64)),
])
def test_disallowed_weight_dtypes(saved, tmp_path, dtype, array):
    path, *_ = saved
    edit_members = None if array is None else replace_member("weights/0001.npy", npy(array))
    bad = forged(tmp_path, path, edit_config=lambda c: c["weights"][1].update(dtype=dtype), edit_members=edit_members)
    with pytest.raises(ModelFileError, match=rf"weights/0001.npy declares dtype '{dtype}'.*allowed dtypes: \['float32', 'float64', 'int64'\]"):
        load_model(bad)


class _Exploit:
    def __reduce__(self):
        return (_pwned, ("x" * 400,))


_PWNED = []


def _pwned(arg):
    _PWNED.append(arg)
    return arg


def test_pickle_instead_of_npy_is_never_unpickled(saved, tmp_path):
    path, *_ = saved
    payload = pickle.dumps(_Exploit())
    assert 120 < len(payload) < 4000
    # Declared float32 (100,): 400 bytes of data, so the payload passes the size checks and reaches the reader.
    bad = forged(tmp_path, path,
                 edit_config=lambda c: c["optimizer_state"][0].update(shape=[100], dtype="float32"),
                 edit_members=replace_member("optimizer/0000.npy", payload))
    # Weights are read first; point the exploit at the first optimizer array that is read after them.
    with pytest.raises(ModelFileError, match=r"optimizer/0000.npy is not a valid .npy array"):
        load_model(bad)
    assert _PWNED == []


def test_npy_of_object_dtype_is_refused(saved, tmp_path):
    path, *_ = saved
    buf = io.BytesIO()
    np.save(buf, np.array([_Exploit()] * 80, dtype=object), allow_pickle=True)
    payload = buf.getvalue()
    n = len(payload) // 4 - 40  # declared size close to the payload's, so only the reader can refuse it
    bad = forged(tmp_path, path,
                 edit_config=lambda c: c["optimizer_state"][0].update(shape=[n], dtype="float32"),
                 edit_members=replace_member("optimizer/0000.npy", payload))
    # The .npy header is checked against the config before np.load runs (an object array is refused there).
    with pytest.raises(ModelFileError, match=r"optimizer/0000.npy holds object \(80,\), the config declares float32"):
        load_model(bad)
    assert _PWNED == []


@pytest.mark.parametrize("name", ["../evil", "/abs", "weights/../../evil", "C:evil", "\\windows"])
def test_unsafe_member_names(saved, tmp_path, name):
    path, *_ = saved
    bad = forged(tmp_path, path, edit_members=lambda pairs: pairs + [(name, b"x")])
    with pytest.raises(ModelFileError, match=r"has an unsafe member name"):
        load_model(bad)


def test_duplicate_members(saved, tmp_path):
    path, *_ = saved
    evil = npy(np.full((6,), 1e30, np.float32))
    bad = forged(tmp_path, path, edit_members=lambda pairs: pairs + [("weights/0001.npy", evil)])
    with zipfile.ZipFile(bad) as zf:
        assert [i.filename for i in zf.infolist()].count("weights/0001.npy") == 2
    with pytest.raises(ModelFileError, match=r"duplicate archive members"):
        load_model(bad)


@pytest.mark.parametrize("extra", ["notes.txt", "weights/9999.npy", "optimizer/0100.npy", "config.json.bak"])
def test_unexpected_members(saved, tmp_path, extra):
    path, *_ = saved
    bad = forged(tmp_path, path, edit_members=lambda pairs: pairs + [(extra, b"hello")])
    with pytest.raises(ModelFileError, match=rf"unexpected members \['{extra}'\]"):
        load_model(bad)


def _fails_fast(path, match):
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ModelFileError, match=match):
            load_model(path)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 2.0
    assert peak < 20 * 2**20, f"loading allocated {peak} bytes"


def test_huge_declared_units_fail_fast(saved, tmp_path):
    path, *_ = saved
    bad = forged(tmp_path, path, edit_config=lambda c: c["model"]["config"]["layers"][-1]["config"].update(units=10**9))
    _fails_fast(bad, r"weight \d+ should be dense/kernel of shape \(4, 1000000000\)")


def test_huge_consistent_declaration_with_a_forged_header_fails_fast(saved, tmp_path):
    """Config, weight list and .npy header all claim a 16 GB kernel; the member holds a few bytes."""
    path, *_ = saved
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (4, 10**9)})
    forged_kernel = header.getvalue() + b"\0" * 64

    def edit(config):
        config["model"]["config"]["layers"][-1]["config"]["units"] = 10**9
        config["weights"][-2]["shape"] = [4, 10**9]
        config["weights"][-1]["shape"] = [10**9]
        config["compile"], config["optimizer_state"] = None, []

    items = members(path)
    config = json.loads(items["config.json"])
    edit(config)
    n_weights = len(config["weights"])
    pairs = [("config.json", json.dumps(config).encode())]
    for i in range(n_weights):
        name = f"weights/{i:04d}.npy"
        pairs.append((name, forged_kernel if i >= n_weights - 2 else items[name]))
    bad = write_zip(tmp_path / "bomb.convscope", pairs)
    _fails_fast(bad, r"weights/\d+.npy is \d+ bytes, too small for its declared float32 shape \(4, 1000000000\)")


def test_huge_optimizer_state_fails_fast(saved, tmp_path):
    path, *_ = saved
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**11,)})
    bad = forged(tmp_path, path,
                 edit_config=lambda c: c["optimizer_state"][2].update(shape=[10**11]),
                 edit_members=replace_member("optimizer/0002.npy", header.getvalue() + b"\0" * 16))
    _fails_fast(bad, r"optimizer/0002.npy is \d+ bytes, too small")


def test_optimizer_state_that_does_not_fit(saved, tmp_path):
    path, *_ = saved
    bad = forged(tmp_path, path, edit_config=lambda c: c["optimizer_state"][2].update(name="velocity/99"))
    with pytest.raises(ModelFileError, match=r"invalid training configuration: .*unexpected \['velocity/99'\]"):
        load_model(bad)


def test_unknown_optimizer_or_loss_in_compile(saved, tmp_path):
    path, *_ = saved
    bad = forged(tmp_path, path, edit_config=lambda c: c["compile"]["optimizer"].update(class_name="Evil"))
    with pytest.raises(ModelFileError, match=r"invalid training configuration: Unknown optimizer 'Evil'"):
        load_model(bad)
    bad = forged(tmp_path, path, edit_config=lambda c: c["compile"]["loss"].update(class_name="Evil"),
                 name="loss.convscope")
    with pytest.raises(ModelFileError, match=r"invalid training configuration: Unknown loss class 'Evil'"):
        load_model(bad)
    # compile=False does not even look at them.
    load_model(bad, compile=False)


def test_malformed_weight_entries(saved, tmp_path):
    path, *_ = saved
    bad = forged(tmp_path, path, edit_config=lambda c: c["weights"].__setitem__(0, "conv2d/kernel"))
    with pytest.raises(ModelFileError, match=r"malformed entry 0 of weights"):
        load_model(bad)
    bad = forged(tmp_path, path, edit_config=lambda c: c.update(weights={"a": 1}), name="dict.convscope")
    with pytest.raises(ModelFileError, match=r"weights and optimizer_state must be lists"):
        load_model(bad)


def test_a_valid_file_rebuilt_by_hand_still_loads(saved, tmp_path):
    """The forging helpers themselves keep a file valid when nothing is edited."""
    path, model, x, _ = saved
    copy = forged(tmp_path, path)
    np.testing.assert_array_equal(load_model(copy).predict(x, verbose=0), model.predict(x, verbose=0))
