"""Numerics (issue #8): extreme logits stay finite, float32 and float64 agree, bad inputs are refused up
front, and a training run that diverges stops at the first non-finite loss, naming the epoch and batch,
keeping the last good checkpoint and writing no model of NaNs (library and ``convscope train``)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import convscope
from convscope import activations, backend, layers, losses, runs
from convscope.callbacks import Callback, TerminateOnNaN
from convscope.datasets import mnist_sample
from convscope.saving import load_checkpoint

MAGNITUDES = (1e4, 1e30)


# ----------------------------------------------------------------------------------------------- extreme logits


def extreme_logits(magnitude, dtype):
    """Rows that overflow a naive exp(): a huge winner, all-equal huge negatives, a tie of huge winners, zeros."""
    m = magnitude
    z = np.array([[m, -m, 0, 1], [-m, -m, -m, -m], [m, m, -m, 0], [0, 0, 0, 0]], dtype=dtype)
    labels = np.array([1, 0, 3, 2])
    return z, labels


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("magnitude", MAGNITUDES)
def test_softmax_and_sigmoid_are_finite_on_extreme_logits(magnitude, dtype):
    z, _ = extreme_logits(magnitude, dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow, even an intermediate one (exp may underflow to 0)
        p = activations.softmax(z)
        grad = activations.softmax.gradient(z, p, np.ones_like(z))
        s = activations.sigmoid(z)
    assert p.dtype == np.dtype(dtype) and np.isfinite(p).all() and np.isfinite(grad).all()
    np.testing.assert_allclose(p.sum(axis=-1), 1, rtol=1e-6)
    np.testing.assert_array_equal(p[0], [1, 0, 0, 0])
    np.testing.assert_allclose(p[1], 0.25)
    np.testing.assert_allclose(p[2], [0.5, 0.5, 0, 0])
    np.testing.assert_array_equal(s[0], [1, 0, 0.5, 1 / (1 + np.exp(np.array(-1, dtype)))])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("magnitude", MAGNITUDES)
def test_cross_entropies_are_finite_and_exact_on_extreme_logits(magnitude, dtype):
    z, labels = extreme_logits(magnitude, dtype)
    one_hot = np.eye(4, dtype=dtype)[labels]
    m = magnitude
    # From logits the loss is exact: -log_softmax(z)[label] per row.
    expected = np.array([2 * m, np.log(4), m + np.log(2), np.log(4)])
    cases = [
        (losses.CategoricalCrossentropy(from_logits=True), one_hot, z, expected.mean()),
        (losses.SparseCategoricalCrossentropy(from_logits=True), labels, z, expected.mean()),
        (losses.BinaryCrossentropy(from_logits=True), one_hot, z, None),
        (losses.CategoricalCrossentropy(label_smoothing=0.1, from_logits=True), one_hot, z, None),
        # From probabilities, softmax's exact 0 and 1 are clipped to [1e-7, 1 - 1e-7] as Keras does.
        (losses.CategoricalCrossentropy(), one_hot, activations.softmax(z), None),
        (losses.SparseCategoricalCrossentropy(), labels, activations.softmax(z), None),
        (losses.BinaryCrossentropy(), one_hot, activations.sigmoid(z), None),
    ]
    for loss, y, inputs, exact in cases:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            value, grad = loss.value_and_gradient(y, inputs)
        assert np.isfinite(value) and np.isfinite(grad).all(), f"{loss!r}: {value}"
        if exact is not None:
            np.testing.assert_allclose(value, exact, rtol=1e-6)
        if not loss.from_logits and not isinstance(loss, losses.BinaryCrossentropy):
            assert value <= -np.log(losses.EPSILON) + 1e-3  # clipping bounds each row's loss by -log(1e-7)


@pytest.mark.parametrize("magnitude", MAGNITUDES)
def test_the_models_fused_loss_is_finite_on_extreme_logits(magnitude):
    """A softmax model whose logits are +-magnitude: evaluate, a training step and trace all stay finite."""
    model = convscope.Sequential([convscope.Input(shape=(2,)), layers.Dense(3, activation="softmax")])
    model.compile(optimizer=convscope.optimizers.SGD(learning_rate=1e-40), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.set_weights([np.array([[magnitude, -magnitude, 0], [0, 0, 0]], np.float32), np.zeros(3, np.float32)])
    x = np.array([[1, 0], [-1, 0]], np.float32)  # logits (m, -m, 0) and (-m, m, 0)
    y = np.array([1, 1])  # wrong for the first row (loss 2m), right for the second (loss 0)
    loss, accuracy = model.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(loss, magnitude, rtol=1e-6)  # mean of 2m and 0
    assert accuracy == 0.5
    np.testing.assert_array_equal(model.predict(x, verbose=0), [[1, 0, 0], [0, 1, 0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, _ = model.train_step(x, y)
        records = model.trace(x, y)
    assert np.isfinite(value) and all(np.isfinite(g).all() for g in records[-1].param_grads.values())


# ----------------------------------------------------------------------------------------------- float32 vs float64


@pytest.fixture(scope="module")
def trained_model():
    """The Keras convnet after one epoch on 1,000 sample images (float32), and 500 real test digits."""
    convscope.utils.set_random_seed(0)
    layers.clear_session()
    cfg = runs.RunConfig(dataset="mnist-sample", epochs=1, batch_size=64, limit=1000)
    model = runs.build_model(cfg)
    (x, y), (x_test, y_test) = mnist_sample.load_data()
    x, y = runs.prepare(x[:1000], y[:1000])
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    return model, runs.prepare(x_test[:500], y_test[:500])


def test_float32_and_float64_give_the_same_predictions(trained_model):
    model, (x_test, y_test) = trained_model
    p32 = model.predict(x_test, verbose=0)
    previous = backend.floatx()
    backend.set_floatx("float64")
    try:
        model64 = convscope.Sequential.from_config(model.get_config())
        model64.set_weights([w.astype(np.float64) for w in model.get_weights()])
        p64 = model64.predict(x_test.astype(np.float64), verbose=0)
    finally:
        backend.set_floatx(previous)
    assert p32.dtype == np.float32 and p64.dtype == np.float64
    gap = float(np.abs(p32 - p64).max())
    assert gap < 1e-6, f"max |p32 - p64| = {gap}"  # measured: 9e-8 on 1,000 sample test images
    np.testing.assert_array_equal(p32.argmax(axis=1), p64.argmax(axis=1))
    assert (p64.argmax(axis=1) == y_test).mean() > 0.5  # a trained model, not noise


# ----------------------------------------------------------------------------------------------- refused up front


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fit_refuses_non_finite_inputs_before_training(bad):
    model = convscope.Sequential([convscope.Input(shape=(4,)), layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    x = np.ones((10, 4), np.float32)
    x[7, 2] = bad
    with pytest.raises(ValueError, match=r'argument "x" contains NaN or infinite values \(first in sample 7\)'):
        model.fit(x, np.zeros(10, int), verbose=0)
    with pytest.raises(ValueError, match=r'"x_val" contains NaN or infinite'):
        model.fit(np.ones((10, 4)), np.zeros(10, int), validation_data=(x, np.zeros(10, int)), verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights())), "nothing may train"
    with pytest.raises(ValueError, match=r'argument "y" contains NaN'):
        model.fit(np.ones((10, 4)), np.full((10, 2), np.nan), verbose=0)


# ----------------------------------------------------------------------------------------------- divergence


class PoisonAt(Callback):
    """Sets the first kernel to NaN after batch ``batch`` of epoch ``epoch`` (both from 0)."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            self.model.layers[0].kernel.value[...] = np.nan


def small_run(tmp_path, callbacks, epochs=3):
    """A tiny convnet on 256 sample images, batch 32 (8 batches an epoch), recorded in a run folder."""
    convscope.utils.set_random_seed(0)
    layers.clear_session()
    model = convscope.Sequential([convscope.Input(shape=(28, 28, 1)), layers.Conv2D(4, 3, activation="relu"),
                                  layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    (x, y), _ = mnist_sample.load_data()
    x, y = runs.prepare(x[:256], y[:256])
    saved = {}

    class Keep(Callback):  # the weights at the end of every epoch, to compare with the checkpoint
        def on_epoch_end(self, epoch, logs=None):
            saved[epoch + 1] = [w.copy() for w in self.model.get_weights()]

    recorder = runs.RunRecorder(tmp_path)
    history = model.fit(x, y, batch_size=32, epochs=epochs, shuffle=False, verbose=0,
                        callbacks=[*callbacks, recorder, Keep()])
    return model, recorder, history, saved


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_keeps_the_last_good_checkpoint(tmp_path, capsys):
    guard = TerminateOnNaN()
    model, recorder, history, saved = small_run(tmp_path, [PoisonAt(1, 2), guard])
    assert "Epoch 2, batch 3: invalid loss nan, terminating training" in capsys.readouterr().out
    assert guard.stopped_at[:2] == (2, 3) and np.isnan(guard.stopped_at[2])
    assert recorder.refused == "epoch 2 stopped after 4 of 8 batches" and recorder.epochs_recorded == 1
    assert len(history.epoch) == 2  # fit still reports the cut epoch; the run folder does not record it
    checkpoint, state = load_checkpoint(tmp_path / runs.CHECKPOINT)
    assert state["epochs_done"] == 1 and len(state["history"]["loss"]) == 1
    for a, b in zip(checkpoint.get_weights(), saved[1]):
        assert np.isfinite(a).all() and np.array_equal(a, b), "the checkpoint must be epoch 1's weights"
    assert sorted(os.listdir(tmp_path / "filters")) == ["epoch_000.npz", "epoch_001.npz"]
    assert len((tmp_path / "history.csv").read_text().splitlines()) == 2  # header + epoch 1
    assert not np.isfinite(model.get_weights()[0]).all()  # the model itself did diverge


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_the_recorder_alone_refuses_non_finite_weights(tmp_path, capsys):
    """Weights poisoned after the last batch of epoch 1: that epoch's loss is finite, its weights are not."""
    _, recorder, history, _ = small_run(tmp_path, [PoisonAt(0, 7)])
    assert recorder.refused == "epoch 1 ended with NaN or infinite weights"
    assert len(history.epoch) == 1, "the recorder stops training"
    _, state = load_checkpoint(tmp_path / runs.CHECKPOINT)
    assert state["epochs_done"] == 0
    assert capsys.readouterr().out == ""


def test_a_finite_run_records_every_epoch(tmp_path):
    _, recorder, history, saved = small_run(tmp_path, [TerminateOnNaN()], epochs=2)
    assert recorder.refused is None and recorder.epochs_recorded == 2 and len(history.epoch) == 2
    checkpoint, state = load_checkpoint(tmp_path / runs.CHECKPOINT)
    assert state["epochs_done"] == 2
    assert all(np.array_equal(a, b) for a, b in zip(checkpoint.get_weights(), saved[2]))


# ----------------------------------------------------------------------------------------------- the command line


def cli(args, tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), CONVSCOPE_DATA=str(tmp_path / "no-data"),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "convscope.cli", *map(str, args)], env=env, capture_output=True,
                          text=True, encoding="utf-8", timeout=300)


def test_train_stops_on_divergence_with_exit_3(tmp_path):
    """``--optimizer sgd --learning-rate 1e10``: the weights overflow in the first epoch."""
    run_dir = tmp_path / "run"
    result = cli(["train", "--dataset", "mnist-sample", "--optimizer", "sgd", "--learning-rate", "1e10",
                  "--limit", "640", "--epochs", "3", "--verbose", "2", "--out", run_dir], tmp_path)
    detail = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 3, detail
    assert "Traceback" not in result.stderr and "RuntimeWarning" not in result.stderr, detail
    assert "Epoch 1, batch " in result.stdout and "invalid loss nan, terminating training" in result.stdout, detail
    assert "Epoch 2/3" not in result.stdout and "Test accuracy" not in result.stdout, detail
    lines = result.stderr.splitlines()
    assert len(lines) == 1, detail
    assert lines[0].startswith("convscope: error: training diverged: the loss became nan at epoch 1, batch ")
    assert "No final model was written" in lines[0] and "checkpoint after epoch 0" in lines[0], detail
    assert not (run_dir / runs.FINAL_MODEL).exists()
    model, state = load_checkpoint(run_dir / runs.CHECKPOINT)
    assert state["epochs_done"] == 0 and all(np.isfinite(w).all() for w in model.get_weights())
    assert os.listdir(run_dir / "filters") == ["epoch_000.npz"]
    # The run did not finish, so it may be resumed: from the good checkpoint it diverges again, identically.
    again = cli(["train", "--resume", run_dir, "--verbose", "2"], tmp_path)
    assert again.returncode == 3 and again.stderr == result.stderr, f"{again.stdout}\n{again.stderr}"


def test_train_help_documents_the_exit_statuses(tmp_path):
    text = " ".join(cli(["train", "--help"], tmp_path).stdout.split())
    assert "Exit status: 0 trained; 2 bad arguments" in text and "3 training diverged" in text
