"""Keras files in and out: real Keras 3 files predict the same in convscope; hostile files are refused.

The files under ``fixtures/keras/`` were written by Keras 3.15 (torch backend) with
``scripts/make_keras_fixtures.py``, together with the inputs and Keras's own predictions,
so these tests need no Keras. ``scripts/check_keras_export.py`` runs the other direction
(Keras loading convscope's exports) where Keras is installed.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import convscope
from convscope import layers, zoo
from convscope.cli import main
from convscope.errors import ModelFileError
from convscope.interop import load_keras, load_keras_weights, save_keras

pytestmark = pytest.mark.usefixtures("fresh_state")

h5py = pytest.importorskip("h5py", reason="h5py is the optional [interop] extra that reads Keras files")

FIXTURES = Path(__file__).parent / "fixtures" / "keras"
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def mnist_case():
    data = np.load(FIXTURES / "mnist_inputs.npz")
    return data["x"][..., None].astype("float32") / 255.0, data["probabilities"]


@pytest.fixture(scope="module")
def mixed_case():
    data = np.load(FIXTURES / "mixed_inputs.npz")
    return data["x"].astype("float32"), data["probabilities"]


def max_diff(model, case) -> float:
    x, expected = case
    return float(np.abs(model.predict(x) - expected).max())


# ----------------------------------------------------------------------------------- real Keras files


@pytest.mark.parametrize("name", ["mnist_convnet.keras", "mnist_convnet.h5"])
def test_keras_mnist_convnet_predicts_as_keras(name, mnist_case):
    model = load_keras(FIXTURES / name)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dropout", "Dense"]
    assert model.count_params() == 34826
    assert len(mnist_case[0]) == 1000
    assert max_diff(model, mnist_case) < TOLERANCE
    # The network is trained, not a constant: its answers follow the digits.
    assert len(np.unique(model.predict(mnist_case[0]).argmax(axis=1))) == 10


def test_weights_file_into_a_convscope_model(mnist_case):
    model = zoo.keras_convnet()
    load_keras_weights(model, FIXTURES / "mnist_convnet.weights.h5")
    assert max_diff(model, mnist_case) < TOLERANCE


@pytest.mark.parametrize("name", ["mnist_convnet.keras", "mnist_convnet.h5"])
def test_load_keras_weights_reads_full_model_files_too(name, mnist_case):
    model = zoo.keras_convnet()
    load_keras_weights(model, FIXTURES / name)
    assert max_diff(model, mnist_case) < TOLERANCE


def test_functional_chain_with_every_option_predicts_as_keras(mixed_case):
    model = load_keras(FIXTURES / "mixed.keras")
    conv = [layer for layer in model.layers if isinstance(layer, layers.Conv2D)]
    assert [(c.strides, c.padding, c.dilation_rate, c.groups, c.use_bias) for c in conv] == [
        ((2, 2), "same", (1, 1), 1, False), ((1, 1), "same", (2, 2), 1, True), ((1, 1), "same", (1, 1), 4, True)]
    assert conv[0].pads == ((0, 1), (0, 1))  # 16 -> 8 with stride 2: the odd cell at the bottom / right
    rescaling = model.get_layer("rescaling")
    assert (rescaling.scale, rescaling.offset) == pytest.approx((1 / 127.5, -1.0))
    for bn in (l for l in model.layers if isinstance(l, layers.BatchNormalization)):
        # Trained: the moving statistics left their initial 0 / 1, so inference really uses them.
        assert np.abs(bn.moving_mean.value).max() > 1e-2 and np.abs(bn.moving_variance.value - 1).max() > 1e-2
    assert max_diff(model, mixed_case) < TOLERANCE


def test_load_model_and_summary_read_keras_files(capsys):
    model = convscope.load_model(FIXTURES / "mnist_convnet.keras")
    assert isinstance(model, convscope.Sequential)
    assert type(model.loss).__name__ == "SparseCategoricalCrossentropy"  # compiled as the file's compile_config says
    assert convscope.load_model(FIXTURES / "mnist_convnet.keras", compile=False).loss is None
    assert main(["summary", str(FIXTURES / "mnist_convnet.keras")]) == 0
    out = capsys.readouterr().out
    assert "conv2d_1 (Conv2D)" in out and "Total params: 34,826" in out


# ------------------------------------------------------------------------------------ convscope -> .keras


def every_layer_model() -> convscope.Sequential:
    model = convscope.Sequential([
        convscope.Input(shape=(12, 12, 3)),
        layers.Rescaling([0.5, 1.0, 2.0], offset=-0.5),
        layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False),
        layers.BatchNormalization(center=False),
        layers.Activation("tanh"),
        layers.Conv2D(8, 3, padding="same", dilation_rate=2, groups=2, activation="selu"),
        layers.AveragePooling2D(3, strides=2, padding="same"),
        layers.ReLU(max_value=6.0),
        layers.MaxPooling2D(2, padding="same"),
        layers.GlobalMaxPooling2D(),
        layers.Dropout(0.3),
        layers.Dense(5, activation="softmax"),
    ], name="every_layer")
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0.5, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])
    bn = model.layers[2]
    bn.moving_variance.value = rng.uniform(0.5, 2.0, bn.moving_variance.shape).astype("float32")
    return model


def test_save_keras_round_trip(tmp_path):
    model = every_layer_model()
    model.save_keras(tmp_path / "every.keras")
    again = load_keras(tmp_path / "every.keras")
    assert [layer.get_config() for layer in again.layers] == [layer.get_config() for layer in model.layers]
    x = np.random.default_rng(1).uniform(0, 1, (16, 12, 12, 3)).astype("float32")
    expected = model.predict(x)
    assert np.isfinite(expected).all()
    np.testing.assert_array_equal(again.predict(x), expected)


def test_save_keras_writes_the_layout_keras_writes(tmp_path):
    """Same members, same config classes, same weight paths and shapes as Keras's own file for this network."""
    model = load_keras(FIXTURES / "mnist_convnet.keras")
    save_keras(model, tmp_path / "copy.keras")
    ours, theirs = _archive(tmp_path / "copy.keras"), _archive(FIXTURES / "mnist_convnet.keras")
    assert sorted(ours) == sorted(theirs) == ["config.json", "metadata.json", "model.weights.h5"]
    ours_config, theirs_config = json.loads(ours["config.json"]), json.loads(theirs["config.json"])
    assert [l["class_name"] for l in ours_config["config"]["layers"]] == [
        l["class_name"] for l in theirs_config["config"]["layers"]]
    for mine, keras_layer in zip(ours_config["config"]["layers"], theirs_config["config"]["layers"]):
        assert all(keras_layer["config"][k] == v for k, v in mine["config"].items() if k != "dtype"), mine
    assert _datasets(ours["model.weights.h5"]) == {
        k: v for k, v in _datasets(theirs["model.weights.h5"]).items() if not k.startswith("optimizer/")}


def _archive(path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _datasets(raw: bytes) -> dict:
    found = {}
    with h5py.File(io.BytesIO(raw), "r") as f:
        f.visititems(lambda name, obj: found.update({name: obj.shape}) if isinstance(obj, h5py.Dataset) else None)
    return found


def test_save_keras_is_atomic(tmp_path):
    target = tmp_path / "model.keras"
    target.write_bytes(b"previous")
    model = convscope.Sequential([convscope.Input(shape=(4,)), layers.Dense(2)])
    model.add(_Unexportable())
    with pytest.raises(ValueError, match="no Keras equivalent"):
        save_keras(model, target)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


class _Unexportable(layers.Layer):
    def forward(self, x, training=False):
        return x


# ------------------------------------------------------------------------------------------- Keras 2


def keras2_file(path, model, functional: bool) -> None:
    """A legacy .h5 as tf.keras 2 wrote it: batch_input_shape, string dtypes, "name/kernel:0" weight names."""
    specs = []
    for layer in model.layers:
        config = {key: value for key, value in layer.get_config().items() if "initializer" not in key}
        config["dtype"] = "float32"
        if isinstance(layer, layers.BatchNormalization):
            config["axis"] = [3]
        specs.append({"class_name": type(layer).__name__, "config": config, "name": layer.name})
    input_spec = {"class_name": "InputLayer", "name": "input_1",
                  "config": {"batch_input_shape": [None, *model.input_shape[1:]], "dtype": "float32", "name": "input_1"}}
    if functional:
        previous = "input_1"
        for spec in specs:
            spec["inbound_nodes"] = [[[previous, 0, 0, {}]]]
            previous = spec["name"]
        input_spec["inbound_nodes"] = []
        body = {"name": "model", "layers": [input_spec, *specs],
                "input_layers": [["input_1", 0, 0]], "output_layers": [[previous, 0, 0]]}
        config = {"class_name": "Model", "config": body}
    else:
        specs[0]["config"]["batch_input_shape"] = input_spec["config"]["batch_input_shape"]
        config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": specs}}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.15.0"
        f.attrs["model_config"] = json.dumps(config).encode()
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        for layer in model.layers:
            g = group.create_group(layer.name)
            names = [f"{layer.name}/{p.name.rsplit('/', 1)[-1]}:0".encode() for p in layer.parameters]
            g.attrs["weight_names"] = names
            for name, p in zip(names, layer.parameters):
                g.create_dataset(name.decode(), data=p.value)


@pytest.mark.parametrize("functional", [False, True], ids=["sequential", "functional"])
def test_keras2_h5_files(tmp_path, functional):
    model = convscope.Sequential([
        convscope.Input(shape=(10, 10, 2)),
        layers.Conv2D(4, 3, padding="same", activation="relu"),
        layers.BatchNormalization(),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(3, activation="softmax"),
    ])
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0.5, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])
    keras2_file(tmp_path / "old.h5", model, functional)
    again = load_keras(tmp_path / "old.h5")
    x = rng.uniform(0, 1, (8, 10, 10, 2)).astype("float32")
    np.testing.assert_array_equal(again.predict(x), model.predict(x))


# ---------------------------------------------------------------------------------- refused, clearly


def rewrite(tmp_path, edit_config=None, edit_weights=None, extra_members=()) -> Path:
    """A copy of the real mnist_convnet.keras with its config and / or weights edited."""
    members = _archive(FIXTURES / "mnist_convnet.keras")
    if edit_config:
        config = json.loads(members["config.json"])
        edit_config(config["config"]["layers"])
        members["config.json"] = json.dumps(config).encode()
    if edit_weights:
        buffer = io.BytesIO(members["model.weights.h5"])
        with h5py.File(buffer, "a") as f:
            edit_weights(f)
        members["model.weights.h5"] = buffer.getvalue()
    path = tmp_path / "edited.keras"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in [*members.items(), *extra_members]:
            zf.writestr(name, data)
    return path


def replace_layer(index, spec):
    def edit(layer_specs):
        layer_specs[index] = spec
    return edit


LAMBDA = {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
          "config": {"name": "lambda", "function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAA"}}}}
LSTM = {"module": "keras.layers", "class_name": "LSTM", "registered_name": None, "config": {"name": "lstm", "units": 4}}
CUSTOM = {"module": "my_package.layers", "class_name": "Dense", "registered_name": "MyPackage>Dense",
          "config": {"name": "dense", "units": 10}}


def set_dense_kernel(shape):
    def edit(f):
        del f["layers/dense/vars/0"]
        f["layers/dense/vars/0"] = np.zeros(shape, "float32")
    return edit


def delete(path):
    def edit(f):
        del f[path]
    return edit


def external_link(f):
    del f["layers/dense/vars/0"]
    f["layers/dense/vars/0"] = h5py.ExternalLink("/etc/passwd", "/data")


def mixed_precision(layer_specs):
    layer_specs[1]["config"]["dtype"] = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "mixed_float16"}}


@pytest.mark.parametrize("edit, message", [
    (dict(edit_config=replace_layer(7, LAMBDA)),
     r'layer "lambda" is a Lambda layer: it holds Python code.*Supported layers: Activation, AveragePooling2D'),
    (dict(edit_config=replace_layer(7, LSTM)),
     r'layer "lstm" has type LSTM, which convscope does not support\. Supported layers: .*Conv2D, '
     r"Conv2DTranspose, Cropping2D, Dense, DepthwiseConv2D"),
    (dict(edit_config=replace_layer(7, CUSTOM)), r"'Dense' is a custom class \(module 'my_package.layers'"),
    (dict(edit_config=mixed_precision), r"layer \"conv2d\" \(Conv2D\): computes in 'mixed_float16'"),
    (dict(edit_weights=set_dense_kernel((1600, 11))),
     r'weight "kernel" of layer "dense" has shape \(1600, 11\) in the file, the model needs \(1600, 10\)'),
    (dict(edit_weights=set_dense_kernel((1600, 10, 1))), r"has shape \(1600, 10, 1\) in the file"),
    (dict(edit_weights=delete("layers/dense/vars/1")), r'layer "dense" \(Dense\) has 2 weights, the file holds 1'),
    (dict(edit_weights=delete("layers/conv2d_1")), r'layer "conv2d_1" \(Conv2D\) has 2 weights, the file holds 0'),
    (dict(edit_weights=external_link), r"'/layers/dense/vars/0' is an h5py ExternalLink; convscope follows no soft or external links"),
    (dict(extra_members=[("../evil.txt", b"x")]), r"unsafe member name '\.\./evil\.txt'"),
    (dict(extra_members=[("/etc/evil", b"x")]), r"unsafe member name '/etc/evil'"),
], ids=["lambda", "unknown-layer", "custom-class", "mixed-precision", "wrong-shape", "wrong-rank",
        "missing-weight", "missing-layer", "external-link", "dotdot-member", "absolute-member"])
def test_hostile_or_foreign_keras_files_are_refused(tmp_path, edit, message):
    path = rewrite(tmp_path, **edit)
    with pytest.raises(ModelFileError, match=message):
        load_keras(path)
    with pytest.raises(ModelFileError, match=message):
        convscope.load_model(path)


def test_truncated_keras_file(tmp_path):
    path = tmp_path / "truncated.keras"
    path.write_bytes((FIXTURES / "mnist_convnet.keras").read_bytes()[:200_000])
    with pytest.raises(ModelFileError, match="damaged or truncated"):
        load_keras(path)


def test_zip_bomb_member_is_refused_before_reading(tmp_path):
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", b" " * (17 * 2**20))  # 17 MB of spaces: a few KB compressed
        zf.writestr("model.weights.h5", b"")
    assert path.stat().st_size < 100_000
    with pytest.raises(ModelFileError, match=r"config\.json declares 17825792 bytes, more than the 16777216 allowed"):
        load_keras(path)


def test_weights_only_file_says_what_to_do():
    with pytest.raises(ModelFileError, match=r"holds weights only.*load_keras_weights\(model, path\)"):
        load_keras(FIXTURES / "mnist_convnet.weights.h5")


def test_weights_of_another_architecture_are_refused():
    model = convscope.Sequential([
        convscope.Input(shape=(28, 28, 1)), layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(10),
    ])
    wrong_shape = r'"kernel" of layer "dense\w*" has shape \(1600, 10\) in the file, the model needs \(5408, 10\)'
    with pytest.raises(ModelFileError, match=wrong_shape):
        load_keras_weights(model, FIXTURES / "mnist_convnet.weights.h5")


def test_branching_functional_model_is_refused(tmp_path):
    members = _archive(FIXTURES / "mixed.keras")
    config = json.loads(members["config.json"])
    dense = config["config"]["layers"][-1]
    # Feed the last layer from two tensors (an Add-like join): not a chain.
    dense["inbound_nodes"][0]["args"].append(dense["inbound_nodes"][0]["args"][0])
    path = tmp_path / "branch.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", members["model.weights.h5"])
    with pytest.raises(ModelFileError, match=r'layer "dense_1" does not take exactly one input'):
        load_keras(path)


def test_not_a_keras_file(tmp_path):
    path = tmp_path / "notes.keras"
    path.write_text("hello")
    with pytest.raises(ModelFileError, match="not a Keras model file"):
        load_keras(path)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_keras(tmp_path / "absent.keras")


# ------------------------------------------------------------------------------------------ command line


def test_export_command_writes_both_formats(tmp_path, capsys):
    source = tmp_path / "model.convscope"
    shutil.copy(FIXTURES / "mnist_convnet.keras", tmp_path / "in.keras")
    load_keras(tmp_path / "in.keras").save(source)
    code = main(["export", str(source), "--onnx", str(tmp_path / "m.onnx"), "--keras", str(tmp_path / "m.keras")])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "Wrote" in out and "m.onnx" in out and "m.keras" in out
    assert (tmp_path / "m.onnx").stat().st_size > 100_000
    assert load_keras(tmp_path / "m.keras").count_params() == 34826


def test_export_command_takes_a_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    load_keras(FIXTURES / "mnist_convnet.keras").save(run / "model.convscope")
    assert main(["export", str(run), "--keras", str(tmp_path / "m.keras")]) == 0, capsys.readouterr().err
    assert load_keras(tmp_path / "m.keras").count_params() == 34826


@pytest.mark.parametrize("args, message", [
    (["export", "MODEL"], "say what to write: --onnx OUT and / or --keras OUT"),
    (["export", "absent.convscope", "--onnx", "x.onnx"], "does not exist"),
    (["export", "BAD", "--keras", "x.keras"], "Lambda layer"),
])
def test_export_command_errors_are_one_line_with_status_2(tmp_path, capsys, args, message):
    bad = rewrite(tmp_path, edit_config=replace_layer(7, LAMBDA))
    args = [{"MODEL": str(FIXTURES / "mnist_convnet.keras"), "BAD": str(bad)}.get(a, a) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("convscope: error:")
