"""Callbacks: hook order, History, EarlyStopping, ModelCheckpoint, TerminateOnNaN (more in test_callbacks_keras)."""

from __future__ import annotations

import os

import numpy as np
import pytest

import convscope
from convscope import backend, layers, utils
from convscope.callbacks import Callback, EarlyStopping, History, ModelCheckpoint, TerminateOnNaN


@pytest.fixture(autouse=True)
def _fresh_state():
    layers.clear_session()
    state = backend.get_rng_state()
    utils.set_random_seed(0)
    yield
    backend.set_rng_state(state)


def toy_data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.random((n, 8, 8, 1), dtype=np.float32) * 0.3
    x[y == 0, :, :4, 0] += 0.7
    x[y == 1, :, 4:, 0] += 0.7
    return x, utils.to_categorical(y, 2)


def toy_model(optimizer=None):
    model = convscope.Sequential([
        convscope.Input(shape=(8, 8, 1)),
        layers.Conv2D(2, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer=optimizer or convscope.optimizers.Adam(learning_rate=0.01),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model


class Script(Callback):
    """Writes scripted values of ``key`` into each epoch's logs (placed before the callback under test)."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, list(values)

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


class Recorder(Callback):
    """Every hook call, and the weights at the end of every epoch."""

    def __init__(self):
        super().__init__()
        self.events, self.weights, self.batches = [], [], 0

    def on_train_begin(self, logs=None):
        self.events.append(("train_begin",))

    def on_train_end(self, logs=None):
        self.events.append(("train_end",))

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch, dict(logs)))
        self.weights.append(self.model.get_weights())

    def on_train_batch_begin(self, batch, logs=None):
        self.events.append(("batch_begin", batch))

    def on_train_batch_end(self, batch, logs=None):
        self.events.append(("batch_end", batch))
        self.batches += 1


def run(callbacks, epochs=6, **kwargs):
    x, y = toy_data()
    model = toy_model(kwargs.pop("optimizer", None))
    history = model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, callbacks=callbacks, **kwargs)
    return model, history


# -- hooks and History ------------------------------------------------------------------
def test_hook_order_and_params():
    rec = Recorder()
    model, history = run([rec], epochs=2)
    kinds = [e[:2] if e[0] != "epoch_end" else e[:2] for e in rec.events]
    batch = [("batch_begin", 0), ("batch_end", 0), ("batch_begin", 1), ("batch_end", 1), ("batch_begin", 2),
             ("batch_end", 2)]
    assert kinds == [("train_begin",), ("epoch_begin", 0), *batch, ("epoch_end", 0), ("epoch_begin", 1), *batch,
                     ("epoch_end", 1), ("train_end",)]
    assert rec.model is model
    assert rec.params == {"epochs": 2, "steps": 3, "verbose": 0}


def test_history_records_what_callbacks_saw():
    rec = Recorder()
    _, history = run([rec], epochs=3, validation_split=0.25)
    assert isinstance(history, History)
    assert history.epoch == [0, 1, 2]
    for epoch, event in enumerate(e for e in rec.events if e[0] == "epoch_end"):
        logs = event[2]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert history.history[key][epoch] == logs[key]


def test_history_with_initial_epoch():
    _, history = run([], epochs=4, initial_epoch=2)
    assert history.epoch == [2, 3]
    assert len(history.history["loss"]) == 2


# -- EarlyStopping ----------------------------------------------------------------------
def epochs_run(history):
    return len(history.epoch)


def test_early_stopping_patience_zero_keeps_training_while_improving():
    """Keras: an improving epoch never stops training, whatever the patience (the default is 0)."""
    stop = EarlyStopping(monitor="score", mode="min")
    _, history = run([Script("score", [5, 4, 3, 2, 1, 0]), stop], epochs=6)
    assert epochs_run(history) == 6
    assert stop.stopped_epoch == 0


def test_early_stopping_patience_zero_stops_at_first_non_improvement():
    stop = EarlyStopping(monitor="score", mode="min")
    _, history = run([Script("score", [5, 4, 4, 2, 1, 0]), stop], epochs=6)
    assert epochs_run(history) == 3
    assert stop.stopped_epoch == 2


def test_early_stopping_patience_counts_epochs_without_improvement():
    stop = EarlyStopping(monitor="score", mode="min", patience=2)
    _, history = run([Script("score", [5, 4, 4.5, 4.2, 3, 2]), stop], epochs=6)
    assert epochs_run(history) == 4  # best at epoch 1, then two epochs without improvement
    assert stop.stopped_epoch == 3 and stop.best == 4 and stop.best_epoch == 1


def test_early_stopping_improvement_resets_patience():
    stop = EarlyStopping(monitor="score", mode="min", patience=2)
    _, history = run([Script("score", [5, 6, 4, 6, 3, 7, 8]), stop], epochs=7)
    assert epochs_run(history) == 7


def test_early_stopping_min_delta():
    stop = EarlyStopping(monitor="score", mode="min", patience=1, min_delta=0.1)
    _, history = run([Script("score", [5, 4.95, 4.9, 4.85, 4.8, 4.75]), stop], epochs=6)
    assert epochs_run(history) == 2


@pytest.mark.parametrize("monitor", ["val_accuracy", "accuracy"])
def test_early_stopping_mode_auto_maximises_accuracy(monitor):
    """"auto" follows the compiled metric of that name (with or without val_), as Keras does."""
    stop = EarlyStopping(monitor=monitor, patience=1)
    _, history = run([Script(monitor, [0.5, 0.6, 0.7, 0.65, 0.8, 0.9]), stop], epochs=6)
    assert epochs_run(history) == 4  # stops at the first drop, epoch 3
    assert stop.mode == "auto" and stop.best == 0.7


def test_early_stopping_mode_auto_refuses_a_name_it_cannot_judge():
    with pytest.raises(ValueError, match=r"EarlyStopping callback received monitor=score, but convscope isn't able "
                                         r"to automatically determine .* Pass `mode='max'`"):
        run([Script("score", [1, 2, 3]), EarlyStopping(monitor="score")], epochs=3)


def test_early_stopping_explicit_modes():
    assert EarlyStopping(monitor="val_accuracy", mode="min").mode == "min"
    stop = EarlyStopping(monitor="score", mode="max", patience=1)
    _, history = run([Script("score", [1, 2, 1, 3, 4, 5]), stop], epochs=6)
    assert epochs_run(history) == 3
    with pytest.raises(ValueError, match=r'EarlyStopping: argument "mode" must be "auto", "min" or "max", received \'maximum\''):
        EarlyStopping(mode="maximum")


def test_early_stopping_restore_best_weights():
    rec = Recorder()
    stop = EarlyStopping(monitor="score", mode="min", patience=2, restore_best_weights=True)
    model, history = run([Script("score", [5, 3, 4, 4, 1, 0]), rec, stop], epochs=6)
    assert epochs_run(history) == 4
    best = rec.weights[1]
    assert not all(np.array_equal(a, b) for a, b in zip(best, rec.weights[-1])), "training should move the weights"
    for a, b in zip(model.get_weights(), best):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_without_restore_keeps_last_weights():
    rec = Recorder()
    stop = EarlyStopping(monitor="score", mode="min", patience=2)
    model, _ = run([Script("score", [5, 3, 4, 4, 1, 0]), stop, rec], epochs=6)
    for a, b in zip(model.get_weights(), rec.weights[-1]):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_baseline():
    """Epochs that do not beat the baseline count against the patience."""
    stop = EarlyStopping(monitor="score", mode="min", patience=2, baseline=2.0)
    _, history = run([Script("score", [5, 5, 5, 5, 5, 5]), stop], epochs=6)
    assert epochs_run(history) == 2
    no_baseline = EarlyStopping(monitor="score", mode="min", patience=2)
    _, history = run([Script("score", [5, 5, 5, 5, 5, 5]), no_baseline], epochs=6)
    assert epochs_run(history) == 3


def test_early_stopping_start_from_epoch():
    scores = [9, 9, 9, 4, 5, 6]
    stop = EarlyStopping(monitor="score", mode="min", start_from_epoch=3)
    _, history = run([Script("score", scores), stop], epochs=6)
    assert epochs_run(history) == 5  # epochs 0-2 ignored; best 4 at epoch 3, stop at epoch 4
    _, history = run([Script("score", scores), EarlyStopping(monitor="score", mode="min")], epochs=6)
    assert epochs_run(history) == 2


def test_early_stopping_on_real_val_loss_that_cannot_move():
    """A learning rate so small that the weights do not change: val_loss is flat and training stops."""
    stop = EarlyStopping(patience=2)
    _, history = run([stop], epochs=10, validation_split=0.25,
                     optimizer=convscope.optimizers.SGD(learning_rate=1e-30))
    assert epochs_run(history) == 3
    assert len(set(history.history["val_loss"])) == 1


def test_early_stopping_missing_monitor_warns_and_does_nothing():
    with pytest.warns(UserWarning, match="Early stopping conditioned on metric `val_loss` which is not available. "
                                         "Available metrics are: ") as caught:
        _, history = run([EarlyStopping(monitor="val_loss")], epochs=3)  # no validation data
    assert epochs_run(history) == 3
    assert set(str(caught[0].message).rsplit(": ", 1)[1].split(",")) == {"accuracy", "loss"}


def test_early_stopping_verbose_prints_the_epoch(capsys):
    run([Script("score", [5, 4, 4, 4, 4, 4]), EarlyStopping(monitor="score", mode="min", verbose=1)], epochs=6)
    assert "Epoch 3: early stopping" in capsys.readouterr().out


def test_early_stopping_state_resets_between_fits():
    stop = EarlyStopping(monitor="score", mode="min")
    x, y = toy_data()
    model = toy_model()
    h1 = model.fit(x, y, epochs=4, verbose=0, callbacks=[Script("score", [3, 3, 3, 3]), stop])
    h2 = model.fit(x, y, epochs=4, verbose=0, callbacks=[Script("score", [9, 8, 7, 6]), stop])
    assert epochs_run(h1) == 2 and epochs_run(h2) == 4


# -- ModelCheckpoint ---------------------------------------------------------------------
def test_model_checkpoint_formats_the_epoch_and_files_load(tmp_path):
    rec = Recorder()
    pattern = str(tmp_path / "ckpt-{epoch:02d}.convscope")
    model, _ = run([ModelCheckpoint(pattern), rec], epochs=3)
    assert sorted(os.listdir(tmp_path)) == ["ckpt-01.convscope", "ckpt-02.convscope", "ckpt-03.convscope"]
    x, _ = toy_data(8, seed=3)
    for epoch in range(3):
        loaded = convscope.load_model(tmp_path / f"ckpt-{epoch + 1:02d}.convscope")
        for a, b in zip(loaded.get_weights(), rec.weights[epoch]):
            np.testing.assert_array_equal(a, b)
        assert loaded.optimizer.iterations == 3 * (epoch + 1)
    np.testing.assert_array_equal(convscope.load_model(tmp_path / "ckpt-03.convscope").predict(x, verbose=0),
                                  model.predict(x, verbose=0))


def test_model_checkpoint_formats_metrics(tmp_path):
    rec = Recorder()
    pattern = tmp_path / "m-{epoch:02d}-{val_loss:.3f}-{accuracy:.2f}.convscope"
    run([ModelCheckpoint(pattern), rec], epochs=2, validation_split=0.25)
    names = sorted(os.listdir(tmp_path))
    expected = sorted(f"m-{e + 1:02d}-{logs['val_loss']:.3f}-{logs['accuracy']:.2f}.convscope"
                      for e, (_, _, logs) in enumerate(ev for ev in rec.events if ev[0] == "epoch_end"))
    assert names == expected


def test_model_checkpoint_save_best_only(tmp_path):
    rec = Recorder()
    path = tmp_path / "best.convscope"
    saves = []

    class Spy(Callback):
        def on_epoch_end(self, epoch, logs=None):
            saves.append(os.path.getmtime(path) if path.exists() else None)

    checkpoint = ModelCheckpoint(path, monitor="score", mode="min", save_best_only=True)
    run([Script("score", [5, 3, 4, 2, 6, 7]), checkpoint, rec], epochs=6)
    loaded = convscope.load_model(path)
    for a, b in zip(loaded.get_weights(), rec.weights[3]):  # epoch 3 had the lowest score
        np.testing.assert_array_equal(a, b)
    assert checkpoint.best == 2


def test_model_checkpoint_save_best_only_with_accuracy_maximises(tmp_path):
    rec = Recorder()
    pattern = str(tmp_path / "acc-{epoch:02d}.convscope")
    run([Script("val_accuracy", [0.5, 0.7, 0.6, 0.8, 0.8, 0.1]), ModelCheckpoint(pattern, monitor="val_accuracy",
                                                                              save_best_only=True), rec], epochs=6)
    assert sorted(os.listdir(tmp_path)) == ["acc-01.convscope", "acc-02.convscope", "acc-04.convscope"]


def test_model_checkpoint_leaves_no_temporary_files(tmp_path):
    run([ModelCheckpoint(tmp_path / "m.convscope")], epochs=3)
    assert os.listdir(tmp_path) == ["m.convscope"]


def test_model_checkpoint_verbose(tmp_path, capsys):
    path = tmp_path / "m.convscope"
    run([ModelCheckpoint(path, verbose=1)], epochs=1)
    assert capsys.readouterr().out == f"\nEpoch 1: saving model to {path}\n\nEpoch 1: finished saving model to {path}\n"


def test_model_checkpoint_refused_options(tmp_path):
    with pytest.raises(ValueError, match=r"unrecognized save_freq: 'batch'. Expected save_freq are 'epoch' or "
                                         r"positive integer values"):
        ModelCheckpoint(tmp_path / "m.convscope", save_freq="batch")
    with pytest.raises(ValueError, match=r"save_weights_only=True.*must end in `.weights.h5`.*Received: filepath="):
        ModelCheckpoint(tmp_path / "m.convscope", save_weights_only=True)
    with pytest.raises(ValueError, match=r"must end in `.keras` .*`.h5` .*`.convscope`.*Received: filepath=.*m.npz"):
        ModelCheckpoint(tmp_path / "m.npz")
    with pytest.raises(ValueError, match=r'ModelCheckpoint: argument "mode" must be "auto", "min" or "max", '
                                         r"received 'best'"):
        ModelCheckpoint(tmp_path / "m.convscope", mode="best")


# -- TerminateOnNaN ----------------------------------------------------------------------------
def regression_model(learning_rate):
    model = convscope.Sequential([convscope.Input(shape=(4,)), layers.Dense(3), layers.Dense(1)])
    model.compile(optimizer=convscope.optimizers.SGD(learning_rate=learning_rate), loss="mse")
    return model


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_terminate_on_nan_with_a_huge_learning_rate(capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32) * 100
    y = rng.normal(size=(64, 1)).astype(np.float32)
    rec = Recorder()
    model = regression_model(1e20)
    history = model.fit(x, y, batch_size=4, epochs=5, verbose=0, callbacks=[TerminateOnNaN(), rec])
    out = capsys.readouterr().out
    assert len(history.epoch) == 1
    assert rec.batches < 16, "training should stop within the first epoch"
    assert not np.isfinite(history.history["loss"][0])
    assert f"Epoch 1, batch {rec.batches - 1}: invalid loss" in out and "terminating training" in out


class PoisonAfterBatch(convscope.callbacks.Callback):
    """Sets the first kernel to NaN at the end of batch ``batch``, so the next batch's loss is NaN."""

    def __init__(self, batch):
        super().__init__()
        self.batch = batch

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.batch:
            self.model.layers[0].kernel.value[...] = np.nan


def test_terminate_on_nan_names_the_batch(capsys):
    """Weights poisoned after batch 1 make the loss NaN exactly at batch 2."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4)).astype(np.float32)
    y = rng.normal(size=(20, 1)).astype(np.float32)
    rec = Recorder()
    history = regression_model(0.01).fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0,
                                         callbacks=[PoisonAfterBatch(1), TerminateOnNaN(), rec])
    assert rec.batches == 3 and len(history.epoch) == 1
    assert "Epoch 1, batch 2: invalid loss nan, terminating training" in capsys.readouterr().out


def test_terminate_on_nan_leaves_finite_training_alone(capsys):
    _, history = run([TerminateOnNaN()], epochs=3)
    assert len(history.epoch) == 3
    assert capsys.readouterr().out == ""
