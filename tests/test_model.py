"""Sequential end to end: summary, fit / evaluate / predict, determinism, trace, float64, config round trip."""

from __future__ import annotations

import numpy as np
import pytest

import convscope
from convscope import backend, layers, utils
from convscope.models import LayerTrace, Sequential


@pytest.fixture(autouse=True)
def _fresh_state():
    """Automatic names from zero, float32, and the global generator put back afterwards."""
    layers.clear_session()
    floatx, rng_state = backend.floatx(), backend.get_rng_state()
    yield
    backend.set_floatx(floatx)
    backend.set_rng_state(rng_state)


def mnist_convnet():
    """The Keras example "Simple MNIST convnet"."""
    return convscope.Sequential([
        convscope.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ])


def toy_data(n=96, seed=0):
    """8x8 images whose left or right half is bright: label 0 = left, 1 = right."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.random((n, 8, 8, 1), dtype=np.float32) * 0.3
    x[y == 0, :, :4, 0] += 0.7
    x[y == 1, :, 4:, 0] += 0.7
    return x, y


def toy_model(dropout=0.0, loss="categorical_crossentropy", optimizer=None):
    model = convscope.Sequential([
        convscope.Input(shape=(8, 8, 1)),
        layers.Conv2D(4, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dropout(dropout),
        layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer=optimizer or convscope.optimizers.Adam(learning_rate=0.02), loss=loss, metrics=["accuracy"])
    return model


def summary_text(model) -> str:
    lines = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


# -- structure and summary ----------------------------------------------------
def test_mnist_convnet_summary_matches_keras():
    model = mnist_convnet()
    text = summary_text(model)
    assert "Total params: 34,826" in text
    assert "Trainable params: 34,826" in text
    assert "Non-trainable params: 0" in text
    assert model.count_params() == 34826
    rows = [line for line in text.splitlines() if line.startswith("│")]
    cells = [[c.strip() for c in row.strip("│").split("│")] for row in rows]
    assert cells == [
        ["conv2d (Conv2D)", "(None, 26, 26, 32)", "320"],
        ["max_pooling2d (MaxPooling2D)", "(None, 13, 13, 32)", "0"],
        ["conv2d_1 (Conv2D)", "(None, 11, 11, 64)", "18,496"],
        ["max_pooling2d_1 (MaxPooling2D)", "(None, 5, 5, 64)", "0"],
        ["flatten (Flatten)", "(None, 1600)", "0"],
        ["dropout (Dropout)", "(None, 1600)", "0"],
        ["dense (Dense)", "(None, 10)", "16,010"],
    ]
    assert [l.name for l in model.layers] == [
        "conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "flatten", "dropout", "dense"]
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 10)


def test_summary_counts_non_trainable_batch_norm_statistics():
    model = convscope.Sequential([convscope.Input(shape=(4, 4, 3)), layers.BatchNormalization(), layers.Flatten(),
                                  layers.Dense(2)])
    text = summary_text(model)
    # gamma, beta trainable (6); moving mean / variance not (6); dense 48 * 2 + 2 = 98.
    assert "Total params: 110" in text
    assert "Trainable params: 104" in text
    assert "Non-trainable params: 6" in text


def test_summary_of_unbuilt_model_raises():
    model = convscope.Sequential([layers.Dense(3)])
    with pytest.raises(ValueError, match="has not been built"):
        model.summary(print_fn=lambda s: None)


def test_model_without_input_builds_on_first_data():
    model = convscope.Sequential([layers.Conv2D(2, 3), layers.Flatten(), layers.Dense(3)])
    assert not model.built
    out = model.predict(np.zeros((2, 5, 5, 1), np.float32), verbose=0)
    assert out.shape == (2, 3) and model.input_shape == (None, 5, 5, 1)


# -- fit ------------------------------------------------------------------------
def test_fit_learns_a_separable_toy_problem():
    utils.set_random_seed(0)
    x, y = toy_data()
    model = toy_model()
    history = model.fit(x, utils.to_categorical(y, 2), batch_size=16, epochs=15, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] >= 0.95
    x_test, y_test = toy_data(64, seed=1)
    loss, acc = model.evaluate(x_test, utils.to_categorical(y_test, 2), verbose=0)
    assert acc >= 0.95 and loss < 0.3
    assert (model.predict(x_test, verbose=0).argmax(axis=1) == y_test).mean() == acc


def test_fit_with_sparse_labels_learns_too():
    utils.set_random_seed(0)
    x, y = toy_data()
    model = toy_model(loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=16, epochs=15, verbose=0)
    assert history.history["accuracy"][-1] >= 0.95


def test_history_keys_with_validation_split():
    utils.set_random_seed(0)
    x, y = toy_data(100)
    model = toy_model()
    history = model.fit(x, utils.to_categorical(y, 2), batch_size=16, epochs=3, validation_split=0.2, verbose=0)
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.history)
    assert history.epoch == [0, 1, 2]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert len(history.history[key]) == 3
        assert all(np.isfinite(v) for v in history.history[key])
    # The split takes the last 20%, as Keras: the validation numbers are those of evaluate on them.
    val = model.evaluate(x[80:], utils.to_categorical(y[80:], 2), batch_size=16, verbose=0, return_dict=True)
    assert history.history["val_loss"][-1] == pytest.approx(val["loss"], rel=1e-6)
    assert history.history["val_accuracy"][-1] == pytest.approx(val["accuracy"])


def test_history_keys_with_validation_data():
    utils.set_random_seed(0)
    x, y = toy_data(64)
    xv, yv = toy_data(32, seed=5)
    model = toy_model()
    history = model.fit(x, utils.to_categorical(y, 2), batch_size=16, epochs=2,
                        validation_data=(xv, utils.to_categorical(yv, 2)), verbose=0)
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.history)
    assert len(history.history["val_loss"]) == 2
    val = model.evaluate(xv, utils.to_categorical(yv, 2), batch_size=16, verbose=0, return_dict=True)
    assert history.history["val_loss"][-1] == pytest.approx(val["loss"], rel=1e-6)


def test_history_without_validation_has_no_val_keys():
    utils.set_random_seed(0)
    x, y = toy_data(32)
    history = toy_model().fit(x, utils.to_categorical(y, 2), epochs=1, verbose=0)
    assert not any(k.startswith("val_") for k in history.history)


def test_fit_zero_epochs_trains_nothing():
    utils.set_random_seed(0)
    x, y = toy_data(32)
    model = toy_model()
    before = model.get_weights()
    history = model.fit(x, utils.to_categorical(y, 2), epochs=0, verbose=0)
    assert history.history == {}
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_fit_reports_the_average_loss_of_the_epoch():
    """With one batch and SGD the logged loss is the loss of the weights before the step."""
    utils.set_random_seed(0)
    x, y = toy_data(16)
    model = toy_model(optimizer="sgd")
    y1 = utils.to_categorical(y, 2)
    before = model.evaluate(x, y1, batch_size=16, verbose=0)[0]
    history = model.fit(x, y1, batch_size=16, epochs=1, shuffle=False, verbose=0)
    assert history.history["loss"][0] == pytest.approx(before, rel=1e-5)


def _train(seed, shuffle, dropout=0.5, epochs=3):
    utils.set_random_seed(seed)
    layers.clear_session()
    x, y = toy_data(48)
    model = toy_model(dropout=dropout)
    history = model.fit(x, utils.to_categorical(y, 2), batch_size=8, epochs=epochs, shuffle=shuffle, verbose=0)
    return model.get_weights(), history.history["loss"]


def test_set_random_seed_makes_runs_bit_identical():
    w1, l1 = _train(123, shuffle=True)
    w2, l2 = _train(123, shuffle=True)
    assert l1 == l2
    assert all(np.array_equal(a, b) for a, b in zip(w1, w2))
    w3, _ = _train(124, shuffle=True)
    assert not all(np.array_equal(a, b) for a, b in zip(w1, w3))


def test_shuffle_false_is_deterministic_given_the_weights():
    """Without shuffling or dropout, training depends on the initial weights alone."""
    utils.set_random_seed(7)
    x, y = toy_data(48)
    y1 = utils.to_categorical(y, 2)
    first = toy_model()
    start = first.get_weights()
    first.fit(x, y1, batch_size=8, epochs=2, shuffle=False, verbose=0)
    utils.set_random_seed(99)  # a different stream: unused without shuffle or dropout
    second = toy_model()
    second.set_weights(start)
    second.fit(x, y1, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(first.get_weights(), second.get_weights()))


def test_shuffle_changes_the_batch_order():
    utils.set_random_seed(7)
    x, y = toy_data(48)
    y1 = utils.to_categorical(y, 2)
    a = toy_model()
    start = a.get_weights()
    b = toy_model()
    b.set_weights(start)
    a.fit(x, y1, batch_size=8, epochs=1, shuffle=False, verbose=0)
    b.fit(x, y1, batch_size=8, epochs=1, shuffle=True, verbose=0)
    assert not all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))


def test_fit_prints_one_line_per_epoch_when_verbose_2(capsys):
    utils.set_random_seed(0)
    x, y = toy_data(32)
    toy_model().fit(x, utils.to_categorical(y, 2), batch_size=16, epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert out.count("2/2 - ") == 2 and "accuracy: " in out and "loss: " in out


def test_fit_verbose_0_prints_nothing(capsys):
    utils.set_random_seed(0)
    x, y = toy_data(32)
    toy_model().fit(x, utils.to_categorical(y, 2), epochs=1, verbose=0)
    assert capsys.readouterr().out == ""


# -- predict and evaluate -------------------------------------------------------
def test_predict_batches_equal_one_forward():
    utils.set_random_seed(0)
    model = mnist_convnet()
    x = np.random.default_rng(0).random((37, 28, 28, 1), dtype=np.float32)
    full = model.forward(x, training=False)
    for batch_size in (1, 5, 32, 37, 100):
        out = model.predict(x, batch_size=batch_size, verbose=0)
        assert out.shape == (37, 10) and out.dtype == np.float32
        np.testing.assert_allclose(out, full, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.predict(x, verbose=0).sum(axis=1), 1.0, rtol=1e-5)


def test_predict_is_inference_mode_so_dropout_is_off():
    utils.set_random_seed(0)
    model = toy_model(dropout=0.9)
    x, _ = toy_data(20)
    assert np.array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


def test_predict_accepts_integer_images():
    utils.set_random_seed(0)
    model = toy_model()
    x = np.random.default_rng(0).integers(0, 255, (4, 8, 8, 1)).astype(np.uint8)
    out = model.predict(x, verbose=0)
    np.testing.assert_array_equal(out, model.predict(x.astype(np.float32), verbose=0))


def test_evaluate_return_forms():
    utils.set_random_seed(0)
    x, y = toy_data(40)
    y1 = utils.to_categorical(y, 2)
    model = toy_model()
    result = model.evaluate(x, y1, batch_size=16, verbose=0)
    assert isinstance(result, list) and len(result) == 2
    loss, acc = result
    as_dict = model.evaluate(x, y1, batch_size=16, verbose=0, return_dict=True)
    assert as_dict == {"loss": loss, "accuracy": acc}
    probs = model.predict(x, verbose=0)
    expected_loss = -np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1)))
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    assert acc == pytest.approx(np.mean(probs.argmax(1) == y))
    # Without metrics: a scalar.
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    scalar = model.evaluate(x, y1, verbose=0)
    assert isinstance(scalar, float) and scalar == pytest.approx(loss, rel=1e-6)


def test_evaluate_does_not_depend_on_batch_size():
    utils.set_random_seed(0)
    x, y = toy_data(41)
    y1 = utils.to_categorical(y, 2)
    model = toy_model()
    a = model.evaluate(x, y1, batch_size=41, verbose=0)
    b = model.evaluate(x, y1, batch_size=4, verbose=0)
    assert a[0] == pytest.approx(b[0], rel=1e-5) and a[1] == b[1]


def test_evaluate_prints_when_verbose(capsys):
    utils.set_random_seed(0)
    x, y = toy_data(16)
    toy_model().evaluate(x, utils.to_categorical(y, 2), verbose=1)
    out = capsys.readouterr().out
    assert "accuracy: " in out and "loss: " in out


# -- numerical safety ------------------------------------------------------------
def test_softmax_cross_entropy_stays_finite_for_huge_logits():
    utils.set_random_seed(0)
    x, y = toy_data(16)
    model = toy_model(optimizer="sgd")
    dense = model.layers[-1]
    kernel = np.zeros_like(dense.kernel.value)
    kernel[:, 0], kernel[:, 1] = 1e4, -1e4   # logits of order +-1e4: the softmax saturates completely
    dense.kernel.value = kernel.copy()
    wrong = utils.to_categorical(np.ones(16, dtype=int), 2)  # every sample labelled with the impossible class
    loss, acc = model.evaluate(x, wrong, verbose=0)
    assert np.isfinite(loss) and loss > 1e3 and acc == 0.0
    history = model.fit(x, wrong, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert all(np.isfinite(w).all() for w in model.get_weights())
    # The gradient that flowed was the bounded (p - y) / n: the step moved the weights but by a finite amount.
    assert not np.array_equal(dense.kernel.value, kernel)
    records = model.trace(x, wrong)
    for record in records:
        for value in (record.output, record.grad_input, *record.param_grads.values()):
            assert np.isfinite(value).all()


# -- float64 ------------------------------------------------------------------------
def test_float64_mode_gives_float64_parameters_and_outputs():
    convscope.config.set_floatx("float64")
    utils.set_random_seed(0)
    x, y = toy_data(24)
    model = toy_model()
    assert all(p.value.dtype == np.float64 for p in model.parameters)
    assert model.predict(x, verbose=0).dtype == np.float64  # x itself is float32
    model.fit(x, utils.to_categorical(y, 2), batch_size=8, epochs=1, verbose=0)
    assert all(p.value.dtype == np.float64 and p.grad.dtype == np.float64 for p in model.parameters)
    assert all(r.output.dtype == np.float64 for r in model.trace(x, y))
    convscope.config.set_floatx("float32")
    assert toy_model().parameters[0].value.dtype == np.float32


# -- trace ---------------------------------------------------------------------------
def _traced_model():
    utils.set_random_seed(3)
    model = convscope.Sequential([
        convscope.Input(shape=(8, 8, 2)),
        layers.Conv2D(3, 3, activation="relu", name="conv"),
        layers.BatchNormalization(name="bn"),
        layers.MaxPooling2D(2, name="pool"),
        layers.Flatten(name="flat"),
        layers.Dropout(0.5, name="drop"),
        layers.Dense(4, activation="softmax", name="out"),
    ])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(3).normal(size=(6, 8, 8, 2)).astype(np.float32)
    y = np.array([0, 1, 2, 3, 1, 2])
    model.fit(x, utils.to_categorical(y, 4), batch_size=3, epochs=1, verbose=0)  # non-trivial BN statistics
    return model, x, y


def test_trace_without_labels_records_every_layer():
    model, x, _ = _traced_model()
    records = model.trace(x)
    assert [r.name for r in records] == ["conv", "bn", "pool", "flat", "drop", "out"]
    assert [r.class_name for r in records] == ["Conv2D", "BatchNormalization", "MaxPooling2D", "Flatten", "Dropout",
                                               "Dense"]
    assert all(isinstance(r, LayerTrace) for r in records)
    shapes = [(6, 6, 6, 3), (6, 6, 6, 3), (6, 3, 3, 3), (6, 27), (6, 27), (6, 4)]
    assert [r.output.shape for r in records] == shapes
    assert records[0].input.shape == (6, 8, 8, 2)
    np.testing.assert_array_equal(records[0].input, x)
    for prev, rec in zip(records, records[1:]):
        np.testing.assert_array_equal(rec.input, prev.output)  # each layer received what the previous produced
    assert all(r.grad_output is None and r.grad_input is None and r.param_grads == {} for r in records)
    np.testing.assert_array_equal(records[-1].output, model.predict(x, verbose=0))


def test_trace_conv_preactivation_relu_equals_output():
    model, x, _ = _traced_model()
    conv = model.trace(x)[0]
    assert conv.preactivation.shape == conv.output.shape
    assert (conv.preactivation < 0).any(), "the test needs negative pre-activations to mean anything"
    np.testing.assert_array_equal(np.maximum(conv.preactivation, 0), conv.output)
    # Layers without an activation record their output as the pre-activation.
    pool = model.trace(x)[2]
    np.testing.assert_array_equal(pool.preactivation, pool.output)


def test_trace_records_are_copies():
    model, x, _ = _traced_model()
    records = model.trace(x)
    saved = records[0].output.copy()
    model.predict(x * 2, verbose=0)
    np.testing.assert_array_equal(records[0].output, saved)


def test_trace_with_labels_gives_gradients_and_changes_nothing():
    model, x, y = _traced_model()
    for p in model.parameters:
        p.grad[...] = 0.25  # a sentinel that trace must put back
    values_before = [p.value.copy() for p in model.parameters]
    records = model.trace(x, utils.to_categorical(y, 4))
    assert [sorted(r.param_grads) for r in records] == [["bias", "kernel"], ["beta", "gamma", "moving_mean",
                                                                          "moving_variance"], [], [], [], ["bias", "kernel"]]
    conv, bn, pool, flat, drop, out = records
    assert conv.param_grads["kernel"].shape == (3, 3, 2, 3) and conv.param_grads["bias"].shape == (3,)
    assert out.param_grads["kernel"].shape == (27, 4) and out.param_grads["bias"].shape == (4,)
    for r in records:
        assert r.grad_output.shape == r.output.shape
        assert r.grad_preactivation.shape == r.preactivation.shape
        assert r.grad_input.shape == r.input.shape
    for lower, upper in zip(records, records[1:]):
        np.testing.assert_array_equal(lower.grad_output, upper.grad_input)
    np.testing.assert_array_equal(records.grad_input, records[0].grad_input)  # a chain: the first layer's dL/dx
    # Fused softmax + cross-entropy: dL/dz = (p - y) / n.
    np.testing.assert_allclose(out.grad_preactivation, (out.output - utils.to_categorical(y, 4)) / len(y), atol=1e-6)
    # ReLU: the pre-activation gradient is the output gradient where z > 0, zero elsewhere.
    np.testing.assert_array_equal(conv.grad_preactivation, np.where(conv.preactivation > 0, conv.grad_output, 0))
    # Bias gradient of a dense layer: the column sums of dL/dz.
    np.testing.assert_allclose(out.param_grads["bias"], out.grad_preactivation.sum(axis=0), rtol=1e-5, atol=1e-7)
    for p, before in zip(model.parameters, values_before):
        np.testing.assert_array_equal(p.value, before)
        assert (p.grad == 0.25).all()


def test_trace_gradients_match_finite_differences():
    convscope.config.set_floatx("float64")
    model, x, y = _traced_model()
    y1 = utils.to_categorical(y, 4)
    records = model.trace(x, y1)
    loss = model.loss.with_logits()

    def loss_at():
        model.forward(x.astype(np.float64), training=False)
        return loss(y1, model.layers[-1].preactivation)

    eps = 1e-6
    for layer_index, pname, index in ((0, "kernel", (1, 2, 0, 1)), (0, "bias", (2,)), (1, "gamma", (1,)),
                                      (5, "kernel", (4, 3))):
        layer = model.layers[layer_index]
        param = getattr(layer, pname)
        original = param.value[index]
        param.value[index] = original + eps
        up = loss_at()
        param.value[index] = original - eps
        down = loss_at()
        param.value[index] = original
        numeric = (up - down) / (2 * eps)
        assert records[layer_index].param_grads[pname][index] == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def test_trace_accepts_integer_labels_on_a_categorical_model():
    model, x, y = _traced_model()
    from_labels = model.trace(x, y)
    from_one_hot = model.trace(x, utils.to_categorical(y, 4))
    for a, b in zip(from_labels, from_one_hot):
        np.testing.assert_array_equal(a.grad_input, b.grad_input)
        for key in a.param_grads:
            np.testing.assert_array_equal(a.param_grads[key], b.param_grads[key])


def test_trace_on_uncompiled_model_picks_the_cross_entropy_from_the_labels():
    model, x, y = _traced_model()
    compiled = model.trace(x, y)
    model.loss = None
    sparse = model.trace(x, y)
    dense = model.trace(x, utils.to_categorical(y, 4))
    for a, b, c in zip(compiled, sparse, dense):
        np.testing.assert_allclose(a.grad_input, b.grad_input, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(a.grad_input, c.grad_input, rtol=1e-6, atol=1e-9)


def test_trace_runs_in_inference_mode():
    """Dropout off and batch norm on its moving statistics: the moving statistics do not change."""
    model, x, y = _traced_model()
    bn = model.get_layer("bn")
    mean, var = bn.moving_mean.value.copy(), bn.moving_variance.value.copy()
    records = model.trace(x, y)
    np.testing.assert_array_equal(records[4].output, records[4].input)  # dropout is the identity
    np.testing.assert_array_equal(bn.moving_mean.value, mean)
    np.testing.assert_array_equal(bn.moving_variance.value, var)


def test_training_after_trace_matches_training_without_it():
    model, x, y = _traced_model()
    y1 = utils.to_categorical(y, 4)
    other = Sequential.from_config(model.get_config())
    other.set_weights(model.get_weights())
    other.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.trace(x, y)
    model.get_layer("drop").rate = other.get_layer("drop").rate = 0.0
    model.fit(x, y1, batch_size=6, epochs=1, shuffle=False, verbose=0)
    other.fit(x, y1, batch_size=6, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)


# -- config ---------------------------------------------------------------------------
def test_config_round_trip():
    utils.set_random_seed(0)
    model = convscope.Sequential([
        convscope.Input(shape=(10, 10, 4)),
        layers.Conv2D(8, (3, 2), strides=(1, 2), padding="same", groups=2, activation="tanh", use_bias=False),
        layers.BatchNormalization(momentum=0.9),
        layers.AveragePooling2D(2),
        layers.Conv2D(4, 3, dilation_rate=2, padding="same", activation="relu"),
        layers.GlobalMaxPooling2D(),
        layers.Dropout(0.25, seed=3),
        layers.Dense(3, activation="softmax", kernel_initializer="he_normal"),
    ], name="custom")
    config = model.get_config()
    clone = Sequential.from_config(config)
    assert clone.get_config() == config
    assert clone.name == "custom" and clone.built and clone.output_shape == model.output_shape
    assert [l.name for l in clone.layers] == [l.name for l in model.layers]
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in model.get_weights()]
    clone.set_weights(model.get_weights())
    x = np.random.default_rng(0).random((3, 10, 10, 4), dtype=np.float32)
    np.testing.assert_array_equal(clone.predict(x, verbose=0), model.predict(x, verbose=0))
    import json
    assert Sequential.from_config(json.loads(json.dumps(config))).get_config() == config  # JSON-able


def test_get_layer_and_set_weights_checks():
    model = mnist_convnet()
    assert model.get_layer("dense") is model.layers[-1]
    with pytest.raises(ValueError, match='No layer named "nope"'):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="expects 6 weight arrays, received 5"):
        model.set_weights(model.get_weights()[:5])
    weights = model.get_weights()
    weights[0] = np.zeros((3, 3, 1, 31), np.float32)
    with pytest.raises(ValueError, match=r"conv2d/kernel.*expects shape \(3, 3, 1, 32\), received \(3, 3, 1, 31\)"):
        model.set_weights(weights)


def test_duplicate_layer_names_are_refused():
    with pytest.raises(ValueError, match='"same" appears twice'):
        convscope.Sequential([layers.Dense(2, name="same"), layers.Dense(2, name="same")])
