"""Data as Keras 3 takes it: Python lists, any integer label dtype, a missing channel axis, generators, PyDataset."""

import math
import warnings

import numpy as np
import pytest

import convscope
from convscope import callbacks, layers, optimizers, utils
from convscope.models.data import RAN_OUT


def dense_model(shape=(4,)):
    model = convscope.Sequential([convscope.Input(shape=shape), layers.Flatten(),
                                  layers.Dense(3, activation="softmax")])
    model.set_weights([np.linspace(-0.5, 0.6, 3 * math.prod(shape)).reshape(-1, 3), np.array([0.1, -0.2, 0.05])])
    model.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def arrays(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 4)).astype(np.float32), rng.integers(0, 3, n)


class Batches(utils.PyDataset):
    """``len(x) / batch_size`` batches, counting the epoch hooks it hears."""

    def __init__(self, x, y, batch_size, weights=None, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.weights, self.batch_size = x, y, weights, batch_size
        self.begins = self.ends = 0
        self.read = []

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        self.read.append(index)
        s = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return (self.x[s], self.y[s]) if self.weights is None else (self.x[s], self.y[s], self.weights[s])

    def on_epoch_begin(self):
        self.begins += 1

    def on_epoch_end(self):
        self.ends += 1


def batches_of(x, y, size, weights=None, forever=False):
    while True:
        for i in range(0, len(x), size):
            s = slice(i, i + size)
            yield (x[s], y[s]) if weights is None else (x[s], y[s], weights[s])
        if not forever:
            return


# -- arrays and lists ------------------------------------------------------------------------


def test_nested_lists_train_as_arrays():
    x, y = arrays()
    a, b = dense_model(), dense_model()
    ha = a.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    hb = b.fit(x.tolist(), y.tolist(), batch_size=4, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(hb.history["loss"], ha.history["loss"], rtol=1e-6)
    np.testing.assert_allclose(b.predict(x.tolist(), verbose=0), a.predict(x, verbose=0), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64, np.float32, np.float64])
def test_every_label_dtype_gives_the_same_loss(dtype):
    x, y = arrays()
    reference = dense_model().evaluate(x, y, verbose=0)
    np.testing.assert_allclose(dense_model().evaluate(x, y.astype(dtype), verbose=0), reference, rtol=1e-6)


def test_missing_channel_axis_is_added_as_keras_does():
    """Keras 3's functional models add a trailing axis of size 1 that the data lacks (and drop an extra one)."""
    rng = np.random.default_rng(1)
    x, y = rng.random((6, 5, 5)).astype(np.float32), rng.integers(0, 3, 6)
    model = dense_model((5, 5, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # silently, as in Keras
        np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x[..., None], verbose=0))
        history = model.fit(x, y, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    flat = dense_model((4,))
    x4 = rng.random((6, 4)).astype(np.float32)
    np.testing.assert_array_equal(flat.predict(x4[..., None], verbose=0), flat.predict(x4, verbose=0))


def test_other_shapes_are_still_refused_with_the_shape_received():
    model = dense_model((5, 5, 1))
    with pytest.raises(ValueError, match=r"expected shape=\(None, 5, 5, 1\), found shape=\(6, 5, 4\)"):
        model.predict(np.zeros((6, 5, 4), np.float32), verbose=0)
    with pytest.raises(ValueError, match=r"found shape=\(5, 5, 1\) \(a single sample without the batch axis"):
        model.predict(np.zeros((5, 5, 1), np.float32), verbose=0)


# -- generators ------------------------------------------------------------------------------


def test_generator_with_steps_per_epoch_continues_across_epochs():
    x, y = arrays()
    from_arrays = dense_model().fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    model = dense_model()
    with pytest.warns(UserWarning, match="`shuffle=True` was passed, but will be ignored"):
        history = model.fit(batches_of(x, y, 4, forever=True), steps_per_epoch=3, epochs=3, verbose=0)
    np.testing.assert_allclose(history.history["loss"], from_arrays.history["loss"], rtol=1e-6)


def test_generator_steps_run_on_from_where_the_last_epoch_stopped():
    x, y = arrays()
    model = dense_model()
    seen = []
    stream = ((x[i:i + 1], y[i:i + 1]) for i in range(12) if not seen.append(i))
    model.fit(stream, steps_per_epoch=2, epochs=3, shuffle=False, verbose=0)
    assert seen == [0, 1, 2, 3, 4, 5]


def test_finite_generator_ends_training_when_it_runs_out():
    x, y = arrays()
    model = dense_model()
    with pytest.warns(UserWarning, match="Your input ran out of data; interrupting training"):
        history = model.fit(batches_of(x, y, 4), epochs=3, shuffle=False, verbose=0)
    assert history.epoch == [0]
    assert RAN_OUT.startswith("Your input ran out of data")


def test_generator_sample_weights_and_validation_generator():
    x, y = arrays()
    w = np.linspace(0.0, 2.0, 12).astype(np.float32)
    xv, yv = arrays(6, seed=3)
    a = dense_model()
    ha = a.fit(x, y, sample_weight=w, batch_size=4, epochs=1, shuffle=False, verbose=0, validation_data=(xv, yv))
    b = dense_model()
    with pytest.warns(UserWarning, match="ran out of data"):  # Keras warns at a finite generator's end too
        hb = b.fit(batches_of(x, y, 4, w), epochs=1, shuffle=False, verbose=0,
                   validation_data=batches_of(xv, yv, 32))
    for key in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(hb.history[key], ha.history[key], rtol=1e-6, err_msg=key)


def test_evaluate_and_predict_take_generators():
    x, y = arrays()
    model = dense_model()
    with pytest.warns(UserWarning, match="ran out of data"):  # as Keras, at the end of a finite generator
        evaluated = model.evaluate(batches_of(x, y, 5), verbose=0)
    np.testing.assert_allclose(evaluated, model.evaluate(x, y, verbose=0), rtol=1e-6)
    with pytest.warns(UserWarning, match="ran out of data"):
        predicted = model.predict(batches_of(x, y, 5), verbose=0)
    np.testing.assert_allclose(predicted, model.predict(x, verbose=0), rtol=1e-6)
    assert model.predict(batches_of(x, y, 5, forever=True), steps=2, verbose=0).shape == (10, 3)


@pytest.mark.parametrize("kwargs, message", [
    ({"y": np.zeros(3)}, r"When providing `x` as a generator, `y` should not be passed. Instead, the targets should "
                         r"be included as part of the generator."),
    ({"sample_weight": np.ones(3)}, r"`sample_weight` should not be passed. Instead, the sample weights should be"),
    ({"class_weight": {0: 2.0}}, r"Argument `class_weight` is not supported for Python generator inputs. "
                                 r"Received: class_weight=\{0: 2.0\}"),
])
def test_generator_refuses_what_keras_refuses(kwargs, message):
    x, y = arrays()
    with pytest.raises(ValueError, match=message):
        dense_model().fit(batches_of(x, y, 4), shuffle=False, verbose=0, **kwargs)


def test_generator_errors_name_the_batch():
    with pytest.raises(ValueError, match=r"the generator must yield at least one batch. Received an empty generator"):
        dense_model().fit((b for b in []), shuffle=False, verbose=0)
    x, y = arrays()
    with pytest.raises(ValueError, match=r"the generator must return a tuple, either \(input,\) or \(inputs, targets\) "
                                         r"or \(inputs, targets, sample_weights\). Received: ndarray"):
        dense_model().fit((x for _ in range(2)), shuffle=False, verbose=0)
    with pytest.raises(ValueError, match=r'argument "y" is required'):
        dense_model().fit(((x,) for _ in range(2)), shuffle=False, verbose=0)


# -- PyDataset --------------------------------------------------------------------------------


def test_pydataset_trains_like_its_arrays_and_hears_every_epoch():
    x, y = arrays()
    reference = dense_model().fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    data = Batches(x, y, 4, workers=4, use_multiprocessing=True, max_queue_size=2)
    history = dense_model().fit(data, epochs=3, shuffle=False, verbose=0)
    np.testing.assert_allclose(history.history["loss"], reference.history["loss"], rtol=1e-6)
    assert (data.begins, data.ends) == (3, 3)
    assert data.read == [0, 1, 2] * 3


def test_pydataset_is_shuffled_by_batch_when_fit_shuffles():
    x, y = arrays(40)
    data = Batches(x, y, 4)
    utils.set_random_seed(0)
    dense_model().fit(data, epochs=2, verbose=0)
    assert sorted(data.read[:10]) == list(range(10)) and data.read[:10] != list(range(10))
    assert sorted(data.read[10:]) == list(range(10))


def test_pydataset_with_weights_class_weight_and_as_validation_data():
    x, y = arrays()
    w = np.linspace(0.0, 2.0, 12).astype(np.float32)
    xv, yv = arrays(6, seed=3)
    cw = {0: 0.5, 2: 3.0}
    reference = dense_model().fit(x, y, class_weight=cw, batch_size=4, shuffle=False, verbose=0,
                                  validation_data=(xv, yv))
    history = dense_model().fit(Batches(x, y, 4), class_weight=cw, shuffle=False, verbose=0,
                                validation_data=Batches(xv, yv, 3))
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(history.history[key], reference.history[key], rtol=1e-6, err_msg=key)
    weighted = dense_model().fit(Batches(x, y, 4, weights=w), shuffle=False, verbose=0)
    by_arrays = dense_model().fit(x, y, sample_weight=w, batch_size=4, shuffle=False, verbose=0)
    np.testing.assert_allclose(weighted.history["loss"], by_arrays.history["loss"], rtol=1e-6)


def test_infinite_pydataset_needs_steps_and_evaluate_predict_take_pydatasets():
    class Forever(utils.PyDataset):
        def __init__(self, x, y):
            super().__init__()
            self.x, self.y = x, y

        @property
        def num_batches(self):
            return None

        def __getitem__(self, index):
            i = index % 3
            return self.x[4 * i:4 * i + 4], self.y[4 * i:4 * i + 4]

    x, y = arrays()
    model = dense_model()
    with pytest.warns(UserWarning, match="infinite PyDataset"):
        history = model.fit(Forever(x, y), steps_per_epoch=3, epochs=2, verbose=0)
    assert history.epoch == [0, 1]
    np.testing.assert_allclose(model.evaluate(Batches(x, y, 5), verbose=0), model.evaluate(x, y, verbose=0),
                               rtol=1e-6)
    np.testing.assert_allclose(model.predict(Batches(x, y, 5), verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    assert model.predict(Forever(x, y), steps=2, verbose=0).shape == (8, 3)


def test_pydataset_refusals_and_aliases():
    x, y = arrays()
    assert utils.Sequence is utils.PyDataset
    with pytest.raises(ValueError, match=r"When providing `x` as a PyDataset, `y` should not be passed"):
        dense_model().fit(Batches(x, y, 4), y, verbose=0)

    class Four(Batches):
        def __getitem__(self, index):
            return x, y, None, None

    with pytest.raises(ValueError, match=r"PyDataset.__getitem__\(\) must give a batch as \(inputs,\), \(inputs, "
                                         r"targets\) or \(inputs, targets, sample_weights\); received a tuple of 4"):
        dense_model().fit(Four(x, y, 4), verbose=0)
    with pytest.raises(ValueError, match=r'PyDataset: argument "workers" must be an int >= 0, received -1'):
        Batches(x, y, 4, workers=-1)
    with pytest.raises(TypeError, match=r'argument "use_multiprocessing" must be a bool, received 1'):
        Batches(x, y, 4, use_multiprocessing=1)
    with pytest.raises(NotImplementedError, match=r"must define __getitem__"):
        utils.PyDataset()[0]
    with pytest.raises(ValueError, match=r'"validation_split" is only supported for arrays, received x of type Batches'):
        dense_model().fit(Batches(x, y, 4), validation_split=0.2, verbose=0)


def test_callbacks_see_steps_of_a_pydataset():
    x, y = arrays()
    seen = {}

    class Params(callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.update(self.params)

    dense_model().fit(Batches(x, y, 5), epochs=2, verbose=0, callbacks=[Params()])
    assert seen == {"verbose": 0, "epochs": 2, "steps": 3}


def test_a_finite_validation_generator_is_read_once():
    x, y = arrays()
    model = dense_model()
    with pytest.warns(UserWarning, match="ran out of data"):
        with pytest.raises(ValueError, match=r"the evaluation data gave no batches. A generator is read once: .*"
                                             r"loop forever and give validation_steps, or use a PyDataset"):
            model.fit(x, y, epochs=2, verbose=0, validation_data=batches_of(x, y, 4))
    history = dense_model().fit(x, y, epochs=3, verbose=0, validation_data=batches_of(x, y, 4, forever=True),
                                validation_steps=3)
    assert len(history.history["val_loss"]) == 3
