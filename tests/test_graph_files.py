"""Model files hold graphs: functional and nested models round-trip exactly; old files still load; bad graphs are refused."""

import json
import pathlib
import zipfile

import numpy as np
import pytest

import convscope
from convscope import layers, utils
from convscope.errors import ModelFileError
from convscope.layers.merging import Add, Concatenate

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "format_v1"


@pytest.fixture(autouse=True)
def fresh_names():
    layers.clear_session()
    utils.set_random_seed(0)


def graph_model():
    image = convscope.Input(shape=(8, 8, 2), name="image")
    extra = convscope.Input(shape=(3,), name="extra")
    base_in = convscope.Input(shape=(8, 8, 2))
    base = convscope.Model(base_in, layers.Conv2D(4, 3, padding="same", activation="relu", name="base_conv")(base_in),
                           name="base")
    x = base(image)
    y = layers.Conv2D(4, 3, padding="same", name="branch")(x)
    x = layers.BatchNormalization(name="bn")(Add(name="add")([x, y]))
    shared = layers.Dense(4, activation="tanh", name="shared")
    pooled = layers.GlobalAveragePooling2D()(x)
    joined = Concatenate(name="joined")([shared(pooled), shared(layers.Dense(4, name="lift")(extra))])
    out = layers.Dense(3, activation="softmax", name="out")(joined)
    aux = layers.Dense(1, name="aux")(pooled)
    return convscope.Model({"image": image, "extra": extra}, [out, aux], name="graph")


def sample(n=6):
    rng = np.random.default_rng(5)
    return {"image": rng.standard_normal((n, 8, 8, 2)).astype("float32"), "extra": rng.random((n, 3)).astype("float32")}


def test_functional_graph_with_nested_and_shared_layers_round_trips(tmp_path):
    model = graph_model()
    model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.1],
                  metrics=[["accuracy"], []])
    x = sample()
    model.fit(x, [np.array([0, 1, 2, 0, 1, 2]), np.ones((6, 1))], epochs=2, batch_size=3, verbose=0)
    model.save(tmp_path / "graph.convscope")
    config = json.loads(zipfile.ZipFile(tmp_path / "graph.convscope").read("config.json"))
    assert config["format_version"] == 2 and config["model"]["class_name"] == "Functional"
    shared = next(s for s in config["model"]["config"]["layers"] if s["name"] == "shared")
    assert len(shared["inbound_nodes"]) == 2  # one entry per call site
    loaded = convscope.load_model(tmp_path / "graph.convscope")
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    for a, b in zip(model.predict(x, verbose=0), loaded.predict(x, verbose=0)):
        np.testing.assert_array_equal(a, b)
    assert loaded.get_layer("base").get_layer("base_conv").kernel.value.shape == (3, 3, 2, 4)
    # The optimizer state came back too: one more step is the same step.
    y = [np.array([2, 1, 0, 2, 1, 0]), np.zeros((6, 1))]
    utils.set_random_seed(1)
    model.fit(x, y, epochs=1, batch_size=6, verbose=0, shuffle=False)
    utils.set_random_seed(1)
    loaded.fit(x, y, epochs=1, batch_size=6, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["keras_convnet_v1", "mixed_v1"])
def test_files_written_by_the_previous_release_load_and_predict_bit_identically(name):
    model = convscope.load_model(FIXTURES / f"{name}.convscope")
    x = np.load(FIXTURES / f"{name}_inputs.npy")
    np.testing.assert_array_equal(model.predict(x, verbose=0), np.load(FIXTURES / f"{name}_predictions.npy"))
    assert isinstance(model, convscope.Sequential)


def forged(tmp_path, edit):
    model = graph_model()
    path = tmp_path / "graph.convscope"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        items = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(items["config.json"])
    edit(config["model"]["config"])
    items["config.json"] = json.dumps(config).encode()
    bad = tmp_path / "forged.convscope"
    with zipfile.ZipFile(bad, "w") as zf:
        for n, data in items.items():
            zf.writestr(n, data)
    return bad


def layer(config, name):
    return next(s for s in config["layers"] if s["name"] == name)


@pytest.mark.parametrize("edit, message", [
    (lambda c: layer(c, "out")["inbound_nodes"][0]["args"][0].__setitem__(0, "ghost"),
     r'layer "out", call 0 reads from layer "ghost", which is not in the graph'),
    (lambda c: layer(c, "branch")["inbound_nodes"][0]["args"][0].__setitem__(0, "bn"),
     r'the graph cannot be computed: .*"add" call 0.*\(a cycle'),
    (lambda c: layer(c, "out")["inbound_nodes"][0]["args"][0].__setitem__(2, 3),
     r'layer "out", call 0: tensor index 3 is out of range: call 0 of "joined" has 1 output'),
    (lambda c: layer(c, "out")["inbound_nodes"][0]["args"][0].__setitem__(1, 7),
     r'layer "out", call 0: layer "joined" has no call 7'),
    (lambda c: layer(c, "out")["inbound_nodes"][0]["args"][0].__setitem__(0, "pooled_missing"),
     r'reads from layer "pooled_missing"'),
    (lambda c: layer(c, "aux")["inbound_nodes"][0]["args"][0].__setitem__(0, "joined"),
     r'Input 0 of layer "aux" is incompatible|weight .* should be'),
    (lambda c: layer(c, "out")["inbound_nodes"][0].update(args=[["joined", 0, 0], ["joined", 0, 0]], as_list=False),
     r'"as_list" must be true for several inputs'),
    (lambda c: c["layers"].append(dict(layer(c, "out"))), r'layer name "out" appears twice'),
    (lambda c: c.update(output_layers=[["nowhere", 0, 0]]), r'output_layers: layer "nowhere" has no call 0'),
    (lambda c: layer(c, "out")["inbound_nodes"][0]["args"].__setitem__(0, ["joined", -1, 0]),
     r"a tensor reference must be \[layer name, call index, tensor index\]"),
])
def test_bad_connections_are_refused_naming_them(tmp_path, edit, message):
    with pytest.raises(ModelFileError, match=message):
        convscope.load_model(forged(tmp_path, edit))


def test_a_huge_layer_in_a_graph_is_refused_before_anything_is_allocated(tmp_path):
    bad = forged(tmp_path, lambda c: layer(c, "out")["config"].update(units=10**9))
    with pytest.raises(ModelFileError, match=r"weight .* should be out/kernel of shape \(8, 1000000000\)"):
        convscope.load_model(bad)


def test_frozen_layers_stay_frozen_through_a_file(tmp_path):
    model = graph_model()
    model.get_layer("branch").trainable = False
    model.get_layer("base").trainable = False
    model.save(tmp_path / "partly_frozen.convscope")
    loaded = convscope.load_model(tmp_path / "partly_frozen.convscope")
    assert loaded.trainable and not loaded.get_layer("branch").trainable and not loaded.get_layer("base").trainable
    assert [p.name for p in loaded.trainable_parameters] == [p.name for p in model.trainable_parameters]
    assert "branch/kernel" not in [p.name for p in loaded.trainable_parameters]


def test_a_file_whose_weights_are_listed_in_another_order_is_refused(tmp_path):
    x = convscope.Input(shape=(3,), name="x")
    model = convscope.Model(x, layers.Dense(4, name="d2")(layers.Dense(4, name="d1")(x)))
    model.save(tmp_path / "m.convscope")
    with zipfile.ZipFile(tmp_path / "m.convscope") as zf:
        items = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(items["config.json"])
    specs = config["model"]["config"]["layers"]
    specs[1], specs[2] = specs[2], specs[1]                 # layers listed d2, d1: still the same graph
    config["weights"] = config["weights"][2:] + config["weights"][:2]
    items["weights/0000.npy"], items["weights/0001.npy"], items["weights/0002.npy"], items["weights/0003.npy"] = (
        items["weights/0002.npy"], items["weights/0003.npy"], items["weights/0000.npy"], items["weights/0001.npy"])
    items["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "reordered.convscope", "w") as zf:
        for n, data in items.items():
            zf.writestr(n, data)
    with pytest.raises(ModelFileError, match="lists its weights in another order than the model's layers hold them"):
        convscope.load_model(tmp_path / "reordered.convscope")


def test_a_frozen_sequential_stays_frozen_through_a_file(tmp_path):
    model = convscope.Sequential([convscope.Input(shape=(3,)), layers.Dense(2)], trainable=False)
    assert model.trainable_parameters == []
    model.save(tmp_path / "frozen.convscope")
    assert convscope.load_model(tmp_path / "frozen.convscope").trainable_parameters == []
