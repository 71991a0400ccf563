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
