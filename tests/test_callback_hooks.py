"""How fit, evaluate and predict drive callbacks: which hooks fire, with which logs and params, as Keras 3's trainer.

(The exact order of every hook against a recording from real Keras is tests/test_callbacks_keras.py's.)
"""

import numpy as np
import pytest

import convscope
from convscope import callbacks, layers, optimizers


class Recorder(callbacks.Callback):
    """Every hook's name, index (epoch or batch; None for begin / end hooks) and a copy of its logs."""

    def __init__(self):
        super().__init__()
        self.events = []

    def named(self, name):
        return [(i, logs) for n, i, logs in self.events if n == name]


def _indexed(name):
    def hook(self, index, logs=None):
        self.events.append((name, index, dict(logs or {})))
    return hook


def _plain(name):
    def hook(self, logs=None):
        self.events.append((name, None, dict(logs or {})))
    return hook


for _kind in ("train", "test", "predict"):
    setattr(Recorder, f"on_{_kind}_begin", _plain(f"on_{_kind}_begin"))
    setattr(Recorder, f"on_{_kind}_end", _plain(f"on_{_kind}_end"))
    setattr(Recorder, f"on_{_kind}_batch_begin", _indexed(f"on_{_kind}_batch_begin"))
    setattr(Recorder, f"on_{_kind}_batch_end", _indexed(f"on_{_kind}_batch_end"))
Recorder.on_epoch_begin = _indexed("on_epoch_begin")
Recorder.on_epoch_end = _indexed("on_epoch_end")


def model():
    m = convscope.Sequential([convscope.Input(shape=(4,)), layers.Dense(3, activation="softmax")])
    m.set_weights([np.linspace(-0.5, 0.6, 12).reshape(4, 3), np.array([0.1, -0.2, 0.05])])
    m.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def data(n=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 4)).astype(np.float32), rng.integers(0, 3, n)


def test_fit_hooks_and_their_logs():
    x, y = data()
    xv, yv = data(6, seed=1)
    rec = Recorder()
    m = model()
    history = m.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False, callbacks=[rec], validation_data=(xv, yv))
    assert rec.events[0] == ("on_train_begin", None, {})
    assert rec.named("on_epoch_begin") == [(0, {}), (1, {})]
    assert [i for i, _ in rec.named("on_train_batch_begin")] == [0, 1, 2, 0, 1, 2]
    assert all(logs == {} for _, logs in rec.named("on_train_batch_begin"))
    batch_ends = rec.named("on_train_batch_end")
    assert [sorted(logs) for _, logs in batch_ends] == [["accuracy", "loss"]] * 6
    epoch_ends = rec.named("on_epoch_end")
    assert [sorted(logs) for _, logs in epoch_ends] == [["accuracy", "loss", "val_accuracy", "val_loss"]] * 2
    for epoch, (_, logs) in enumerate(epoch_ends):
        # the last batch's running means are the epoch's; validation is the evaluation's, prefixed
        assert batch_ends[3 * epoch + 2][1] == {k: logs[k] for k in ("accuracy", "loss")}
    test_ends = rec.named("on_test_end")
    assert [logs for _, logs in test_ends] == [{"accuracy": l["val_accuracy"], "loss": l["val_loss"]}
                                               for _, l in epoch_ends]
    assert rec.events[-1] == ("on_train_end", None, epoch_ends[-1][1])
    assert history is m.history and history.history["val_loss"] == [l["val_loss"] for _, l in epoch_ends]
    assert rec.params == {"verbose": 0, "epochs": 2, "steps": 3}


def test_running_means_are_weighted_by_batch_size():
    x, y = data(10)
    rec = Recorder()
    m = model()
    losses = []

    class Loss(callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            xb, yb = x[4 * batch:4 * batch + 4], y[4 * batch:4 * batch + 4]
            losses.append((m.evaluate(xb, yb, verbose=0)[0], len(xb)))

    m.fit(x, y, batch_size=4, verbose=0, shuffle=False, callbacks=[Loss(), rec])
    values = np.array([v for v, _ in losses])
    counts = np.array([c for _, c in losses])
    running = [logs["loss"] for _, logs in rec.named("on_train_batch_end")]
    np.testing.assert_allclose(running, np.cumsum(values * counts) / np.cumsum(counts), rtol=1e-6)


@pytest.mark.parametrize("freq, validated", [(2, [1, 3]), ([1, 4], [0, 3]), (1, [0, 1, 2, 3])])
def test_validation_freq_chooses_the_epochs_that_validate(freq, validated):
    x, y = data()
    rec = Recorder()
    model().fit(x, y, epochs=4, verbose=0, callbacks=[rec], validation_data=data(4, seed=2), validation_freq=freq)
    assert [i for i, logs in rec.named("on_epoch_end") if "val_loss" in logs] == validated
    assert len(rec.named("on_test_begin")) == len(validated)


def test_evaluate_fires_the_test_hooks_with_running_logs():
    x, y = data(10)
    rec = Recorder()
    m = model()
    result = m.evaluate(x, y, batch_size=4, verbose=0, callbacks=[rec], return_dict=True)
    assert [name for name, _, _ in rec.events] == ["on_test_begin"] + ["on_test_batch_begin", "on_test_batch_end"] * 3 \
        + ["on_test_end"]
    assert [i for i, _ in rec.named("on_test_batch_end")] == [0, 1, 2]
    assert rec.named("on_test_batch_end")[-1][1] == result == rec.named("on_test_end")[0][1]
    assert rec.params == {"verbose": 0, "epochs": 1, "steps": 3}


def test_predict_fires_the_predict_hooks_with_the_batch_outputs():
    x, _ = data(10)
    rec = Recorder()
    m = model()
    out = m.predict(x, batch_size=4, verbose=0, callbacks=[rec])
    assert [name for name, _, _ in rec.events] == ["on_predict_begin"] + \
        ["on_predict_batch_begin", "on_predict_batch_end"] * 3 + ["on_predict_end"]
    outputs = [logs["outputs"] for _, logs in rec.named("on_predict_batch_end")]
    assert [len(o) for o in outputs] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(outputs), out)
    assert rec.params == {"verbose": 0, "epochs": 1, "steps": 3}


def test_stop_flags_end_each_loop_after_the_batch():
    x, y = data(12)

    class Stop(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.model.stop_training = batch == 1

        def on_test_batch_end(self, batch, logs=None):
            self.model.stop_evaluating = True

        def on_predict_batch_end(self, batch, logs=None):
            self.model.stop_predicting = True

    rec = Recorder()
    m = model()
    history = m.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[Stop(), rec], validation_data=(x, y),
                    validation_batch_size=5)
    assert history.epoch == [0]
    assert len(rec.named("on_train_batch_end")) == 2
    assert len(rec.named("on_test_batch_end")) == 1  # validation still runs after a stop, as in Keras
    assert "val_loss" in history.history
    assert m.predict(x, batch_size=5, verbose=0, callbacks=[Stop()]).shape == (5, 3)
    first = m.evaluate(x, y, batch_size=5, verbose=0, callbacks=[Stop()], return_dict=True)
    assert first == pytest.approx(m.evaluate(x[:5], y[:5], verbose=0, return_dict=True))


def test_a_given_history_is_the_one_fit_fills():
    x, y = data()
    mine = callbacks.History()
    m = model()
    assert m.fit(x, y, epochs=2, verbose=0, callbacks=[mine]) is mine
    assert m.history is mine and len(mine.history["loss"]) == 2


def test_steps_param_follows_steps_per_epoch():
    x, y = data(10)
    rec = Recorder()
    model().fit(x, y, batch_size=2, steps_per_epoch=3, epochs=1, verbose=0, callbacks=[rec])
    assert rec.params["steps"] == 3
