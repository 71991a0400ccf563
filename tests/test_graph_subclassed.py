"""Subclassed models: layers made in __init__, called in call(); the calls are recorded and replayed."""

import numpy as np
import pytest

import convscope
from convscope import layers, utils
from convscope.layers.merging import Add


class Net(convscope.Model):
    """TensorFlow's "advanced quickstart" model, plus a residual connection and a training-only dropout."""

    def __init__(self):
        super().__init__()
        self.conv1 = layers.Conv2D(4, 3, activation="relu")
        self.conv2 = layers.Conv2D(4, 3, padding="same")
        self.add = Add()
        self.flatten = layers.Flatten()
        self.dropout = layers.Dropout(0.5)
        self.d1 = layers.Dense(8, activation="relu")
        self.d2 = layers.Dense(3)

    def call(self, x, training=False):
        x = self.conv1(x)
        x = self.add([x, self.conv2(x)])
        x = self.flatten(x)
        if training:
            x = self.dropout(x)
        return self.d2(self.d1(x))


@pytest.fixture(autouse=True)
def fresh_names():
    layers.clear_session()
    utils.set_random_seed(0)


def test_subclassed_model_trains_with_compile_and_fit():
    model = Net()
    assert model.name == "net" and not model.built
    assert [l.name for l in model.layers] == ["conv2d", "conv2d_1", "add", "flatten", "dropout", "dense", "dense_1"]
    model.compile(optimizer="adam", loss=convscope.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x, y = rng.random((24, 8, 8, 1)).astype("float32"), rng.integers(0, 3, 24)
    history = model.fit(x, y, epochs=6, batch_size=8, verbose=0)
    assert model.built and model.count_params() > 0
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.predict(x, verbose=0).shape == (24, 3)
    # The inference graph has no dropout; the training graph does.
    assert "dropout" not in [r.name for r in model.trace(x[:2])]
    np.testing.assert_array_equal(model(x[:2]), model.predict(x[:2], verbose=0))


def test_subclassed_gradients_match_the_same_functional_graph():
    convscope.config.set_floatx("float64")
    try:
        model = Net()
        x = np.random.default_rng(1).random((3, 8, 8, 1))
        model.build((None, 8, 8, 1))
        inputs = convscope.Input(shape=(8, 8, 1))
        twin = convscope.Model(inputs, model.call(inputs))  # the same layers, called once more
        records = model.trace(x, np.array([0, 1, 2]))
        twin_records = twin.trace(x, np.array([0, 1, 2]))
        for a, b in zip(records, twin_records):
            assert a.name == b.name
            for key in a.param_grads:
                np.testing.assert_array_equal(a.param_grads[key], b.param_grads[key])
    finally:
        convscope.config.set_floatx("float32")


class Arithmetic(convscope.Model):
    def __init__(self, operation):
        super().__init__()
        self.dense = layers.Dense(2)
        self.operation = operation

    def call(self, x):
        return self.operation(self.dense(x))


@pytest.mark.parametrize("operation, expected", [
    (lambda y: y + 1.0, lambda y: y + 1.0),
    (lambda y: y * y, lambda y: y * y),
    (lambda y: y[:, 0], lambda y: y[:, 0]),
    (lambda y: -abs(y) ** 2 / 3.0, lambda y: -np.abs(y) ** 2 / 3.0),
])
def test_tensor_arithmetic_in_call_is_recorded_as_ops(operation, expected):
    model = Arithmetic(operation)
    x = np.ones((2, 3), "float32")
    out = model.predict(x, verbose=0)
    np.testing.assert_allclose(out, expected(model.dense(x)), rtol=1e-6)


@pytest.mark.parametrize("operation, named", [
    (lambda y: np.tanh(y), r"np.tanh"),
    (lambda y: np.mean(y), r"np.mean"),
    (lambda y: y if y else y, r"bool\(\)"),
    (lambda y: y // 2, r'the "//" operator'),
])
def test_questions_about_values_in_call_are_refused_by_name(operation, named):
    model = Arithmetic(operation)
    with pytest.raises(TypeError, match=named):
        model.predict(np.ones((2, 3), "float32"), verbose=0)
    with pytest.raises(TypeError, match="holds no values yet. Write the computation with convscope.ops"):
        model.predict(np.ones((2, 3), "float32"), verbose=0)


def test_call_returning_a_non_tensor_is_refused():
    model = Arithmetic(lambda y: 3.0)
    with pytest.raises(TypeError, match=r"call\(\) returned float, not the output of a layer call"):
        model.predict(np.ones((2, 3), "float32"), verbose=0)


def test_subclassed_model_cannot_be_saved_to_a_file(tmp_path):
    model = Net()
    model.build((None, 8, 8, 1))
    with pytest.raises(NotImplementedError, match="its call\\(\\) is Python code"):
        model.save(tmp_path / "net.convscope")


def test_a_subclass_called_on_a_dict_receives_the_dict():
    class TwoInputs(convscope.Model):
        def __init__(self):
            super().__init__()
            self.concat = layers.Concatenate()
            self.out = layers.Dense(1)

        def call(self, inputs):
            return self.out(self.concat([inputs["a"], inputs["b"] * 2.0]))

    model = TwoInputs()
    x = {"a": np.ones((3, 2), "float32"), "b": np.ones((3, 1), "float32")}
    out = model(x)
    assert model.input_names == ["a", "b"] and out.shape == (3, 1)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, np.zeros((3, 1)), epochs=1, verbose=0)
    np.testing.assert_array_equal(model.predict({"b": x["b"], "a": x["a"]}, verbose=0), model(x))
