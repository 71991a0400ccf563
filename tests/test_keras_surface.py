"""Keras's names after ``import convscope as keras``: the parts of issue 12 that the graph engine made simple."""

import numpy as np
import pytest

import convscope as keras
from convscope import layers


@pytest.fixture(autouse=True)
def fresh_names():
    layers.clear_session()


def test_datasets_and_models_are_reachable_as_in_keras(tmp_path):
    (x, y), (x_test, y_test) = keras.datasets.mnist_sample.load_data()
    assert x.shape[1:] == (28, 28) and x.dtype == np.uint8
    model = keras.models.Sequential([keras.Input(shape=(4,)), layers.Dense(2)])
    model.save(tmp_path / "m.convscope")
    loaded = keras.models.load_model(tmp_path / "m.convscope")
    assert isinstance(loaded, keras.models.Sequential) and keras.models.load_model is keras.load_model
    np.testing.assert_array_equal(loaded.predict(np.ones((1, 4)), verbose=0), model.predict(np.ones((1, 4)), verbose=0))
    assert keras.models.Model is keras.Model


def test_the_first_layer_may_declare_the_input_shape_as_in_tensorflow_tutorials():
    model = keras.Sequential([
        layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dense(10, activation="softmax"),
    ])
    assert model.built and model.input_shape == (None, 28, 28, 1) and model.count_params() == 320 + 5408 * 10 + 10
    dense = keras.Sequential([layers.Dense(64, activation="relu", input_dim=784), layers.Dense(10)])
    assert dense.input_shape == (None, 784) and dense.count_params() == 784 * 64 + 64 + 64 * 10 + 10
    assert keras.Sequential([layers.Dense(3, input_shape=[5])]).output_shape == (None, 3)


@pytest.mark.parametrize("kwargs, message", [
    (dict(input_shape=(4,), input_dim=4), 'give "input_shape" or "input_dim", not both'),
    (dict(input_shape=(0, 3)), r'"input_shape" / "input_dim" must be positive int sizes \(no batch axis\), '
                               r"received \(0, 3\)"),
    (dict(input_dim="784"), r"received \('784',\)"),
])
def test_bad_declared_input_shapes_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=rf"Dense: .*{message}"):
        layers.Dense(2, **kwargs)


def test_the_namespace_holds_what_learners_programs_reach_for():
    for path in ["datasets.mnist.load_data", "layers.Layer", "layers.Lambda", "layers.RandomFlip", "layers.Resizing",
                 "models.Sequential", "models.Model", "models.load_model", "utils.to_categorical", "utils.PyDataset",
                 "utils.Sequence", "utils.set_random_seed", "callbacks.ReduceLROnPlateau", "callbacks.TensorBoard",
                 "callbacks.CSVLogger", "callbacks.LambdaCallback", "callbacks.BackupAndRestore",
                 "callbacks.LearningRateScheduler", "optimizers.schedules.ExponentialDecay", "optimizers.Nadam",
                 "losses.sparse_categorical_crossentropy", "metrics.sparse_categorical_accuracy", "regularizers.l2",
                 "constraints.MaxNorm", "initializers.HeNormal", "activations.relu", "ops.matmul", "ops.ones",
                 "config.floatx", "config.disable_traceback_filtering", "backend.clear_session", "Input", "Model",
                 "Sequential"]:
        obj = keras
        for part in path.split("."):
            obj = getattr(obj, part)
        assert callable(obj), path
    from convscope import ops

    assert ops.__name__ == "convscope.ops" and hasattr(ops, "where")  # Keras's ops, not the internal math


def test_a_functional_model_is_a_functional_as_in_keras():
    x = keras.Input((3,))
    model = keras.Model(x, layers.Dense(2)(x))
    assert type(model).__name__ == "Functional" and isinstance(model, keras.Model) and model.name == "functional"
    lines = []
    keras.Sequential([keras.Input((3,)), model]).summary(print_fn=lines.append)
    assert "functional (Functional)" in "\n".join(lines)


def test_eager_results_answer_numpy_as_keras_tensors_do():
    model = keras.Sequential([keras.Input((3,)), layers.Dense(2)])
    out = model(np.ones((1, 3)))
    np.testing.assert_array_equal(out.numpy(), model.predict(np.ones((1, 3)), verbose=0))
    assert type(out.numpy()) is np.ndarray
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(np.array([1]), out)
    assert float(loss.numpy()) == pytest.approx(float(loss)) and loss.numpy().shape == ()
    assert keras.ops.exp(np.zeros(2)).numpy().tolist() == [1.0, 1.0]


class MyDense(layers.Layer):
    def __init__(self, units=2):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="ones")

    def call(self, inputs):
        return keras.ops.matmul(inputs, self.w)

    def get_config(self):
        return {"units": self.units}


def test_a_layer_of_your_own_round_trips_through_get_config_with_custom_objects(tmp_path):
    x = keras.Input((4,))
    model = keras.Model(x, MyDense(3)(x))
    config = model.get_config()
    with pytest.raises(ValueError, match=r"Unknown layer type 'MyDense'.*pass custom_objects=\{name: class\}"):
        keras.Model.from_config(config)
    rebuilt = keras.Model.from_config(config, custom_objects={"MyDense": MyDense})
    assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in model.layers]
    np.testing.assert_array_equal(rebuilt.predict(np.ones((2, 4)), verbose=0), np.full((2, 3), 4.0))
    with pytest.raises(TypeError, match=r'"my_dense" is of your own class MyDense, which a model file cannot name'):
        model.save(tmp_path / "m.convscope")
    model.save_weights(tmp_path / "m.weights.h5")  # the weights alone are fine
    rebuilt.load_weights(tmp_path / "m.weights.h5")


def test_added_losses_train_and_are_listed():
    class ActivityLoss(layers.Layer):
        def call(self, inputs):
            self.add_loss(0.5 * keras.ops.sum(keras.ops.square(inputs)))
            return inputs

    reg = ActivityLoss()
    model = keras.Sequential([keras.Input((3,)), layers.Dense(2, kernel_initializer="ones"), reg])
    assert reg.losses == []
    x = np.ones((4, 3), "float32")
    out = model(x)
    assert reg.losses == [pytest.approx(0.5 * float(np.sum(out ** 2)))]
    model.compile(optimizer="sgd")  # no loss: the added one is the whole objective, as in Keras
    before = float(np.abs(model.predict(x, verbose=0)).sum())
    model.fit(x, np.zeros((4, 2)), epochs=3, verbose=0)
    assert float(np.abs(model.predict(x, verbose=0)).sum()) < before
    reg(x)  # on arrays, call() runs at once and add_loss records the number
    assert reg.losses == [pytest.approx(0.5 * float(np.sum(x ** 2)))]
    with pytest.raises(ValueError, match=r"add_loss\(\) of a symbolic tensor works inside call\(\)"):
        reg.add_loss(keras.ops.sum(keras.Input((2,))))


def test_a_layer_of_your_own_takes_several_positional_inputs():
    class Endpoint(layers.Layer):
        def call(self, targets, logits):
            self.add_loss(keras.ops.mean(keras.ops.square(targets - logits)))
            return keras.ops.softmax(logits)

    inputs, targets = keras.Input((3,), name="inputs"), keras.Input((2,), name="targets")
    model = keras.Model([inputs, targets], Endpoint()(targets, layers.Dense(2)(inputs)))
    model.compile(optimizer="adam")
    history = model.fit([np.ones((4, 3)), np.zeros((4, 2))], epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and history.history["loss"][1] < history.history["loss"][0]
    with pytest.raises(TypeError, match=r'Layer "dense_1" takes one input .* received 2 positional arguments'):
        layers.Dense(2)(inputs, targets)


def test_a_layer_of_your_own_runs_eagerly_on_arrays_and_may_update_its_weights():
    """keras.io's ComputeSum: a non-trainable weight updated with assign_add in a call on arrays."""
    class ComputeSum(layers.Layer):
        def __init__(self, input_dim):
            super().__init__()
            self.total = self.add_weight(initializer="zeros", shape=(input_dim,), trainable=False)

        def call(self, inputs):
            if float(keras.ops.sum(inputs)) > 0:  # eager: Python may look at the values
                self.total.assign_add(keras.ops.sum(inputs, axis=0))
            return self.total

    my_sum = ComputeSum(2)
    x = keras.ops.ones((2, 2))
    assert my_sum(x).numpy().tolist() == [2.0, 2.0]
    assert my_sum(x).numpy().tolist() == [4.0, 4.0]
    assert len(my_sum.weights) == 1 and len(my_sum.non_trainable_weights) == 1 and my_sum.trainable_weights == []
    with pytest.raises(TypeError, match=r"float\(\) on the output of layer \"sum.*holds no values yet"):
        keras.Sequential([keras.Input((2,)), ComputeSum(2)])  # in a graph, the values are not there yet

    class Accumulate(layers.Layer):
        def build(self, input_shape):
            self.total = self.add_weight(shape=(input_shape[-1],), initializer="zeros", trainable=False)

        def call(self, inputs):
            self.total.assign_add(keras.ops.sum(inputs, axis=0))
            return inputs

    with pytest.raises(TypeError, match=r"assign_add\(\) of a symbolic tensor: inside a model's graph"):
        keras.Sequential([keras.Input((2,)), Accumulate()])


def test_to_categorical_and_set_random_seed_follow_keras():
    np.testing.assert_array_equal(keras.utils.to_categorical(np.array([[1.0], [0.0]]), 3), [[0, 1, 0], [1, 0, 0]])
    assert keras.utils.to_categorical(np.array([[0, 2], [1, 1]])).shape == (2, 2, 3)
    keras.utils.set_random_seed(5)
    first = np.random.random(3)
    keras.utils.set_random_seed(5)
    np.testing.assert_array_equal(np.random.random(3), first)  # a program's own np.random data, as Keras seeds it


def test_count_params_of_an_unbuilt_subclass_is_refused_as_in_keras():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    with pytest.raises(ValueError, match=r"count_params on .* not built yet"):
        Net().count_params()


def test_layers_appended_to_a_list_later_are_tracked_and_trained():
    class Stack(keras.Model):
        def __init__(self):
            super().__init__()
            self.blocks = []
            for _ in range(2):
                self.blocks.append(layers.Dense(4, activation="relu"))
            self.heads = {"out": layers.Dense(1)}

        def call(self, x):
            for block in self.blocks:
                x = block(x)
            return self.heads["out"](x)

    model = Stack()
    model(np.ones((2, 3)))
    assert len(model.layers) == 3 and model.count_params() == (3 * 4 + 4) + (4 * 4 + 4) + (4 + 1)
    model.compile(optimizer="sgd", loss="mse")
    before = model.blocks[0].kernel.numpy()
    model.fit(np.random.default_rng(0).random((8, 3)), np.ones((8, 1)), verbose=0)
    assert not np.array_equal(model.blocks[0].kernel.numpy(), before)


def test_a_subclassed_models_own_build_and_weights_train():
    class Scaled(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(2)

        def build(self, input_shape):
            self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")

        def call(self, x):
            return self.dense(x * self.scale)

    model = Scaled()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0)
    assert [p.name.rsplit("/", 1)[-1] for p in model.weights] == ["scale", "kernel", "bias"]
    assert model.count_params() == 3 + 3 * 2 + 2 and not np.array_equal(model.scale.numpy(), np.ones(3))


def test_numpy_arrays_times_a_weight_stay_in_the_graph():
    mask = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])

    class Masked(layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(3, 2), initializer="ones")

        def call(self, x):
            return keras.ops.matmul(x, mask * self.w)  # ndarray * Parameter: a recorded multiply, not a constant

    layer = Masked()
    model = keras.Sequential([keras.Input((3,)), layer])
    layer.w.assign(np.zeros((3, 2)))
    np.testing.assert_array_equal(model.predict(np.ones((1, 3)), verbose=0), [[0.0, 0.0]])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0)
    assert np.abs(layer.w.numpy() * mask).sum() > 0 and np.all(layer.w.numpy()[mask == 0] == 0)
    assert np.exp(layer.w).shape == (3, 2)  # NumPy functions of a weight still compute on its value


def test_random_ops_follow_reseeding_and_int_seeds_repeat():
    x = keras.Input((2,))
    noisy = keras.Model(x, x + keras.random.normal((keras.ops.shape(x)[0], 2)))
    fixed = keras.Model(x, x + keras.random.normal((keras.ops.shape(x)[0], 2), seed=7))
    zeros = np.zeros((1, 2))
    keras.utils.set_random_seed(3)
    a = noisy.predict(zeros, verbose=0)
    keras.utils.set_random_seed(3)
    np.testing.assert_array_equal(noisy.predict(zeros, verbose=0), a)  # traced before, reseeded after: same draw
    np.testing.assert_array_equal(fixed.predict(zeros, verbose=0), fixed.predict(zeros, verbose=0))


def test_model_losses_list_each_layers_penalties():
    dense = layers.Dense(2, kernel_regularizer=keras.regularizers.L2(0.1), activity_regularizer="l1")
    model = keras.Sequential([keras.Input((3,)), dense])
    out = model(np.ones((2, 3)))
    dense(np.ones((2, 3)))
    expected = [0.01 * float(np.abs(out.numpy()).sum()) / 2, 0.1 * float(np.sum(dense.kernel.numpy() ** 2))]
    assert model.losses == pytest.approx(expected)


def test_numpy_scalars_keep_a_float32_graph_float32():
    x = keras.Input((3,))
    y = layers.Dense(2)(x) * np.float64(0.5) + np.sqrt(4.0)
    assert y.dtype == "float32"
    assert keras.Model(x, y).predict(np.ones((1, 3)), verbose=0).dtype == np.float32


def test_a_lambda_is_shared_across_input_shapes():
    square = layers.Lambda(keras.ops.square)
    a, b = keras.Input((4,)), keras.Input((6,))
    model = keras.Model([a, b], layers.Concatenate()([square(a), square(b)]))
    assert model.output_shape == (None, 10)
    np.testing.assert_array_equal(model.predict([np.full((1, 4), 2.0), np.full((1, 6), 3.0)], verbose=0),
                                  [[4.0] * 4 + [9.0] * 6])


def test_a_keras_file_names_convscopes_loss_functions_as_keras_does(tmp_path):
    """Keras writes its own functions with module "builtins": so does convscope, and Keras loads the file compiled."""
    import json
    import zipfile

    x = keras.Input((3,))
    model = keras.Model(x, layers.Dense(2, activation="softmax")(x))
    model.compile(optimizer="adam", loss=keras.losses.sparse_categorical_crossentropy,
                  metrics=[keras.metrics.sparse_categorical_accuracy])
    model.save(tmp_path / "m.keras")
    compile_config = json.loads(zipfile.ZipFile(tmp_path / "m.keras").read("config.json"))["compile_config"]
    assert compile_config["loss"] == {"module": "builtins", "class_name": "function",
                                      "config": "sparse_categorical_crossentropy", "registered_name": "function"}
    assert compile_config["metrics"] == [{"module": "builtins", "class_name": "function",
                                          "config": "sparse_categorical_accuracy", "registered_name": "function"}]
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.evaluate(np.ones((2, 3)), np.array([0, 1]), verbose=0) == model.evaluate(
        np.ones((2, 3)), np.array([0, 1]), verbose=0)
