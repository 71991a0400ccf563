"""The per-layer Keras mapping (``keras_config.KERAS_MAPPINGS``) against real Keras 3 configs and files.

* ``fixtures/keras/layers.json`` / ``layers.npz`` (``scripts/make_keras_layer_fixtures.py``): one Keras
  layer per case, its ``get_config()``, weights and output. Each config is read through the registry
  and must compute Keras's output; written back, it must give Keras's config values.
* ``fixtures/keras/new_layers.*`` / ``old_layers.*`` (``scripts/make_keras_sequential_fixtures.py``):
  Keras-written Sequential models (``.keras`` and legacy ``.h5``) holding every single-input layer type
  convscope reads, with Keras's predictions in ``sequential_inputs.npz``.

All files were written by Keras 3.15.1 (torch backend, CPU); no Keras is needed here.
``scripts/check_keras_export.py`` checks, with Keras, that Keras loads convscope's exports of these models.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

import convscope
from convscope import layers
from convscope.errors import ModelFileError
from convscope.interop import keras_config, load_keras, load_keras_weights, save_keras
from convscope.interop.keras_config import KERAS_CLASSES, KERAS_MAPPINGS, NOT_SUPPORTED
from convscope.layers.normalization import LayerNormalization
from convscope.layers.resampling import UpSampling2D

h5py = pytest.importorskip("h5py", reason="h5py is the optional [interop] extra that reads Keras files")
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*rms_scaling=True is deprecated:UserWarning"),  # Keras warns the same
    pytest.mark.usefixtures("fresh_state"),
]

FIXTURES = Path(__file__).parent / "fixtures" / "keras"
CASES = json.loads((FIXTURES / "layers.json").read_text())["cases"]
SEQUENTIALS = ["new_layers.keras", "new_layers.h5", "old_layers.keras", "old_layers.h5"]
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def arrays():
    with np.load(FIXTURES / "layers.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def predictions():
    with np.load(FIXTURES / "sequential_inputs.npz") as data:
        return {key: data[key] for key in data.files}


def keras_to_snake_case(name: str) -> str:
    """Keras 3's ``keras.src.utils.naming.to_snake_case``, the rule it names weights paths by."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def keras_spec(case: dict) -> dict:
    return {"module": "keras.layers", "class_name": case["class_name"], "config": case["config"],
            "registered_name": None}


def archive(path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def datasets(raw: bytes) -> dict:
    found = {}
    with h5py.File(io.BytesIO(raw), "r") as f:
        f.visititems(lambda name, obj: found.update({name: obj.shape}) if isinstance(obj, h5py.Dataset) else None)
    return found


def config_layers(path) -> list[dict]:
    if path.suffix == ".keras":
        config = json.loads(archive(path)["config.json"])
    else:
        with h5py.File(path, "r") as f:
            config = json.loads(f.attrs["model_config"])
    return config["config"]["layers"]


# ---------------------------------------------------------------------------------------- the registry


def test_every_registered_layer_has_a_keras_mapping_or_a_reason():
    for name, cls in layers.LAYER_CLASSES.items():
        assert (cls in KERAS_MAPPINGS) != (cls in NOT_SUPPORTED), f"{name}: needs exactly one of a mapping or a reason"
    assert set(KERAS_MAPPINGS) | set(NOT_SUPPORTED) == set(layers.LAYER_CLASSES.values())
    assert all(isinstance(reason, str) and reason for reason in NOT_SUPPORTED.values())


def test_import_reads_the_same_registry():
    names = [m.keras_name for m in KERAS_MAPPINGS.values()]
    assert len(set(names)) == len(names)
    # InputLayer is read and written by the model-level code, never as a layer of the list.
    assert [cls for cls, m in KERAS_MAPPINGS.items() if m.model_level] == [layers.InputLayer]
    assert KERAS_CLASSES == {m.keras_name: cls for cls, m in KERAS_MAPPINGS.items() if not m.model_level}


@pytest.mark.parametrize("cls", list(KERAS_MAPPINGS), ids=lambda cls: cls.__name__)
def test_weights_path_is_keras_snake_case(cls):
    assert KERAS_MAPPINGS[cls].weights_path == keras_to_snake_case(KERAS_MAPPINGS[cls].keras_name)


def test_keras_paths_number_layers_per_class():
    from convscope.interop.keras_weights import keras_paths
    from convscope.layers.conv_variants import Conv2DTranspose
    from convscope.layers.reshaping import ZeroPadding2D

    chain = [Conv2DTranspose(2, 3), layers.ReLU(), ZeroPadding2D(), Conv2DTranspose(2, 3), layers.LeakyReLU()]
    assert keras_paths(chain) == ["layers/conv2d_transpose", "layers/re_lu", "layers/zero_padding2d",
                                  "layers/conv2d_transpose_1", "layers/leaky_re_lu"]


# --------------------------------------------------------------------- one Keras layer at a time


@pytest.mark.parametrize("name", sorted(CASES))
def test_keras_layer_config_computes_as_keras(arrays, name):
    """Keras's own get_config() through the registry: the right class, Keras's numbers (float32)."""
    case = CASES[name]
    layer = keras_config.layer_from_config(keras_spec(case), "layers.json")
    assert type(layer) is KERAS_CLASSES[case["class_name"]] and layer.name == case["config"]["name"]
    shape = case["input_shape"]
    several = isinstance(shape[0], list)
    layer.build([tuple(s) for s in shape] if several else tuple(shape))
    layer.set_weights([arrays[f"{name}/w{i}"] for i in range(len(case["weights"]))])
    x = [arrays[f"{name}/x{i}"] for i in range(len(shape))] if several else arrays[f"{name}/x"]
    expected = arrays[f"{name}/y"]
    diff = float(np.abs(layer.forward(x) - expected).max())
    assert diff <= TOLERANCE * max(1.0, float(np.abs(expected).max())), f"max |convscope - Keras| = {diff:.3g}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_exported_layer_config_is_keras_config(name):
    """What save_keras writes for the layer: Keras's class name and, key by key, Keras's values."""
    case = CASES[name]
    layer = keras_config.layer_from_config(keras_spec(case), "layers.json")
    written = keras_config.keras_layer_config(layer)
    assert written["class_name"] == case["class_name"] and written["module"] == "keras.layers"
    theirs = case["config"]
    assert ("data_format" in written["config"]) == ("data_format" in theirs)
    assert {k: v for k, v in written["config"].items() if k != "dtype"} == {k: theirs[k] for k in written["config"]
                                                                           if k != "dtype"}
    assert written["config"]["dtype"] == theirs["dtype"]["config"]["name"] == "float32"


# ------------------------------------------------------------------- Keras-written Sequential models


@pytest.mark.parametrize("file", SEQUENTIALS)
def test_keras_sequential_predicts_as_keras(file, predictions):
    model = convscope.load_model(FIXTURES / file)
    specs = config_layers(FIXTURES / file)[1:]
    assert isinstance(model, convscope.Sequential)
    assert [type(layer).__name__ for layer in model.layers] == [spec["class_name"] for spec in specs]
    stem = file.split(".")[0]
    x, expected = predictions[f"{stem}/x"], predictions[f"{stem}/y"]
    ours = model.predict(x)
    assert float(np.abs(ours - expected).max()) <= TOLERANCE
    # The outputs follow the inputs: nothing upstream is a constant.
    assert (ours.std(axis=0) > 0.05).all()


def test_keras_sequentials_hold_every_single_input_layer_and_activation():
    held, activations = set(), set()
    augment = FIXTURES.parent / "augment" / "augment_model.keras"  # Keras's model of every augmentation layer
    for path in [*(FIXTURES / f for f in SEQUENTIALS), FIXTURES / "mnist_convnet.keras", augment]:
        for spec in config_layers(path)[1:]:
            held.add(spec["class_name"])
            activations.add(spec["config"].get("activation"))
    single_input = {m.keras_name for m in KERAS_MAPPINGS.values() if not (m.merges or m.model_level)}
    assert single_input <= held, f"no Keras-written Sequential holds {sorted(single_input - held)}"
    assert {"relu6", "hard_sigmoid", "hard_silu"} <= activations


def test_adapted_and_given_normalization():
    model = load_keras(FIXTURES / "new_layers.keras")
    adapted, given = model.layers[:2]
    assert [p.name.rsplit("/", 1)[-1] for p in adapted.parameters] == ["mean", "variance", "count"]
    assert adapted.count.value.dtype == np.int64  # Keras's int32 count, read as convscope keeps it
    # Adapted on channels of means -1, 3, 10 and spreads 0.5, 2, 5.
    np.testing.assert_allclose(adapted.adapt_mean.value, [-1, 3, 10], atol=0.1)
    np.testing.assert_allclose(adapted.adapt_variance.value, [0.25, 4, 25], rtol=0.1)
    assert given.parameters == [] and given.invert
    assert (given.input_mean, given.input_variance) == ([0.5, -0.5, 1.0], [2.0, 0.5, 1.0])


@pytest.mark.parametrize("stem", ["new_layers", "old_layers"])
def test_save_keras_writes_what_keras_writes(tmp_path, stem):
    """convscope's export of each Keras-written model: Keras's configs, weights paths and shapes; read back exactly."""
    model = load_keras(FIXTURES / f"{stem}.keras")
    save_keras(model, tmp_path / "copy.keras")
    ours, theirs = archive(tmp_path / "copy.keras"), archive(FIXTURES / f"{stem}.keras")
    ours_layers, theirs_layers = (json.loads(a["config.json"])["config"]["layers"] for a in (ours, theirs))
    assert [l["class_name"] for l in ours_layers] == [l["class_name"] for l in theirs_layers]
    assert ours_layers[0]["config"]["batch_shape"] == theirs_layers[0]["config"]["batch_shape"]
    for layer, mine, keras_layer in zip(model.layers, ours_layers[1:], theirs_layers[1:]):
        expected = dict(keras_layer["config"])
        if isinstance(layer, LayerNormalization):
            # Keras 3.15 writes the axes as given; convscope, as later Keras, writes them canonical once built.
            expected["axis"] = sorted(a % len(layer.input_shape) for a in expected["axis"])
        assert all(expected[k] == v for k, v in mine["config"].items() if k != "dtype"), mine
    assert datasets(ours["model.weights.h5"]) == datasets(theirs["model.weights.h5"])
    again = load_keras(tmp_path / "copy.keras")
    x = np.load(FIXTURES / "sequential_inputs.npz")[f"{stem}/x"]
    np.testing.assert_array_equal(again.predict(x), model.predict(x))


@pytest.mark.parametrize("file", ["new_layers.keras", "new_layers.h5"])
def test_load_keras_weights_into_the_same_convscope_model(file, predictions):
    model = convscope.Sequential.from_config(load_keras(FIXTURES / "new_layers.keras").get_config())
    load_keras_weights(model, FIXTURES / file)
    x, expected = predictions["new_layers/x"], predictions["new_layers/y"]
    assert float(np.abs(model.predict(x) - expected).max()) <= TOLERANCE


def test_keras2_leaky_relu_alpha():
    spec = {"class_name": "LeakyReLU", "config": {"name": "leaky", "trainable": True, "dtype": "float32", "alpha": 0.1}}
    assert keras_config.layer_from_config(spec, "old.h5").negative_slope == 0.1


# --------------------------------------------------------------------------------- refused, clearly


def rewrite(tmp_path, edit_config=None, edit_weights=None) -> Path:
    """A copy of new_layers.keras with its config and / or weights edited."""
    members = archive(FIXTURES / "new_layers.keras")
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
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def replace_dataset(path, value):
    def edit(f):
        del f[path]
        f[path] = value
    return edit


def set_config(index, **values):
    def edit(layer_specs):
        layer_specs[index]["config"].update(values)
    return edit


def insert(index, spec):
    def edit(layer_specs):
        layer_specs.insert(index, spec)
    return edit


ADD = {"module": "keras.layers", "class_name": "Add", "registered_name": None,
       "config": {"name": "add", "trainable": True, "dtype": "float32"}}
INPUT = {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
         "config": {"name": "input_2", "batch_shape": [None, 6, 6, 3]}}


@pytest.mark.parametrize("edit, message", [
    (dict(edit_weights=replace_dataset("layers/normalization/vars/2", np.float32(0))),
     r'weight "count" of layer "normalization" has dtype float32, not an integer type'),
    (dict(edit_weights=replace_dataset("layers/normalization/vars/0", np.zeros(3, "int32"))),
     r'weight "mean" of layer "normalization" has dtype int32, not a float type'),
    (dict(edit_weights=replace_dataset("layers/separable_conv2d/vars/1", np.zeros((1, 1, 12, 9), "float32"))),
     r'weight "pointwise_kernel" of layer "separable_conv2d" has shape \(1, 1, 12, 9\) in the file, '
     r"the model needs \(1, 1, 12, 8\)"),
    (dict(edit_config=set_config(7, interpolation="bicubic")), r'layer "up_sampling2d" \(UpSampling2D\): .*bicubic'),
    (dict(edit_config=set_config(9, data_format="channels_first")),
     r"layer \"conv2d_transpose\" \(Conv2DTranspose\): data_format='channels_first' is not supported"),
    (dict(edit_config=insert(3, ADD)),
     r'layer "add" \(Add\) merges several inputs; convscope reads Keras Sequential models and single-input chains'),
    (dict(edit_config=insert(3, INPUT)),
     r"layer \"input_2\" \(InputLayer\): an InputLayer can only be a model's input"),
], ids=["float-count", "integer-mean", "wrong-shape", "interpolation", "channels-first", "merge-in-sequential",
        "second-input"])
def test_foreign_new_layer_files_are_refused(tmp_path, edit, message):
    path = rewrite(tmp_path, **edit)
    with pytest.raises(ModelFileError, match=message):
        convscope.load_model(path)


def test_save_keras_refuses_unbuilt_models(tmp_path):
    model = convscope.Sequential([layers.Dense(3)], name="unbuilt")
    with pytest.raises(ValueError, match=r'save_keras: model "unbuilt" has not been built'):
        save_keras(model, tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()


class _NearestOnly(UpSampling2D):
    """A subclass may compute something else than its base: the registry is keyed by exact type."""


def test_registry_is_keyed_by_exact_class(tmp_path):
    model = convscope.Sequential([convscope.Input(shape=(4, 4, 1)), _NearestOnly()])
    message = r'Layer "\w+" \(_NearestOnly\) has no Keras equivalent; Keras has: Activation'
    with pytest.raises(ValueError, match=message):
        save_keras(model, tmp_path / "m.keras")


def test_not_supported_reason_and_model_level_messages(tmp_path, monkeypatch):
    monkeypatch.setitem(NOT_SUPPORTED, _NearestOnly, "it resizes differently")
    model = convscope.Sequential([convscope.Input(shape=(4, 4, 1)), _NearestOnly(name="resize")])
    with pytest.raises(ValueError, match=r'Layer "resize" \(_NearestOnly\) has no Keras equivalent '
                                         r"\(it resizes differently\); Keras has: Activation"):
        save_keras(model, tmp_path / "m.keras")
    with pytest.raises(ValueError, match=r'Layer "x" \(InputLayer\) is a model input, written from the model'):
        keras_config.keras_mapping(layers.InputLayer((3,), name="x"))
