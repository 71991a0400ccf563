"""Files under Keras's names: ``model.save`` by suffix, ``load_model`` compiled, ``save_weights`` / ``load_weights``.

The ``keras_*`` fixtures were written by real Keras 3 and ``keras_outputs.npz`` holds what Keras
computed on them; the ``convscope_*`` fixtures were written by convscope and read by real Keras,
whose predictions are in ``keras_reads_convscope.npz`` (``tests/fixtures/keras_files/make_fixtures.py``
makes both; the tests never need Keras).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

import convscope
from convscope import layers
from convscope.errors import ModelFileError

h5py = pytest.importorskip("h5py")

FIXTURES = Path(__file__).parent / "fixtures" / "keras_files"
NAMES = ["sequential", "functional", "nested"]
MODEL_SUFFIXES = [".keras", ".h5"]
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def keras_outputs():
    return dict(np.load(FIXTURES / "keras_outputs.npz"))


def max_difference(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype="float64") - np.asarray(b, dtype="float64")).max())


# -------------------------------------------------------------------------------- files Keras wrote
EXPECTED_COMPILE = {
    "sequential": ("Adam", 2e-3, "SparseCategoricalCrossentropy", ["accuracy"]),
    "functional": ("SGD", 0.05, "SparseCategoricalCrossentropy", ["accuracy", "sparse_top_k_categorical_accuracy"]),
    "nested": ("RMSprop", 1e-3, "SparseCategoricalCrossentropy", ["sparse_categorical_accuracy"]),
}


@pytest.mark.parametrize("suffix", MODEL_SUFFIXES)
@pytest.mark.parametrize("name", NAMES)
def test_keras_files_load_compiled_and_compute_as_keras(name, suffix, keras_outputs):
    model = convscope.load_model(FIXTURES / f"keras_{name}{suffix}")
    x, y = keras_outputs["x"], keras_outputs["y"]
    diff = max_difference(model.predict(x, verbose=0), keras_outputs[name])
    assert diff < TOLERANCE, f"{name}{suffix}: predictions differ from Keras's by {diff}"
    optimizer, rate, loss, metric_names = EXPECTED_COMPILE[name]
    assert type(model.optimizer).__name__ == optimizer and model.optimizer.learning_rate == pytest.approx(rate)
    assert type(model.loss).__name__ == loss and [m.name for m in model.metrics] == metric_names
    assert model.optimizer.iterations == 0  # Keras's optimizer variables are not read: a fresh optimizer
    evaluated = model.evaluate(x, y, verbose=0)
    diff = max_difference(evaluated, keras_outputs[f"{name}_evaluate"])
    assert diff < TOLERANCE, f"{name}{suffix}: evaluate {evaluated} differs from Keras's by {diff}"
    before = model.get_weights()
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_the_momentum_and_metric_arguments_come_back(keras_outputs):
    model = convscope.load_model(FIXTURES / "keras_functional.keras")
    assert model.optimizer.momentum == pytest.approx(0.9)
    assert model.metrics[1].k == 2
    assert not convscope.load_model(FIXTURES / "keras_nested.keras").get_layer("block").layers[0].trainable


@pytest.mark.parametrize("suffix", MODEL_SUFFIXES)
def test_compile_false_skips_the_compile_configuration(suffix):
    model = convscope.load_model(FIXTURES / f"keras_functional{suffix}", compile=False)
    assert model.optimizer is None and model.loss is None


@pytest.mark.parametrize("source", [".weights.h5", ".keras", ".h5"])
@pytest.mark.parametrize("name", NAMES)
def test_load_weights_reads_what_keras_wrote(name, source, keras_outputs):
    model = convscope.load_model(FIXTURES / f"keras_{name}.keras", compile=False)
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    model.load_weights(FIXTURES / f"keras_{name}{source}")
    diff = max_difference(model.predict(keras_outputs["x"], verbose=0), keras_outputs[name])
    assert diff < TOLERANCE, f"{name}: weights from {source} predict {diff} away from Keras"


# ------------------------------------------------------------------------------- files Keras read
def _h5_tree(source) -> dict:
    """Every group's and dataset's attributes and every dataset's values, by path: what Keras reads."""
    tree = {}
    with h5py.File(source, "r") as f:
        def visit(path, obj):
            attrs = {}
            for key, value in obj.attrs.items():
                if key in ("model_config", "training_config"):
                    value = json.loads(value)
                elif isinstance(value, np.ndarray):
                    value = [v.decode() if isinstance(v, bytes) else v for v in value.tolist()]
                attrs[key] = value.decode() if isinstance(value, bytes) else value
            data = obj[()].tolist() if isinstance(obj, h5py.Dataset) else None
            tree[path] = (attrs, data)

        visit("/", f)
        f.visititems(visit)
    return tree


def _content(path) -> dict:
    if str(path).endswith(".keras"):
        with zipfile.ZipFile(path) as zf:
            weights = _h5_tree(io.BytesIO(zf.read("model.weights.h5")))
            return {"config": json.loads(zf.read("config.json")), "weights": weights}
    return {"file": _h5_tree(path)}


@pytest.mark.parametrize("suffix", [".keras", ".h5", ".weights.h5"])
@pytest.mark.parametrize("name", NAMES)
def test_keras_reads_the_files_convscope_writes(tmp_path, name, suffix, keras_outputs):
    model = convscope.load_model(FIXTURES / f"keras_{name}.keras")
    target = tmp_path / f"m{suffix}"
    (model.save_weights if suffix == ".weights.h5" else model.save)(target)
    # The file the current code writes is the one real Keras read...
    assert _content(target) == _content(FIXTURES / f"convscope_{name}{suffix}")
    # ... and Keras computed from it what convscope computes.
    seen_by_keras = np.load(FIXTURES / "keras_reads_convscope.npz")[f"{name}{suffix}"]
    diff = max_difference(model.predict(keras_outputs["x"], verbose=0), seen_by_keras)
    assert diff < TOLERANCE, f"{name}{suffix}: Keras predicts {diff} away from convscope"
    report = json.loads((FIXTURES / "keras_reads_convscope.json").read_text())[f"{name}{suffix}"]
    assert report["compiled"] and report["optimizer"] == EXPECTED_COMPILE[name][0]


def test_the_compile_config_written_is_keras_own_form():
    model = convscope.load_model(FIXTURES / "keras_sequential.keras")
    with zipfile.ZipFile(FIXTURES / "keras_sequential.keras") as zf:
        theirs = json.loads(zf.read("config.json"))["compile_config"]
    with zipfile.ZipFile(FIXTURES / "convscope_sequential.keras") as zf:
        ours = json.loads(zf.read("config.json"))["compile_config"]
    assert set(ours) == set(theirs)
    assert {k: ours[k] for k in ours if k != "optimizer"} == {k: theirs[k] for k in theirs if k != "optimizer"}
    assert ours["optimizer"]["class_name"] == "Adam" and ours["optimizer"]["config"]["beta_1"] == 0.9
    assert model.optimizer.get_config()["learning_rate"] == ours["optimizer"]["config"]["learning_rate"]


# -------------------------------------------------------------------- round trips (Must show 2)
def sequential_model():
    return convscope.Sequential([
        convscope.Input((8, 8, 3)), layers.Conv2D(4, 3, padding="same", activation="relu"),
        layers.BatchNormalization(), layers.MaxPooling2D(2), layers.Flatten(), layers.Dropout(0.2),
        layers.Dense(3, activation="softmax"),
    ], name="chain")


def functional_model():
    x = convscope.Input((8, 8, 3))
    a = layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    b = layers.BatchNormalization()(layers.Conv2D(4, 1)(x))
    joined = layers.Concatenate()([layers.Add()([a, b]), x])
    return convscope.Model(x, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(joined)),
                           name="branches")


def nested_model():
    block = convscope.Sequential([convscope.Input((8, 8, 3)), layers.BatchNormalization(),
                                  layers.Conv2D(4, 3, activation="relu")], name="block")
    block.layers[1].trainable = False  # frozen after a BatchNormalization: the legacy order differs from ours
    head_in = convscope.Input((6, 6, 4))
    head = convscope.Model(head_in, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(head_in)),
                           name="head")
    x = convscope.Input((8, 8, 3))
    return convscope.Model(x, head(layers.ReLU()(block(x))), name="outer")


MAKERS = {"sequential": sequential_model, "functional": functional_model, "nested": nested_model}


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 1, (16, 8, 8, 3)).astype("float32"), rng.integers(0, 3, 16)
    models = {}
    for name, make in MAKERS.items():
        model = make()
        model.compile(optimizer=convscope.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        models[name] = model
    return models, x, y


@pytest.mark.parametrize("suffix", [".keras", ".h5", ".convscope"])
@pytest.mark.parametrize("name", NAMES)
def test_save_then_load_model_predicts_bit_identically(tmp_path, trained, name, suffix):
    models, x, y = trained
    model = models[name]
    model.save(tmp_path / f"m{suffix}")
    loaded = convscope.load_model(tmp_path / f"m{suffix}")
    assert type(loaded) is type(model)
    diff = max_difference(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert diff == 0, f"{name}{suffix}: max difference {diff}"
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    assert type(loaded.optimizer).__name__ == "Adam" and loaded.optimizer.learning_rate == pytest.approx(3e-3)
    assert np.isfinite(loaded.fit(x, y, batch_size=8, epochs=1, verbose=0).history["loss"][0])


@pytest.mark.parametrize("name", NAMES)
def test_save_weights_then_load_weights_is_bit_identical(tmp_path, trained, name):
    models, x, _ = trained
    models[name].save_weights(tmp_path / "m.weights.h5")
    fresh = MAKERS[name]()  # other automatic layer names: Keras 3 files go by class and position
    fresh.load_weights(tmp_path / "m.weights.h5")
    diff = max_difference(fresh.predict(x, verbose=0), models[name].predict(x, verbose=0))
    assert diff == 0, f"{name}.weights.h5: max difference {diff}"
    for source in (".keras", ".h5"):
        models[name].save(tmp_path / f"m{source}")
        again = MAKERS[name]()
        again.load_weights(tmp_path / f"m{source}")
        diff = max_difference(again.predict(x, verbose=0), models[name].predict(x, verbose=0))
        assert diff == 0, f"{name}: weights of a {source} file, max difference {diff}"


def test_only_the_native_file_keeps_the_optimizer_state(tmp_path, trained):
    model = trained[0]["sequential"]
    model.save(tmp_path / "m.convscope")
    model.save(tmp_path / "m.keras")
    assert convscope.load_model(tmp_path / "m.convscope").optimizer.iterations == model.optimizer.iterations > 0
    assert convscope.load_model(tmp_path / "m.keras").optimizer.iterations == 0


# --------------------------------------------------------------------------------------- refused
@pytest.mark.parametrize("name", ["m.zip", "m", "m.json"])
def test_save_refuses_other_suffixes(tmp_path, trained, name):
    with pytest.raises(ValueError, match=r"Invalid filepath extension for saving: .*Use one of "
                                         r"\.convscope, \.h5, \.hdf5, \.keras"):
        trained[0]["sequential"].save(tmp_path / name)
    assert os.listdir(tmp_path) == []


def test_hdf5_suffix_writes_the_legacy_file(tmp_path, trained):
    trained[0]["sequential"].save(tmp_path / "m.hdf5")
    with h5py.File(tmp_path / "m.hdf5", "r") as f:
        assert {"model_config", "training_config"} <= set(f.attrs) and "model_weights" in f


def test_save_weights_needs_the_keras_suffix(tmp_path, trained):
    with pytest.raises(ValueError, match=r"The filename must end in `\.weights\.h5`\. Received: filepath=.*m\.h5"):
        trained[0]["sequential"].save_weights(tmp_path / "m.h5")
    assert os.listdir(tmp_path) == []


def test_load_weights_refuses_unknown_suffixes(tmp_path):
    (tmp_path / "m.npz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"File format not supported: filepath=.*m\.npz\. Keras 3 only supports"):
        sequential_model().load_weights(tmp_path / "m.npz")


def test_load_weights_checks_everything_before_assigning(tmp_path, trained):
    trained[0]["sequential"].save_weights(tmp_path / "m.weights.h5")
    other = convscope.Sequential([
        convscope.Input((8, 8, 3)), layers.Conv2D(4, 3, padding="same", activation="relu"),
        layers.BatchNormalization(), layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(5, name="wide")],
        name="other")
    before = other.get_weights()
    with pytest.raises(ModelFileError, match=r'weight "kernel" of layer "wide" has shape \(64, 3\) in the file, '
                                             r"the model needs \(64, 5\)"):
        other.load_weights(tmp_path / "m.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(before, other.get_weights()))  # nothing was assigned


def test_load_weights_counts_layers(tmp_path, trained):
    trained[0]["nested"].save(tmp_path / "m.h5")
    with pytest.raises(ModelFileError, match=r"the model has 4 layers with weights \(conv2d_\d+, conv2d_\d+, "
                                             r"batch_normalization\w*, dense\w*\), the file holds weights for 2 "
                                             r"\(block, head\)"):
        functional_model().load_weights(tmp_path / "m.h5")


def test_subclassed_models_are_saved_natively(tmp_path):
    class Net(convscope.Model):
        def __init__(self):
            super().__init__(name="net")
            self.dense = layers.Dense(2)

        def call(self, x, training=False):
            return self.dense(x)

    net = Net()
    net.predict(np.ones((2, 3), "float32"), verbose=0)
    with pytest.raises(ValueError, match=r'subclass of Model \(Net\).*save it as \.convscope'):
        net.save(tmp_path / "net.keras")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("suffix", [".keras", ".h5", ".weights.h5"])
def test_a_failed_keras_save_keeps_the_previous_file(tmp_path, trained, monkeypatch, suffix):
    model, path = trained[0]["functional"], tmp_path / f"m{suffix}"
    save = model.save_weights if suffix == ".weights.h5" else model.save
    save(path)
    before = path.read_bytes()

    def refuse(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(convscope.atomic.os, "replace", refuse)
    with pytest.raises(OSError, match="previous file is unchanged"):
        save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == [path.name]


def test_an_unrestorable_compile_config_says_to_skip_it(tmp_path):
    with zipfile.ZipFile(FIXTURES / "keras_sequential.keras") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(members["config.json"])
    config["compile_config"]["loss"] = "no_such_loss"
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(ModelFileError, match=r"its compile configuration cannot be restored: .*no_such_loss.*"
                                             r"Load it with compile=False"):
        convscope.load_model(tmp_path / "m.keras")
    assert convscope.load_model(tmp_path / "m.keras", compile=False).optimizer is None


def test_a_function_loss_is_written_by_name_as_keras_does(tmp_path):
    def my_loss(y_true, y_pred):
        return convscope.ops.mean(convscope.ops.square(y_true - y_pred), axis=-1)

    model = convscope.Sequential([convscope.Input((3,)), layers.Dense(2)])
    model.compile(optimizer="adam", loss=my_loss)
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        loss = json.loads(zf.read("config.json"))["compile_config"]["loss"]
    assert (loss["class_name"], loss["config"], loss["registered_name"]) == ("function", "my_loss", "function")
    with pytest.raises(ModelFileError, match=r"cannot be restored: Unknown loss 'my_loss'.*compile=False"):
        convscope.load_model(tmp_path / "m.keras")
    assert convscope.load_model(tmp_path / "m.keras", compile=False).count_params() == 8
