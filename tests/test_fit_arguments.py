"""fit / evaluate / predict arguments held to Keras 3: numbers recorded from real Keras, and the errors.

``fixtures/fit_arguments/fit_arguments.json`` (made by ``make_fit_arguments.py`` beside it, with Keras 3
on the torch backend) trains one tiny model, ``Dense(3, softmax)`` on 4 features from fixed weights, by
SGD(0.1) without shuffling, once per argument: convscope must give the same history, the same number of
batches per epoch, the same final weights and the same ``evaluate`` afterwards.
"""

import json
import pathlib
import warnings

import numpy as np
import pytest

import convscope
from convscope import callbacks, layers, optimizers, regularizers
from convscope.models import data

FIXTURE_PATH = pathlib.Path(__file__).parent / "fixtures" / "fit_arguments" / "fit_arguments.json"
FIXTURE = json.loads(FIXTURE_PATH.read_text())
CASES = {case["name"]: case for case in FIXTURE["cases"]}


class Counter(callbacks.Callback):
    """Batches run per epoch."""

    def on_train_begin(self, logs=None):
        self.per_epoch = []

    def on_epoch_begin(self, epoch, logs=None):
        self.per_epoch.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.per_epoch[-1] += 1


def tiny_model(kernel_l2=None):
    regularizer = regularizers.L2(kernel_l2) if kernel_l2 else None
    dense = layers.Dense(3, activation="softmax", kernel_regularizer=regularizer)
    model = convscope.Sequential([convscope.Input(shape=(4,)), dense])
    model.set_weights([np.array(FIXTURE["kernel"]), np.array(FIXTURE["bias"])])
    model.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def fit_arguments(case):
    kwargs = dict(case["fit"])
    if "class_weight" in case:
        kwargs["class_weight"] = {k: v for k, v in case["class_weight"]}
    if "sample_weight" in kwargs:
        kwargs["sample_weight"] = np.array(kwargs["sample_weight"])
    if "validation_data" in kwargs:
        kwargs["validation_data"] = tuple(np.array(v) for v in kwargs["validation_data"])
    return kwargs


@pytest.mark.parametrize("name", sorted(CASES))
def test_fit_matches_keras(name):
    case = CASES[name]
    model = tiny_model(0.05 if name == "kernel_regularizer" else None)
    counter = Counter()
    x, y = np.array(FIXTURE["x"], np.float32), np.array(FIXTURE["y"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, verbose=0, shuffle=False, callbacks=[counter], **fit_arguments(case))
    assert history.epoch == case["epochs_run"]
    assert counter.per_epoch == case["batches_per_epoch"]
    assert any("ran out of data" in str(w.message) for w in caught) == case["ran_out_warning"]
    assert sorted(history.history) == sorted(case["history"])
    for key, values in case["history"].items():
        np.testing.assert_allclose(history.history[key], values, rtol=2e-5, atol=1e-6, err_msg=key)
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(kernel, case["kernel"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias, case["bias"], rtol=1e-5, atol=1e-6)
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(result) == sorted(case["evaluate"])
    np.testing.assert_allclose([result[k] for k in result], [case["evaluate"][k] for k in result], rtol=2e-5)


def test_evaluate_weighs_samples_and_includes_penalties():
    x, y = np.array(FIXTURE["x"], np.float32), np.array(FIXTURE["y"])
    plain = tiny_model()
    weights = np.arange(10, dtype=np.float32) % 3
    per_sample = -np.log(plain.predict(x, verbose=0)[np.arange(10), y])
    loss = plain.evaluate(x, y, sample_weight=weights, verbose=0)[0]
    np.testing.assert_allclose(loss, (per_sample * weights).sum() / 10, rtol=1e-5)  # sum over the batch / n
    penalised = tiny_model(0.05)
    expected = per_sample.mean() + 0.05 * (np.array(FIXTURE["kernel"]) ** 2).sum()
    np.testing.assert_allclose(penalised.evaluate(x, y, verbose=0)[0], expected, rtol=1e-5)


def test_constraint_projects_after_each_step():
    model = tiny_model()
    kernel = model.layers[0].parameters[0]
    kernel.constraint = lambda w: np.clip(w, -0.1, 0.1)
    x, y = np.array(FIXTURE["x"], np.float32), np.array(FIXTURE["y"])
    model.fit(x, y, batch_size=5, epochs=1, verbose=0)
    assert np.abs(kernel.value).max() <= 0.1 and np.abs(kernel.value).max() == pytest.approx(0.1)


def test_evaluate_returns_in_keras_order_and_steps_limit_the_batches():
    model = tiny_model()
    x, y = np.array(FIXTURE["x"], np.float32), np.array(FIXTURE["y"])
    loss, accuracy = model.evaluate(x, y, verbose=0)
    first_six = model.evaluate(x, y, batch_size=3, steps=2, verbose=0, return_dict=True)
    assert first_six == pytest.approx(model.evaluate(x[:6], y[:6], verbose=0, return_dict=True))
    assert first_six != pytest.approx({"accuracy": accuracy, "loss": loss})


def test_predict_batch_size_and_steps():
    model = tiny_model()
    x = np.array(FIXTURE["x"], np.float32)
    full = model.predict(x, verbose=0)
    np.testing.assert_allclose(model.predict(x, batch_size=3, verbose=0), full, rtol=1e-6)
    assert model.predict(x, batch_size=3, steps=2, verbose=0).shape == (6, 3)


def test_backup_and_restore_contract_sets_the_first_epoch():
    class Resume(callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.model._initial_epoch = 2

    model = tiny_model()
    x, y = np.array(FIXTURE["x"], np.float32), np.array(FIXTURE["y"])
    history = model.fit(x, y, epochs=4, verbose=0, callbacks=[Resume()])
    assert history.epoch == [2, 3]
    assert model._initial_epoch is None
    assert model.fit(x, y, epochs=2, verbose=0).epoch == [0, 1]


def test_shuffle_batch_keeps_batches_and_shuffles_within():
    model = tiny_model()
    seen = []

    class Record(callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(batch)

    x, y = np.array(FIXTURE["x"], np.float32), np.array(FIXTURE["y"])
    model.fit(x, y, batch_size=4, shuffle="batch", verbose=0, callbacks=[Record()])
    assert seen == [0, 1, 2]


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, error, message", [
    ({"batch_size": 0}, ValueError, r'argument "batch_size" must be an int >= 1, received 0'),
    ({"steps_per_epoch": 2.5}, ValueError, r'argument "steps_per_epoch" must be an int >= 1, received 2.5'),
    ({"validation_steps": 0, "validation_split": 0.5}, ValueError,
     r'argument "validation_steps" must be an int >= 1'),
    ({"validation_batch_size": -1}, ValueError,
     r'argument "validation_batch_size" must be an int >= 1, received -1'),
    ({"initial_epoch": -1}, ValueError, r'argument "initial_epoch" must be an int >= 0, received -1'),
    ({"validation_freq": 0}, ValueError,
     r'"validation_freq" must be an int >= 1 .* or a list of epochs .* received 0 of type int'),
    ({"validation_freq": "2"}, ValueError, r'"validation_freq" must be .* received \'2\' of type str'),
    ({"shuffle": "yes"}, ValueError,
     r'argument "shuffle" must be True, False or "batch", received \'yes\''),
    ({"class_weight": {0: 1.0}, "sample_weight": np.ones(10)}, ValueError,
     r'give "sample_weight" or "class_weight", not both'),
    ({"class_weight": [1.0, 2.0]}, TypeError,
     r'"class_weight" must be a dict from class index to weight.* received list'),
    ({"class_weight": {"cat": 1.0}}, TypeError,
     r'"class_weight" must map class indices \(ints\) to weights.* \'cat\': 1.0'),
    ({"sample_weight": np.ones(9)}, ValueError,
     r'argument "sample_weight" must hold one weight per sample, shape \(10,\), received shape \(9,\)'),
    ({"sample_weight": np.ones((10, 2))}, ValueError,
     r'"sample_weight" must hold one weight per sample, shape \(10,\)'),
    ({"sample_weight": np.array([np.nan] * 10)}, ValueError,
     r'argument "sample_weight" contains NaN or infinite values'),
    ({"sample_weight": np.array(["a"] * 10)}, TypeError,
     r'argument "sample_weight" must hold numbers, received dtype <U1'),
    ({"validation_data": (np.zeros((2, 4)),)}, ValueError,
     r'"validation_data" must be a tuple \(x_val, y_val\) or .* of 1 items'),
    ({"validation_data": (np.zeros((2, 4)), np.zeros(2), np.ones(3))},
     ValueError, r'argument "val_sample_weight" must hold one weight per sample, shape \(2,\), received shape \(3,\)'),
    ({"validation_split": 0.95}, ValueError,
     r"validation_split=0.95 leaves no training or no validation samples out of 10"),
])
def test_fit_argument_errors(kwargs, error, message):
    model = tiny_model()
    x, y = np.array(FIXTURE["x"], np.float32), np.array(FIXTURE["y"])
    with pytest.raises(error, match=message):
        model.fit(x, y, verbose=0, **kwargs)


def test_class_weight_is_refused_for_several_outputs():
    inputs = convscope.Input(shape=(4,))
    model = convscope.Model(inputs, [layers.Dense(3, activation="softmax", name="a")(inputs),
                                     layers.Dense(2, activation="softmax", name="b")(inputs)])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match=r'"class_weight" is only supported for models with a single output; '
                                         r'this one has 2 \(a, b\)'):
        model.fit(x, [np.zeros(4, int), np.zeros(4, int)], class_weight={0: 2.0}, verbose=0)


@pytest.mark.parametrize("method, kwargs, message", [
    ("evaluate", {"steps": 0}, r'argument "steps" must be an int >= 1, received 0'),
    ("evaluate", {"batch_size": True}, r'argument "batch_size" must be an int >= 1, received True'),
    ("predict", {"steps": -2}, r'argument "steps" must be an int >= 1, received -2'),
    ("predict", {"verbose": 3}, r'argument "verbose" must be "auto", 0, 1 or 2, received 3'),
])
def test_evaluate_and_predict_argument_errors(method, kwargs, message):
    model = tiny_model()
    x, y = np.array(FIXTURE["x"], np.float32), np.array(FIXTURE["y"])
    args = (x, y) if method == "evaluate" else (x,)
    with pytest.raises(ValueError, match=message):
        getattr(model, method)(*args, **{"verbose": 0, **kwargs})


def two_output_model():
    inputs = convscope.Input(shape=(4,))
    model = convscope.Model(inputs, {"a": layers.Dense(3, activation="softmax", name="a")(inputs),
                                     "b": layers.Dense(2, activation="softmax", name="b")(inputs)})
    model.set_weights([np.linspace(-0.5, 0.6, 12).reshape(4, 3), np.zeros(3), np.linspace(0.3, -0.4, 8).reshape(4, 2),
                       np.zeros(2)])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def test_sample_weight_per_output_or_one_for_all():
    x = np.array(FIXTURE["x"], np.float32)
    ya, yb = np.array(FIXTURE["y"]), np.array(FIXTURE["y"]) % 2
    y = {"a": ya, "b": yb}
    model = two_output_model()
    probs = model.predict(x, verbose=0)
    per_a = -np.log(probs["a"][np.arange(10), ya])
    per_b = -np.log(probs["b"][np.arange(10), yb])
    w = np.linspace(0.0, 2.0, 10).astype(np.float32)
    both = model.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    np.testing.assert_allclose([both["a_loss"], both["b_loss"]], [(per_a * w).mean(), (per_b * w).mean()], rtol=1e-5)
    only_b = model.evaluate(x, y, sample_weight={"b": w}, verbose=0, return_dict=True)
    np.testing.assert_allclose([only_b["a_loss"], only_b["b_loss"]], [per_a.mean(), (per_b * w).mean()], rtol=1e-5)
    as_list = model.evaluate(x, y, sample_weight=[w, None], verbose=0, return_dict=True)
    np.testing.assert_allclose(as_list["loss"], (per_a * w).mean() + per_b.mean(), rtol=1e-5)
    with pytest.raises(ValueError, match=r'argument "sample_weight" names outputs \[\'c\'\]; the model\'s outputs '
                                         r"are \['a', 'b'\]"):
        model.evaluate(x, y, sample_weight={"a": w, "b": w, "c": w}, verbose=0)
    with pytest.raises(ValueError, match=r"""argument "sample_weight\['b'\]" must hold one weight per sample"""):
        model.evaluate(x, y, sample_weight={"b": w[:3]}, verbose=0)


def test_class_weight_reads_labels_as_keras_does():
    """Integer labels, a (n, 1) column of them, or one-hot rows (argmax); classes not listed weigh 1."""
    labels = np.array([0, 2, 1, 2])
    table = {2: 5.0, 0: 0.5}
    expected = [0.5, 5.0, 1.0, 5.0]
    for y in (labels, labels[:, None], labels.astype(np.float32), np.eye(3)[labels]):
        np.testing.assert_array_equal(data.class_weight_to_sample_weight(y, table), expected)
    x = np.array(FIXTURE["x"], np.float32)[:4]
    one_hot = convscope.Sequential([convscope.Input(shape=(4,)), layers.Dense(3, activation="softmax")])
    one_hot.compile(optimizer=optimizers.SGD(0.1), loss="categorical_crossentropy")
    start = one_hot.get_weights()
    by_class = one_hot.fit(x, np.eye(3)[labels], class_weight=table, shuffle=False, verbose=0).history["loss"]
    one_hot.set_weights(start)
    by_sample = one_hot.fit(x, np.eye(3)[labels], sample_weight=np.array(expected), shuffle=False,
                            verbose=0).history["loss"]
    assert by_class == pytest.approx(by_sample, rel=1e-6)
