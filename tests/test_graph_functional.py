"""The functional API: models as graphs of layer calls, shared layers, nested models, several inputs and outputs."""

import numpy as np
import pytest

import convscope
from convscope import layers, utils
from convscope.layers.merging import Add, Concatenate
from convscope.layers.node import KerasTensor


@pytest.fixture(autouse=True)
def fresh_names():
    layers.clear_session()
    utils.set_random_seed(0)


def residual_model():
    """A residual block with a projection shortcut, a Concatenate branch and one Dense shared by two branches."""
    inputs = convscope.Input(shape=(8, 8, 3), name="image")
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="stem")(inputs)
    y = layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="block_a")(x)
    y = layers.Conv2D(6, 3, padding="same", name="block_b")(y)
    shortcut = layers.Conv2D(6, 1, strides=2, name="projection")(x)
    y = layers.ReLU(name="block_out")(Add(name="add")([y, shortcut]))
    left = layers.GlobalAveragePooling2D(name="gap")(y)
    right = layers.GlobalMaxPooling2D(name="gmp")(y)
    shared = layers.Dense(5, activation="tanh", name="shared")
    merged = Concatenate(name="concat")([shared(left), shared(right)])
    outputs = layers.Dense(3, activation="softmax", name="head")(merged)
    return convscope.Model(inputs, outputs, name="resnet_toy")


def data(n=32, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 8, 8, 3)).astype("float32"), rng.integers(0, 3, n)


def test_input_is_a_symbolic_tensor_and_layer_calls_record_nodes():
    x = convscope.Input(shape=(28, 28, 1), name="digits")
    assert isinstance(x, KerasTensor) and x.shape == (None, 28, 28, 1) and x.dtype == "float32"
    conv = layers.Conv2D(8, 3)
    y = conv(x)
    assert isinstance(y, KerasTensor) and y.shape == (None, 26, 26, 8)
    assert y.node.layer is conv and y.node.inputs == [x]
    assert conv.input is x and conv.output is y
    assert conv.kernel.value.shape == (3, 3, 1, 8)  # built on the symbolic call
    assert convscope.Input(shape=(4,), dtype="float64").dtype == "float64"


def test_model_layers_inputs_outputs_and_get_layer():
    model = residual_model()
    assert [l.name for l in model.layers] == [
        "image", "stem", "block_a", "block_b", "projection", "add", "block_out", "gap", "gmp", "shared", "concat", "head"]
    assert model.inputs[0].node.layer.name == "image" and model.input is model.inputs[0]
    assert model.output.shape == (None, 3) and len(model.outputs) == 1
    assert model.get_layer("shared").units == 5
    assert model.get_layer(index=1).name == "stem"
    with pytest.raises(ValueError, match='No layer named "nope"'):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="out of range"):
        model.get_layer(index=40)
    # A shared layer's weights count once.
    assert model.count_params() == sum(l.count_params() for l in model.layers)
    assert len(model.get_weights()) == sum(len(l.get_weights()) for l in model.layers)


def test_graph_model_trains_and_predicts():
    model = residual_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = data()
    before = model.evaluate(x, y, verbose=0)[0]
    history = model.fit(x, y, batch_size=8, epochs=8, verbose=0)
    assert model.history is history
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.evaluate(x, y, verbose=0)[0] < before
    assert model.predict(x, verbose=0).shape == (32, 3)
    np.testing.assert_allclose(model.predict(x, verbose=0).sum(axis=1), 1, rtol=1e-5)


def test_a_shared_layer_sums_its_gradients_over_its_calls():
    x = convscope.Input(shape=(4,))
    shared = layers.Dense(3, use_bias=True, name="twice")
    y = Add()([shared(x), shared(layers.Dense(4, name="pre")(x))])
    model = convscope.Model(x, y)
    model.compile(optimizer="sgd", loss="mse")
    xs = np.random.default_rng(0).standard_normal((5, 4)).astype("float64")
    records = model.trace(xs, np.zeros((5, 3)))
    calls = [r for r in records if r.name == "twice"]
    assert [r.call for r in calls] == ["twice#0", "twice#1"]
    # dL/dkernel = sum over both calls of input^T @ dL/dz
    expected = sum(r.input.T @ r.grad_preactivation for r in calls)
    np.testing.assert_allclose(calls[0].param_grads["kernel"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(calls[0].param_grads["kernel"], calls[1].param_grads["kernel"])
    # The input tensor x feeds two layers: its gradient is the sum of both.
    first = records[0] if records[0].name == "pre" else next(r for r in records if r.name == "pre")
    assert set(r.inbound[0] for r in calls) == {x.node.layer.name, "pre"}
    assert first.grad_input.shape == (5, 4)
    # dL/dx of the model's input: the sum over both layers that read it.
    readers = [r for r in records if r.inbound == [x.node.layer.name]]
    assert len(readers) == 2
    np.testing.assert_allclose(records.grad_input, sum(r.grad_input for r in readers), rtol=1e-12)


def test_feature_extraction_idiom_from_keras_tutorials():
    """keras.Model(inputs=model.inputs, outputs=[layer.output for layer in model.layers]) shares the weights."""
    model = convscope.Sequential([
        convscope.Input(shape=(10, 10, 1)),
        layers.Conv2D(4, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(3, activation="softmax"),
    ])
    extractor = convscope.Model(inputs=model.inputs, outputs=[layer.output for layer in model.layers])
    x = np.random.default_rng(2).random((3, 10, 10, 1)).astype("float32")
    features = extractor.predict(x, verbose=0)
    assert isinstance(features, list) and len(features) == 4
    records = model.trace(x)
    for feature, record in zip(features, records):
        np.testing.assert_array_equal(feature, record.output)
    np.testing.assert_array_equal(features[-1], model.predict(x, verbose=0))
    model.layers[0].kernel.value[...] += 1.0  # shared weights: the extractor sees the change
    np.testing.assert_array_equal(extractor.predict(x, verbose=0)[-1], model.predict(x, verbose=0))


def test_nested_model_for_transfer_learning_with_a_frozen_base():
    base = convscope.Sequential([
        convscope.Input(shape=(8, 8, 3)),
        layers.Conv2D(4, 3, activation="relu", name="base_conv"),
        layers.BatchNormalization(name="base_bn"),
        layers.GlobalAveragePooling2D(name="base_gap"),
    ], name="base")
    base.trainable = False
    assert all(not l.trainable for l in base.layers)
    inputs = convscope.Input(shape=(8, 8, 3))
    outputs = layers.Dense(3, activation="softmax", name="new_head")(base(inputs, training=False))
    model = convscope.Model(inputs, outputs)
    assert model.get_layer("base") is base
    assert [p.name for p in model.trainable_parameters] == ["new_head/kernel", "new_head/bias"]
    frozen = [w.copy() for w in base.get_weights()]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = data(16)
    head_before = model.get_layer("new_head").kernel.value.copy()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    for w, before in zip(base.get_weights(), frozen):
        np.testing.assert_array_equal(w, before)  # weights and batch-norm statistics untouched
    assert not np.array_equal(model.get_layer("new_head").kernel.value, head_before)
    # Unfreezing trains the base too.
    base.trainable = True
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert not np.array_equal(base.layers[0].kernel.value, frozen[0])


def test_sequential_pop_and_reusing_built_layers_keeps_their_weights():
    model = convscope.Sequential([convscope.Input(shape=(6,)), layers.Dense(4, name="a"), layers.Dense(2, name="b")])
    kernel = model.layers[0].kernel.value.copy()
    popped = model.pop()
    assert popped.name == "b" and [l.name for l in model.layers] == ["a"] and model.output_shape == (None, 4)
    model.add(layers.Dense(3, name="c"))
    assert model.output_shape == (None, 3)
    reused = convscope.Sequential([convscope.Input(shape=(6,)), model.layers[0], layers.Dense(5, name="d")])
    assert reused.count_params() == 6 * 4 + 4 + 4 * 5 + 5  # not built twice
    np.testing.assert_array_equal(reused.layers[0].kernel.value, kernel)
    np.testing.assert_array_equal(model.layers[0].kernel.value, kernel)
    assert len(reused.get_weights()) == 4


def test_two_inputs_and_two_outputs_with_losses_by_name_and_weights():
    image = convscope.Input(shape=(6, 6, 1), name="image")
    meta = convscope.Input(shape=(3,), name="meta")
    features = layers.Flatten()(layers.Conv2D(2, 3, activation="relu")(image))
    joined = Concatenate()([features, layers.Dense(4, activation="relu")(meta)])
    digit = layers.Dense(4, activation="softmax", name="digit")(joined)
    size = layers.Dense(1, name="size")(joined)
    model = convscope.Model([image, meta], [digit, size])
    model.compile(optimizer="adam", loss={"digit": "sparse_categorical_crossentropy", "size": "mse"},
                  loss_weights={"digit": 1.0, "size": 0.5}, metrics={"digit": ["accuracy"]})
    rng = np.random.default_rng(3)
    x = [rng.random((20, 6, 6, 1)).astype("float32"), rng.random((20, 3)).astype("float32")]
    y = {"digit": rng.integers(0, 4, 20), "size": rng.random((20, 1)).astype("float32")}
    history = model.fit(x, y, epochs=3, batch_size=5, verbose=0)
    assert {"loss", "digit_loss", "size_loss", "digit_accuracy"} <= set(history.history)
    results = model.evaluate({"image": x[0], "meta": x[1]}, [y["digit"], y["size"]], verbose=0, return_dict=True)
    np.testing.assert_allclose(results["loss"], results["digit_loss"] + 0.5 * results["size_loss"], rtol=1e-5)
    predictions = model.predict(x, verbose=0)
    assert isinstance(predictions, list) and predictions[0].shape == (20, 4) and predictions[1].shape == (20, 1)
    named = convscope.Model({"image": image, "meta": meta}, {"digit": digit, "size": size})
    out = named.predict({"image": x[0], "meta": x[1]}, verbose=0)
    assert set(out) == {"digit", "size"}
    np.testing.assert_array_equal(out["size"], predictions[1])


def test_model_called_on_arrays_and_models_inside_models():
    inner_in = convscope.Input(shape=(4,))
    inner = convscope.Model(inner_in, layers.Dense(2, name="inner_dense")(inner_in), name="inner")
    x = np.ones((3, 4), "float32")
    np.testing.assert_allclose(inner(x), inner.predict(x, verbose=0), rtol=1e-6)
    outer_in = convscope.Input(shape=(4,))
    twice = Add()([inner(outer_in), inner(outer_in)])  # a model shared like a layer
    outer = convscope.Model(outer_in, twice)
    np.testing.assert_allclose(outer.predict(x, verbose=0), 2 * inner.predict(x, verbose=0), rtol=1e-6)
    outer.compile(optimizer="sgd", loss="mse")
    records = outer.trace(x, np.zeros((3, 2), "float32"))
    inner_calls = [r for r in records if r.name == "inner"]
    assert len(inner_calls) == 2 and "inner_dense/kernel" in inner_calls[0].param_grads


def test_a_frozen_model_inside_a_sequential_with_a_new_head(tmp_path):
    base_in = convscope.Input(shape=(8, 8, 3))
    base = convscope.Model(base_in, layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3, name="features")(base_in)),
                           name="base")
    base.trainable = False
    model = convscope.Sequential([convscope.Input(shape=(8, 8, 3)), base, layers.Dense(3, activation="softmax")])
    assert [l.name for l in model.layers] == ["base", "dense"]
    assert model.count_params() == base.count_params() + 4 * 3 + 3
    assert len(model.trainable_parameters) == 2
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = data(16)
    kernel = base.get_layer("features").kernel.value.copy()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    np.testing.assert_array_equal(base.get_layer("features").kernel.value, kernel)
    model.save(tmp_path / "transfer.convscope")
    loaded = convscope.load_model(tmp_path / "transfer.convscope")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert not loaded.get_layer("base").trainable and len(loaded.trainable_parameters) == 2


def test_a_softmax_output_layer_also_called_inside_a_nested_model_gets_its_own_call_s_loss():
    """The fused softmax + cross-entropy reads the pre-activation of the output's own call, even when the
    same layer runs again later in the plan (inside a nested model)."""
    convscope.config.set_floatx("float64")
    try:
        softmax = layers.Dense(3, activation="softmax", name="sm")
        inner_in = convscope.Input(shape=(4,))
        inner = convscope.Model(inner_in, softmax(inner_in), name="inner")
        x = convscope.Input(shape=(4,))
        model = convscope.Model(x, [softmax(x), layers.Dense(2, name="after")(inner(layers.Dense(4, name="pre")(x)))])
        model.compile(optimizer="sgd", loss=["categorical_crossentropy", None])
        rng = np.random.default_rng(0)
        xs, y = rng.standard_normal((6, 4)), np.eye(3)[rng.integers(0, 3, 6)]
        p = model.predict(xs, verbose=0)[0]
        expected = float(-np.mean(np.sum(y * np.log(p), axis=1)))
        assert abs(model.evaluate(xs, [y, None], verbose=0, return_dict=True)["loss"] - expected) < 1e-12
        record = next(r for r in model.trace(xs, [y, np.zeros((6, 2))]) if r.call == "sm")
        np.testing.assert_allclose(record.grad_preactivation, (p - y) / 6, atol=1e-14)
    finally:
        convscope.config.set_floatx("float32")


def test_model_layers_follow_keras_order_for_several_inputs_and_shared_layers():
    """The orders Keras 3.15.1 gives these graphs (checked in a Keras virtual environment)."""
    a, b = convscope.Input(shape=(3,), name="a"), convscope.Input(shape=(4,), name="b")
    model = convscope.Model([a, b], Add(name="add")([layers.Dense(4, name="dense")(a), b]))
    assert [l.name for l in model.layers] == ["a", "dense", "b", "add"]
    x = convscope.Input(shape=(4,), name="x")
    A, B, C, d = (layers.Dense(4, name=n) for n in "ABCd")
    model = convscope.Model(x, Add(name="add2")([d(B(A(x))), C(d(x))]))
    assert [l.name for l in model.layers] == ["x", "A", "B", "d", "C", "add2"]


def test_one_layer_giving_two_outputs_gets_two_output_names():
    inner_in = convscope.Input(shape=(3,))
    inner = convscope.Model(inner_in, [layers.Dense(2)(inner_in), layers.Dense(1)(inner_in)], name="inner")
    x = convscope.Input(shape=(3,))
    model = convscope.Model(x, inner(x))
    assert model.output_names == ["inner", "inner_1"]
    model.compile(optimizer="sgd", loss=["mse", "mse"], loss_weights=[1.0, 2.0])
    rng = np.random.default_rng(1)
    xs, y = rng.random((5, 3)), [rng.random((5, 2)), rng.random((5, 1))]
    logs = model.evaluate(xs, y, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "inner_loss", "inner_1_loss"}
    np.testing.assert_allclose(logs["loss"], logs["inner_loss"] + 2 * logs["inner_1_loss"], rtol=1e-6)


def test_a_layer_shared_across_nested_models_cannot_be_saved(tmp_path):
    shared = layers.Dense(2, name="shared")
    inner_in = convscope.Input(shape=(2,))
    inner = convscope.Model(inner_in, shared(inner_in), name="inner")
    x = convscope.Input(shape=(2,))
    model = convscope.Model(x, Add()([shared(x), inner(x)]))
    with pytest.raises(ValueError, match=r'layer "shared" is used both in model "functional(_\d+)?" and in model '
                                         r'"inner".*loading would un-share it'):
        model.save(tmp_path / "shared.convscope")


def test_a_sequential_refusing_a_new_input_shape_keeps_the_one_it_had():
    model = convscope.Sequential([layers.Dense(3, name="r")])
    model.build((None, 5))
    with pytest.raises(ValueError, match=r'Input 0 of layer "r" is incompatible.*\(None, 5\).*\(None, 6\)'):
        model.build((None, 6))
    assert model.input_shape == (None, 5)
    assert model.predict(np.ones((2, 5), "float32"), verbose=0).shape == (2, 3)


def test_a_deep_copy_trains_and_traces_like_the_original():
    """The explorer works on deep copies: nothing in a compiled plan may depend on object identities."""
    import copy

    model = residual_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = data(8)
    model.predict(x, verbose=0)  # plans exist before the copy
    twin = copy.deepcopy(model)
    a, b = model.trace(x, y), twin.trace(x, y)
    for ra, rb in zip(a, b):
        np.testing.assert_array_equal(ra.grad_preactivation, rb.grad_preactivation)
    assert model.evaluate(x, y, verbose=0) == twin.evaluate(x, y, verbose=0)
