"""Mistakes users make with Sequential, each refused with a message that says what was expected and what was received."""

from __future__ import annotations

import numpy as np
import pytest

import convscope
from convscope import backend, layers, utils


@pytest.fixture(autouse=True)
def _fresh_names():
    layers.clear_session()
    state = backend.get_rng_state()
    utils.set_random_seed(0)
    yield
    backend.set_rng_state(state)


def small_convnet(loss="categorical_crossentropy", compile=True):
    model = convscope.Sequential([
        convscope.Input(shape=(28, 28, 1)),
        layers.Conv2D(4, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(10, activation="softmax"),
    ])
    if compile:
        model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return model


@pytest.fixture
def data():
    x = np.random.default_rng(0).random((6, 28, 28, 1), dtype=np.float32)
    labels = np.array([0, 1, 2, 3, 4, 9])
    return x, labels, utils.to_categorical(labels, 10)


# -- the shape of x ---------------------------------------------------------------
@pytest.mark.parametrize("method", ["predict", "fit", "evaluate"])
def test_unbatched_image_suggests_adding_the_batch_axis(data, method):
    x, _, y = data
    model = small_convnet()
    args = (x[0],) if method == "predict" else (x[0], y[:1])
    with pytest.raises(ValueError) as info:
        getattr(model, method)(*args, verbose=0)
    message = str(info.value)
    assert "expected shape=(None, 28, 28, 1)" in message
    assert "found shape=(28, 28, 1)" in message
    assert "x[None]" in message


def test_channels_first_data_mentions_nhwc(data):
    x, _, y = data
    model = small_convnet()
    nchw = x.transpose(0, 3, 1, 2)
    with pytest.raises(ValueError, match=r"expected shape=\(None, 28, 28, 1\), found shape=\(6, 1, 28, 28\).*NHWC"):
        model.predict(nchw, verbose=0)
    with pytest.raises(ValueError, match=r"NCHW.*NHWC.*transpose\(0, 2, 3, 1\)"):
        model.fit(nchw, y, verbose=0)


def test_wrong_channel_count(data):
    model = small_convnet()
    rgb = np.zeros((2, 28, 28, 3), np.float32)
    with pytest.raises(ValueError, match=r'layer "sequential".*expected shape=\(None, 28, 28, 1\), found shape=\(2, 28, 28, 3\)'):
        model.predict(rgb, verbose=0)


def test_wrong_image_size(data):
    model = small_convnet()
    with pytest.raises(ValueError, match=r"expected shape=\(None, 28, 28, 1\), found shape=\(2, 32, 32, 1\)"):
        model.predict(np.zeros((2, 32, 32, 1), np.float32), verbose=0)


def test_missing_channel_axis_is_added_as_keras_does(data):
    """Keras 3 adds a missing trailing axis of size 1: (N, 28, 28) runs on a (28, 28, 1) input."""
    model = small_convnet()
    x = np.random.default_rng(0).random((2, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x[..., None], verbose=0))


def test_a_wrong_size_without_the_channel_axis(data):
    model = small_convnet()
    with pytest.raises(ValueError, match=r"expected shape=\(None, 28, 28, 1\), found shape=\(2, 28, 27\)"):
        model.predict(np.zeros((2, 28, 27), np.float32), verbose=0)


def test_non_numeric_x():
    model = small_convnet()
    with pytest.raises(TypeError, match=r'argument "x" must be numeric, received dtype <U'):
        model.predict(np.full((1, 28, 28, 1), "a"), verbose=0)


def test_x_none():
    with pytest.raises(ValueError, match='argument "x" is required, received None'):
        small_convnet().predict(None)


# -- labels -------------------------------------------------------------------------
@pytest.mark.parametrize("bad, shown", [(10, r"\[0, 10\]"), (-1, r"\[-1, 4\]")])
def test_sparse_labels_out_of_range(data, bad, shown):
    x, labels, _ = data
    model = small_convnet(loss="sparse_categorical_crossentropy")
    labels = labels.copy()
    labels[-1] = bad
    before = model.get_weights()
    with pytest.raises(ValueError, match=r'argument "y".*expected labels in \[0, 10\), received values in ' + shown):
        model.fit(x, labels, verbose=0)
    # Refused before any training step.
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    with pytest.raises(ValueError, match=r"expected labels in \[0, 10\)"):
        model.evaluate(x, labels, verbose=0)


def test_fractional_sparse_labels(data):
    x, labels, _ = data
    model = small_convnet(loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"expected integer class labels, received non-integer values such as 0\.5"):
        model.fit(x, labels + 0.5, verbose=0)


def test_one_hot_width_differs_from_the_outputs(data):
    x, labels, _ = data
    model = small_convnet()
    y5 = np.eye(5, dtype=np.float32)[labels % 5]
    with pytest.raises(ValueError, match=r'argument "y".*expected y_true of shape \(6, 10\).*received shape \(6, 5\)'):
        model.fit(x, y5, verbose=0)


def test_integer_labels_with_categorical_loss_point_to_sparse(data):
    x, labels, _ = data
    model = small_convnet()
    with pytest.raises(ValueError, match=r"received shape \(6,\); for integer labels use SparseCategoricalCrossentropy"):
        model.fit(x, labels, verbose=0)


def test_column_of_floats_never_broadcasts_against_ten_outputs(data):
    """A (n, 1) target against (n, 10) outputs would broadcast in NumPy; it must be refused."""
    x, labels, _ = data
    model = small_convnet()
    column = labels.astype(np.float32)[:, None]
    with pytest.raises(ValueError, match=r"expected y_true of shape \(6, 10\).*received shape \(6, 1\)"):
        model.fit(x, column, verbose=0)
    with pytest.raises(ValueError, match=r"received shape \(6, 1\)"):
        model.evaluate(x, column, verbose=0)


def test_regression_targets_never_broadcast(data):
    x, labels, _ = data
    model = small_convnet(loss="mse", compile=False)
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match=r"expected y_true of shape \(6, 10\) like y_pred, received shape \(6,\)"):
        model.fit(x, labels.astype(np.float32), verbose=0)
    with pytest.raises(ValueError, match=r"received shape \(6, 1, 10\)"):
        model.fit(x, np.zeros((6, 1, 10), np.float32), verbose=0)


def test_x_and_y_of_different_lengths(data):
    x, _, y = data
    model = small_convnet()
    with pytest.raises(ValueError, match=r'"x" and "y" must have the same number of samples, received x: 6 and y: 5'):
        model.fit(x, y[:5], verbose=0)
    with pytest.raises(ValueError, match=r"received x: 6 and y: 5"):
        model.evaluate(x, y[:5], verbose=0)


def test_validation_data_is_checked_like_training_data(data):
    x, _, y = data
    model = small_convnet()
    with pytest.raises(ValueError, match=r'"x_val" and "y_val" must have the same number of samples, received x_val: 6 and y_val: 4'):
        model.fit(x, y, validation_data=(x, y[:4]), verbose=0)
    with pytest.raises(ValueError, match=r'argument "y_val"'):
        model.fit(x, y, validation_data=(x, y[:, :5]), verbose=0)
    with pytest.raises(ValueError, match=r'"validation_data" must be a tuple \(x_val, y_val\)'):
        model.fit(x, y, validation_data=x, verbose=0)


def test_missing_y(data):
    x, _, _ = data
    with pytest.raises(ValueError, match='argument "y" is required, received None'):
        small_convnet().fit(x, verbose=0)


# -- empty and non-finite data --------------------------------------------------------
@pytest.mark.parametrize("method", ["predict", "fit", "evaluate"])
def test_empty_data(data, method):
    x, _, y = data
    model = small_convnet()
    args = (x[:0],) if method == "predict" else (x[:0], y[:0])
    with pytest.raises(ValueError, match=r'argument "x" is empty \(shape \(0, 28, 28, 1\)\); expected at least one sample'):
        getattr(model, method)(*args, verbose=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_x_names_the_sample(data, bad):
    x, _, y = data
    x = x.copy()
    x[3, 10, 10, 0] = bad
    model = small_convnet()
    with pytest.raises(ValueError, match=r'argument "x" contains NaN or infinite values \(first in sample 3\)'):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match=r"first in sample 3"):
        model.predict(x, verbose=0)


def test_non_finite_validation_x(data):
    x, _, y = data
    xv = x.copy()
    xv[1, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r'argument "x_val" contains NaN or infinite values \(first in sample 1\)'):
        small_convnet().fit(x, y, validation_data=(xv, y), verbose=0)


# -- fit / evaluate / predict arguments ------------------------------------------------
@pytest.mark.parametrize("value", [0, -1, 2.5, True, "32"])
def test_batch_size_must_be_a_positive_int(data, value):
    x, _, y = data
    model = small_convnet()
    shown = repr(value).replace("(", r"\(").replace(".", r"\.")
    with pytest.raises(ValueError, match=rf'argument "batch_size" must be an int >= 1, received {shown}'):
        model.fit(x, y, batch_size=value, verbose=0)
    with pytest.raises(ValueError, match=r'"batch_size" must be an int >= 1'):
        model.predict(x, batch_size=value, verbose=0)
    with pytest.raises(ValueError, match=r'"batch_size" must be an int >= 1'):
        model.evaluate(x, y, batch_size=value, verbose=0)


@pytest.mark.parametrize("value", [-1, 1.0, None])
def test_epochs_must_be_a_non_negative_int(data, value):
    x, _, y = data
    with pytest.raises(ValueError, match=rf'argument "epochs" must be an int >= 0, received {value!r}'):
        small_convnet().fit(x, y, epochs=value, verbose=0)


@pytest.mark.parametrize("value", [1.0, 1, -0.1, 2, "0.2", True])
def test_validation_split_must_be_in_zero_one(data, value):
    x, _, y = data
    with pytest.raises(ValueError, match=r'argument "validation_split" must be a number in \[0, 1\), received '):
        small_convnet().fit(x, y, validation_split=value, verbose=0)


def test_validation_split_that_leaves_no_validation_samples(data):
    x, _, y = data
    with pytest.raises(ValueError, match=r"validation_split=0\.5 leaves no training or no validation samples out of 1"):
        small_convnet().fit(x[:1], y[:1], validation_split=0.5, verbose=0)


def test_verbose_must_be_known(data):
    x, _, y = data
    with pytest.raises(ValueError, match=r'argument "verbose" must be "auto", 0, 1 or 2, received 3'):
        small_convnet().fit(x, y, verbose=3)


def test_callbacks_must_be_callbacks(data):
    x, _, y = data
    with pytest.raises(TypeError, match=r"callbacks must be convscope.callbacks.Callback objects \(or lists of them\), "
                                        r"received an object of type function"):
        small_convnet().fit(x, y, verbose=0, callbacks=[lambda: None])


@pytest.mark.parametrize("method", ["fit", "evaluate"])
def test_fit_and_evaluate_before_compile(data, method):
    x, _, y = data
    model = small_convnet(compile=False)
    with pytest.raises(ValueError, match=rf"you must call compile\(\) before {method}\(\).*model\.compile\(optimizer="):
        getattr(model, method)(x, y, verbose=0)


def test_predict_works_before_compile(data):
    x, _, _ = data
    assert small_convnet(compile=False).predict(x, verbose=0).shape == (6, 10)


def test_fit_without_any_loss_says_so(data):
    """compile() without a loss is allowed (a layer may add_loss); fit with nothing to minimize is refused."""
    x, _, y = data
    model = small_convnet(compile=False)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r'no loss to compute\. Give compile\(\) a loss, e\.g\. '
                                         r'loss="sparse_categorical_crossentropy", or add one in a layer with add_loss'):
        model.fit(x, y, verbose=0)


# -- unknown names ------------------------------------------------------------------------
def test_unknown_activation():
    with pytest.raises(ValueError, match=r"""Conv2D "conv2d": argument "activation".*expected one of \[.*'relu'.*\], received 'relux'"""):
        layers.Conv2D(4, 3, activation="relux")
    with pytest.raises(ValueError, match=r'Dense "dense": argument "activation".*received \'softmaxx\''):
        layers.Dense(4, activation="softmaxx")
    with pytest.raises(TypeError, match=r'argument "activation".*received 3'):
        layers.Dense(4, activation=3)


def test_unknown_initializer():
    with pytest.raises(ValueError, match=r"""Conv2D "conv2d": argument "kernel_initializer".*expected one of \[.*'glorot_uniform'.*\], received 'glorot'"""):
        layers.Conv2D(4, 3, kernel_initializer="glorot")
    with pytest.raises(ValueError, match=r'Dense "dense": argument "bias_initializer".*received \'zeroes\''):
        layers.Dense(4, bias_initializer="zeroes")


def test_unknown_loss():
    with pytest.raises(ValueError, match=r"Unknown loss 'foo'; known: \[.*'categorical_crossentropy'.*\]"):
        small_convnet(compile=False).compile(optimizer="adam", loss="foo")
    with pytest.raises(TypeError, match=r"losses\.get: expected a loss name.*received 3"):
        small_convnet(compile=False).compile(optimizer="adam", loss=3)


def test_unknown_optimizer():
    with pytest.raises(ValueError, match=r"Unknown optimizer 'adamm'; known: \[.*'adam'.*\]"):
        small_convnet(compile=False).compile(optimizer="adamm", loss="mse")


def test_unknown_metric():
    with pytest.raises(ValueError, match=r"Unknown metric 'acuracy'"):
        small_convnet(compile=False).compile(optimizer="adam", loss="mse", metrics=["acuracy"])


def test_accuracy_beside_another_loss_is_chosen_from_the_shapes_as_keras_3_does(data):
    x, _, y = data  # one-hot targets of the 10-way softmax: categorical accuracy
    model = small_convnet(compile=False)
    model.compile(optimizer="adam", loss="mse", metrics=["accuracy"])
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert logs["accuracy"] == pytest.approx(np.mean(model.predict(x, verbose=0).argmax(-1) == y.argmax(-1)))


def test_unknown_layer_class():
    with pytest.raises(ValueError, match=r"Unknown layer type 'Lambda'; supported: .*Conv2D.*Dense"):
        layers.deserialize({"class_name": "Lambda", "config": {"function": "os.system"}})
    with pytest.raises(ValueError, match=r"Unknown layer type None"):
        layers.deserialize(["Dense"])
    with pytest.raises(TypeError, match=r'Layer "Dense": config must be a dict, received list'):
        layers.deserialize({"class_name": "Dense", "config": [1]})


def test_from_config_with_an_unknown_layer_argument():
    config = convscope.Sequential([convscope.Input(shape=(4,)), layers.Dense(2)]).get_config()
    config["layers"][0]["config"]["untis"] = 3
    with pytest.raises(TypeError, match="untis"):
        convscope.Sequential.from_config(config)


# -- structure ------------------------------------------------------------------------------
def test_input_only_first():
    model = convscope.Sequential([layers.Dense(2)])
    with pytest.raises(ValueError, match="an Input can only be the first element"):
        model.add(convscope.Input(shape=(3,)))


def test_adding_a_non_layer():
    with pytest.raises(TypeError, match=r"expected a convscope layer, received str"):
        convscope.Sequential(["dense"])


def test_layer_that_does_not_fit_the_input():
    with pytest.raises(ValueError, match=r'Input 0 of layer "conv2d" is incompatible with the layer: expected ndim=4.*found shape=\(None, 28, 28\)'):
        convscope.Sequential([convscope.Input(shape=(28, 28)), layers.Conv2D(4, 3)])
    with pytest.raises(ValueError, match=r"too small for kernel_size=\(5, 5\)"):
        convscope.Sequential([convscope.Input(shape=(3, 3, 1)), layers.Conv2D(4, 5)])
