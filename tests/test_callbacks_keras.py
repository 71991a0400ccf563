"""Keras 3's callbacks: every hook with Keras's logs (against a recording of real Keras), CallbackList,
ProgbarLogger, ModelCheckpoint, ReduceLROnPlateau, LearningRateScheduler, CSVLogger, LambdaCallback,
BackupAndRestore, TensorBoard and TerminateOnNaN's raise_error.

``fixtures/callbacks/keras_hooks.json`` was recorded with Keras 3 by the script beside it.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from test_callbacks import Script, toy_data, toy_model

import convscope
from convscope import backend, callbacks, utils
from convscope.callbacks import (BackupAndRestore, Callback, CallbackList, CSVLogger, EarlyStopping, History,
                                 LambdaCallback, LearningRateScheduler, ModelCheckpoint, ProgbarLogger,
                                 ReduceLROnPlateau, TensorBoard, TerminateOnNaN)

pytestmark = pytest.mark.usefixtures("fresh_state")

KERAS = json.loads((Path(__file__).parent / "fixtures" / "callbacks" / "keras_hooks.json").read_text())
INDEXED = ("on_epoch_begin", "on_epoch_end", "on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin",
           "on_test_batch_end", "on_predict_batch_begin", "on_predict_batch_end")
PLAIN = ("on_train_begin", "on_train_end", "on_test_begin", "on_test_end", "on_predict_begin", "on_predict_end")


class Hooks(Callback):
    """Every hook call as ``[hook, epoch or batch or None, sorted log keys]``, and the logs themselves."""

    def __init__(self):
        super().__init__()
        self.events, self.logs = [], []

    def _record(self, name, index, logs):
        assert isinstance(logs, dict), f"{name} received logs={logs!r}, not a dict"
        self.events.append([name, index, sorted(logs)])
        self.logs.append((name, index, dict(logs)))

    def of(self, hook):
        return [logs for name, _, logs in self.logs if name == hook]


for _name in INDEXED:
    setattr(Hooks, _name, lambda self, index, logs=None, _n=_name: self._record(_n, index, logs))
for _name in PLAIN:
    setattr(Hooks, _name, lambda self, logs=None, _n=_name: self._record(_n, None, logs))


def fit(callbacks, epochs=2, validation=True, model=None, **kwargs):
    x, y = toy_data(48)
    model = model or toy_model()
    val = toy_data(20, seed=1) if validation else None
    history = model.fit(x, y, batch_size=16, epochs=epochs, validation_data=val, verbose=kwargs.pop("verbose", 0),
                        callbacks=callbacks, **kwargs)
    return model, history


# -- every hook, as Keras calls it -----------------------------------------------------------------
def test_fit_calls_every_hook_as_keras_does():
    hooks = Hooks()
    _, history = fit([hooks])
    assert hooks.events == KERAS["fit"]
    assert hooks.params == KERAS["fit_params"] == history.params


def test_fit_logs_are_keras_dicts_of_floats():
    """on_epoch_end: the epoch's means and val_*; on_test_end: the validation's results unprefixed; on_train_end:
    the last epoch's logs; batch logs: running means (the last batch's equal the epoch's)."""
    hooks = Hooks()
    _, history = fit([hooks])
    epoch_ends = hooks.of("on_epoch_end")
    assert [sorted(logs) for logs in epoch_ends] == [["accuracy", "loss", "val_accuracy", "val_loss"]] * 2
    for epoch, logs in enumerate(epoch_ends):
        assert all(type(v) is float for v in logs.values())
        assert logs == {key: history.history[key][epoch] for key in history.history}
    test_ends = hooks.of("on_test_end")
    assert test_ends == [{"accuracy": e["val_accuracy"], "loss": e["val_loss"]} for e in epoch_ends]
    assert hooks.of("on_train_end") == [epoch_ends[-1]]
    last_batches = [logs for name, batch, logs in hooks.logs if name == "on_train_batch_end" and batch == 2]
    assert last_batches == [{"accuracy": e["accuracy"], "loss": e["loss"]} for e in epoch_ends]
    assert all(logs == {} for name, _, logs in hooks.logs if name.endswith("_begin"))


def test_evaluate_calls_the_test_hooks_as_keras_does():
    model, _ = fit([], epochs=1)
    hooks = Hooks()
    xv, yv = toy_data(20, seed=1)
    results = model.evaluate(xv, yv, batch_size=16, verbose=0, callbacks=[hooks], return_dict=True)
    assert hooks.events == KERAS["evaluate"]
    assert hooks.params == KERAS["evaluate_params"]
    assert hooks.of("on_test_end") == [results]


def test_predict_calls_the_predict_hooks_as_keras_does():
    model, _ = fit([], epochs=1)
    hooks = Hooks()
    xv, _ = toy_data(20, seed=1)
    predictions = model.predict(xv, batch_size=16, verbose=0, callbacks=[hooks])
    assert hooks.events == KERAS["predict"]
    assert hooks.params == KERAS["predict_params"]
    outputs = [logs["outputs"] for logs in hooks.of("on_predict_batch_end")]
    np.testing.assert_array_equal(np.concatenate(outputs), predictions)


def test_learning_rate_callbacks_add_the_key_keras_adds():
    hooks = Hooks()
    model, history = fit([LearningRateScheduler(lambda epoch, lr: lr * 0.5), hooks], epochs=1)
    assert [e for e in hooks.events if e[0] == "on_epoch_end"] == KERAS["fit_with_scheduler_epoch_end"]
    h = history.history
    assert hooks.of("on_epoch_end") == [{"accuracy": h["accuracy"][0], "learning_rate": 0.005, "loss": h["loss"][0],
                                         "val_accuracy": h["val_accuracy"][0], "val_loss": h["val_loss"][0]}]
    assert model.history is history and history.epoch == [0]


# -- CallbackList ----------------------------------------------------------------------------------
def test_callback_list_adds_history_and_progbar_after_the_given_callbacks():
    model, mine = toy_model(), Hooks()
    cbs = CallbackList([mine, [LambdaCallback()]], add_history=True, add_progbar=True, model=model,
                       verbose=2, epochs=3, steps=5)
    assert [type(cb) for cb in cbs.callbacks] == [Hooks, LambdaCallback, History, ProgbarLogger]
    assert model.history is cbs.history and all(cb.model is model for cb in cbs.callbacks)
    assert mine.params == {"verbose": 2, "epochs": 3, "steps": 5}
    given = History()
    assert CallbackList([given], add_history=True).history is given
    assert [type(cb) for cb in CallbackList([]).callbacks] == []


def test_callback_list_refuses_what_is_not_a_callback():
    with pytest.raises(TypeError, match=r"CallbackList: callbacks must be convscope.callbacks.Callback objects .*"
                                        r"received an object of type function"):
        CallbackList([lambda epoch, logs: None])
    with pytest.raises(TypeError, match=r"type str"):
        toy_model().fit(*toy_data(16), epochs=1, verbose=0, callbacks=["EarlyStopping"])


def test_callback_list_gives_every_callback_the_same_new_dict_of_floats():
    seen = []

    class Adds(Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["extra"] = 1

    class Sees(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(logs)

    cbs = CallbackList([Adds(), Sees()])
    original = {"loss": np.float32(0.5), "nested": {"b": np.array(2.0), "a": 3}, "name": "x"}
    cbs.on_epoch_end(0, original)
    assert seen == [{"a": 3.0, "b": 2.0, "extra": 1, "loss": 0.5, "name": "x"}]
    assert list(seen[0]) == ["loss", "name", "a", "b", "extra"]  # sorted, "nested" flattened in its place (Keras)
    assert "extra" not in original and all(type(seen[0][k]) is float for k in ("a", "b", "loss"))
    cbs.on_train_begin(None)
    cbs.on_epoch_end(1)
    assert seen[-1] == {"extra": 1}


def test_on_batch_hooks_are_aliases_of_the_train_batch_hooks():
    calls = []

    class Old(Callback):
        def on_batch_begin(self, batch, logs=None):
            calls.append(("begin", batch, dict(logs)))

        def on_batch_end(self, batch, logs=None):
            calls.append(("end", batch, sorted(logs)))

    fit([Old()], epochs=1)
    assert calls == [(kind, b, {} if kind == "begin" else ["accuracy", "loss"]) for b in range(3)
                     for kind in ("begin", "end")]


def test_the_model_property_is_the_model_set():
    cb = Callback()
    assert cb.model is None and cb.params is None
    model = toy_model()
    cb.set_model(model)
    assert cb.model is model


# -- ProgbarLogger ---------------------------------------------------------------------------------
LINE = r"3/3 - \d+s - \d+(ms|us|s)/step - accuracy: \d\.\d{4} - loss: \d\.\d{4}"


def test_progbar_verbose_2_prints_keras_lines(capsys):
    _, history = fit([], epochs=2, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    assert re.fullmatch(LINE + r" - val_accuracy: \d\.\d{4} - val_loss: \d\.\d{4}", lines[1]), lines[1]
    assert lines[3].endswith(f"val_loss: {history.history['val_loss'][1]:.4f}")


def test_progbar_prints_no_epoch_header_for_one_epoch(capsys):
    fit([], epochs=1, validation=False, verbose=2)
    out = capsys.readouterr().out
    assert re.fullmatch(LINE + "\n", out), out


def test_progbar_shows_evaluate_and_predict(capsys):
    model, _ = fit([], epochs=1)
    xv, yv = toy_data(20, seed=1)
    loss, accuracy = model.evaluate(xv, yv, batch_size=16, verbose=2)
    out = capsys.readouterr().out
    assert re.fullmatch(r"2/2 - \d+s - \d+(ms|us|s)/step - accuracy: \d\.\d{4} - loss: \d\.\d{4}\n", out), out
    assert out.endswith(f"accuracy: {accuracy:.4f} - loss: {loss:.4f}\n")
    model.predict(xv, batch_size=16, verbose=2)
    out = capsys.readouterr().out
    assert re.fullmatch(r"2/2 - \d+s - \d+(ms|us|s)/step\n", out), out


def test_progbar_verbose_1_draws_a_bar_on_standard_output(capsys, monkeypatch):
    pytest.importorskip("tqdm")
    model, _ = fit([], epochs=1)
    xv, yv = toy_data(20, seed=1)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)   # the bar is for terminals
    loss, accuracy = model.evaluate(xv, yv, batch_size=16, verbose=1)
    captured = capsys.readouterr()
    assert "\r" in captured.out and "2/2" in captured.out   # drawn and cleared by tqdm, then the line
    assert captured.out.endswith(f"accuracy: {accuracy:.4f} - loss: {loss:.4f}\n")
    assert captured.err == ""


def test_format_logs_writes_small_values_as_keras():
    assert callbacks.format_logs({"val_loss": 0.5, "loss": 0.00012345, "accuracy": 1}) == \
        "accuracy: 1.0000 - loss: 1.2345e-04 - val_loss: 0.5000"


# -- ModelCheckpoint -------------------------------------------------------------------------------
def test_model_checkpoint_save_freq_counts_batches_across_epochs_as_keras(tmp_path):
    fit([ModelCheckpoint(tmp_path / "e{epoch}-b{batch}.keras", save_freq=2)], validation=False)
    assert sorted(os.listdir(tmp_path)) == KERAS["checkpoint_save_freq_2_files"]
    assert convscope.load_model(tmp_path / "e2-b3.keras").count_params() == toy_model().count_params()


def test_model_checkpoint_best_only_messages(tmp_path, capsys):
    path = tmp_path / "best.convscope"
    checkpoint = ModelCheckpoint(path, monitor="score", mode="min", save_best_only=True, verbose=1,
                                 initial_value_threshold=4.5)
    fit([Script("score", [5, 4, 4.2]), checkpoint], epochs=3, validation=False)
    assert capsys.readouterr().out == (
        "\nEpoch 1: score did not improve from 4.50000\n"
        f"\nEpoch 2: score improved from 4.50000 to 4.00000, saving model to {path}\n"
        f"\nEpoch 2: finished saving model to {path}\n"
        "\nEpoch 3: score did not improve from 4.00000\n"
    )
    assert checkpoint.best == 4


def test_model_checkpoint_weights_only(tmp_path):
    hooks = Hooks()
    model, _ = fit([ModelCheckpoint(tmp_path / "w-{epoch}.weights.h5", save_weights_only=True), hooks], epochs=2)
    fresh = toy_model()
    fresh.load_weights(tmp_path / "w-2.weights.h5")
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert sorted(os.listdir(tmp_path)) == ["w-1.weights.h5", "w-2.weights.h5"]


def test_model_checkpoint_best_only_without_the_monitor_warns_and_saves(tmp_path):
    with pytest.warns(UserWarning, match="Can save best model only with val_loss available."):
        fit([ModelCheckpoint(tmp_path / "m.convscope", save_best_only=True)], epochs=1, validation=False)
    assert os.listdir(tmp_path) == ["m.convscope"]


def test_model_checkpoint_format_errors(tmp_path):
    with pytest.raises(KeyError) as error:
        fit([ModelCheckpoint(tmp_path / "m-{nope}.keras")], epochs=1)
    assert error.value.args[0] == f'Failed to format this callback filepath: "{tmp_path / "m-{nope}.keras"}". ' \
                                  "Reason: 'nope'"
    (tmp_path / "dir.keras").mkdir()
    with pytest.raises(OSError, match="Please specify a non-directory filepath for ModelCheckpoint"):
        fit([ModelCheckpoint(tmp_path / "dir.keras")], epochs=1)


# -- ReduceLROnPlateau -----------------------------------------------------------------------------
def test_reduce_lr_on_plateau_follows_keras_step_by_step():
    spec = KERAS["reduce_lr_on_plateau"]
    reduce = ReduceLROnPlateau(monitor="score", factor=spec["factor"], patience=spec["patience"],
                               cooldown=spec["cooldown"], min_lr=spec["min_lr"], mode="min", min_delta=0)
    model = toy_model(convscope.optimizers.Adam(learning_rate=spec["initial"]))
    _, history = fit([Script("score", spec["scores"]), reduce], epochs=len(spec["scores"]), validation=False,
                     model=model)
    # Keras's rates are float32 variables; convscope's are Python floats.
    np.testing.assert_array_equal(np.float32(history.history["learning_rate"]), np.float32(spec["rates"]))
    assert model.optimizer.learning_rate == spec["min_lr"]


def test_reduce_lr_on_plateau_message_and_errors(capsys):
    fit([Script("score", [1, 1]), ReduceLROnPlateau(monitor="score", mode="min", patience=1, verbose=1)],
        validation=False)
    assert capsys.readouterr().out == "\nEpoch 2: ReduceLROnPlateau reducing learning rate to 0.001.\n"
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau does not support a factor >= 1.0. Received factor=2"):
        ReduceLROnPlateau(factor=2)
    with pytest.raises(ValueError, match=r'ReduceLROnPlateau: argument "cooldown" must be an int >= 0, received -1'):
        ReduceLROnPlateau(cooldown=-1)
    with pytest.raises(ValueError, match=r'ReduceLROnPlateau: argument "min_lr" must be >= 0, received -0.1'):
        ReduceLROnPlateau(min_lr=-0.1)
    with pytest.warns(UserWarning, match="Learning rate reduction is conditioned on metric `val_loss` which is not "
                                         "available. Available metrics are: accuracy,loss,learning_rate."):
        fit([ReduceLROnPlateau()], epochs=1, validation=False)
    scheduled = toy_model(convscope.optimizers.SGD(convscope.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)))
    with pytest.raises(TypeError, match="LearningRateSchedule"):
        fit([Script("score", [1, 1]), ReduceLROnPlateau(monitor="score", mode="min", patience=1)], model=scheduled)


# -- LearningRateScheduler -------------------------------------------------------------------------
def test_learning_rate_scheduler_sets_the_rate_each_epoch(capsys):
    rates = []
    watch = LambdaCallback(on_train_batch_begin=lambda batch, logs: rates.append(model.optimizer.learning_rate))
    model = toy_model(convscope.optimizers.SGD(learning_rate=0.1))
    _, history = fit([LearningRateScheduler(lambda epoch, lr: lr / (epoch + 1), verbose=1), watch], epochs=3,
                     validation=False, model=model)
    assert history.history["learning_rate"] == [0.1, 0.05, 0.05 / 3]
    assert rates == [0.1] * 3 + [0.05] * 3 + [0.05 / 3] * 3
    assert capsys.readouterr().out == "".join(f"\nEpoch {e + 1}: LearningRateScheduler setting learning rate to {r}.\n"
                                              for e, r in enumerate([0.1, 0.05, 0.05 / 3]))


def test_learning_rate_scheduler_takes_a_one_argument_schedule_and_checks_the_output():
    _, history = fit([LearningRateScheduler(lambda epoch: 0.001 * (epoch + 1))], epochs=2, validation=False)
    assert history.history["learning_rate"] == [0.001, 0.002]
    _, history = fit([LearningRateScheduler(lambda epoch, lr: np.float32(0.25))], epochs=1, validation=False)
    assert history.history["learning_rate"] == [0.25]
    with pytest.raises(ValueError, match="The output of the `schedule` function should be a float. Got: 1"):
        fit([LearningRateScheduler(lambda epoch, lr: 1)], epochs=1)
    with pytest.raises(TypeError, match='LearningRateScheduler: argument "schedule" must be a function'):
        LearningRateScheduler(0.1)


# -- CSVLogger -------------------------------------------------------------------------------------
def read_rows(path):
    return path.read_bytes().decode().split("\r\n")


def test_csv_logger_writes_keras_columns_and_values(tmp_path):
    path = tmp_path / "log.csv"
    _, history = fit([CSVLogger(path)], epochs=2)
    rows = read_rows(path)
    assert rows[0] + "\r\n" == KERAS["csv_header_with_validation"]
    h = history.history
    assert rows[1:] == [f"{e},{h['accuracy'][e]!r},{h['loss'][e]!r},{h['val_accuracy'][e]!r},{h['val_loss'][e]!r}"
                        for e in range(2)] + [""]


def test_csv_logger_adds_val_columns_without_validation_and_appends(tmp_path):
    path = tmp_path / "log.csv"
    _, history = fit([CSVLogger(path, separator=";")], epochs=1, validation=False)
    first = read_rows(path)
    assert first[0] + "\r\n" == KERAS["csv_header_without_validation"].replace(",", ";")
    assert first[1] == f"0;{history.history['accuracy'][0]!r};{history.history['loss'][0]!r};NA;NA"
    fit([CSVLogger(path, separator=";", append=True)], epochs=2, initial_epoch=1, validation=False)
    rows = read_rows(path)
    assert rows[:2] == first[:2] and rows[2].startswith("1;") and rows[3:] == [""]
    with pytest.raises(ValueError, match='CSVLogger: argument "separator" must be one character'):
        CSVLogger(path, separator="::")


# -- LambdaCallback --------------------------------------------------------------------------------
def test_lambda_callback_runs_each_given_function_at_its_hook():
    calls = []
    cb = LambdaCallback(
        on_train_begin=lambda logs: calls.append(("train_begin", logs)),
        on_epoch_begin=lambda epoch, logs: calls.append(("epoch_begin", epoch)),
        on_train_batch_end=lambda batch, logs: calls.append(("batch_end", batch, sorted(logs))),
        on_test_end=lambda logs: calls.append(("test_end", sorted(logs))),
        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, sorted(logs))),
        on_train_end=lambda logs: calls.append(("train_end", sorted(logs))),
    )
    fit([cb], epochs=1)
    keys = ["accuracy", "loss", "val_accuracy", "val_loss"]
    batches = [("batch_end", b, ["accuracy", "loss"]) for b in range(3)]
    assert calls == [("train_begin", {}), ("epoch_begin", 0), *batches,
                     ("test_end", ["accuracy", "loss"]), ("epoch_end", 0, keys), ("train_end", keys)]


def test_lambda_callback_refuses_unknown_hooks_and_non_functions():
    with pytest.raises(TypeError, match=r"LambdaCallback: unknown hook\(s\) on_epoch_finish; the hooks are"):
        LambdaCallback(on_epoch_finish=print)
    with pytest.raises(TypeError, match='LambdaCallback: argument "on_epoch_end" must be a function, received 3'):
        LambdaCallback(on_epoch_end=3)


# -- BackupAndRestore ------------------------------------------------------------------------------
class Interrupt(Callback):
    def __init__(self, after_epoch):
        super().__init__()
        self.after_epoch = after_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.after_epoch:
            raise RuntimeError("interrupted")


def dropout_model():
    """The toy model with dropout, so that resuming must also continue the random stream exactly."""
    model = convscope.Sequential([
        convscope.Input(shape=(8, 8, 1)), convscope.layers.Conv2D(2, 3, activation="relu"),
        convscope.layers.Flatten(), convscope.layers.Dropout(0.3), convscope.layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer=convscope.optimizers.Adam(learning_rate=0.01), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_backup_and_restore_resumes_bit_for_bit(tmp_path):
    x, y = toy_data(48)
    utils.set_random_seed(1)
    reference = dropout_model()
    reference.fit(x, y, batch_size=16, epochs=4, verbose=0)

    utils.set_random_seed(1)
    model = dropout_model()
    backup = BackupAndRestore(tmp_path / "backup")
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=[backup, Interrupt(after_epoch=1)])
    assert sorted(os.listdir(tmp_path / "backup")) == ["latest.convscope", "training_metadata.json"]
    assert json.loads((tmp_path / "backup" / "training_metadata.json").read_text())["epoch"] == 2
    # A new process: a new model (other initial weights, a fresh optimizer) and another random state.
    backend.set_seed(12345)
    model = dropout_model()
    history = model.fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=[BackupAndRestore(tmp_path / "backup")])
    assert history.epoch == [2, 3]
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.optimizer.iterations == reference.optimizer.iterations == 12
    assert not (tmp_path / "backup").exists()  # delete_checkpoint=True
    assert model._initial_epoch is None


def test_backup_and_restore_double_checkpoint_falls_back_on_the_previous(tmp_path):
    folder = tmp_path / "backup"
    backup = BackupAndRestore(folder, double_checkpoint=True, delete_checkpoint=False)
    model = toy_model()
    with pytest.raises(RuntimeError):
        fit([backup, Interrupt(after_epoch=2)], epochs=4, validation=False, model=model)
    assert sorted(os.listdir(folder)) == ["latest.convscope", "latest.convscope.bkp", "training_metadata.json",
                                          "training_metadata.json.bkp"]
    (folder / "latest.convscope").write_bytes(b"cut short")
    _, history = fit([backup], epochs=4, validation=False, model=model)
    assert history.epoch == [2, 3]  # the previous backup: after epoch 2 of 1..3
    assert folder.exists()  # delete_checkpoint=False


def test_backup_and_restore_batch_backups_and_errors(tmp_path):
    backup = BackupAndRestore(tmp_path / "b", save_freq=2, delete_checkpoint=False)
    fit([backup], epochs=1, validation=False)
    assert json.loads((tmp_path / "b" / "training_metadata.json").read_text())["batch"] == 1
    with pytest.raises(ValueError, match="Empty `backup_dir` argument passed"):
        BackupAndRestore("")
    with pytest.raises(ValueError, match=r"Invalid value for argument `save_freq`. Received: save_freq='batch'"):
        BackupAndRestore(tmp_path, save_freq="batch")
    # fit builds the model before on_train_begin; a custom loop may not have.
    unbuilt = CallbackList([BackupAndRestore(tmp_path / "c")], model=convscope.Sequential([convscope.layers.Dense(2)]))
    with pytest.raises(ValueError, match="To use the BackupAndRestore callback, your model must be built"):
        unbuilt.on_train_begin()


# -- TensorBoard -----------------------------------------------------------------------------------
def read_events(folder):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    events = accumulator.EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    events.Reload()
    return events


def scalars(events, tag):
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_tensorboard_writes_keras_tags(tmp_path):
    pytest.importorskip("tensorboardX")
    model, history = fit([TensorBoard(tmp_path, histogram_freq=1, write_images=True)], epochs=2)
    train, val = read_events(tmp_path / "train"), read_events(tmp_path / "validation")
    h = history.history
    assert sorted(train.Tags()["scalars"]) == ["epoch_accuracy", "epoch_learning_rate", "epoch_loss"]
    assert scalars(train, "epoch_loss") == [(e, pytest.approx(h["loss"][e], rel=1e-6)) for e in range(2)]
    assert scalars(train, "epoch_learning_rate") == [(0, pytest.approx(0.01)), (1, pytest.approx(0.01))]
    assert sorted(val.Tags()["scalars"]) == ["epoch_accuracy", "epoch_loss", "evaluation_accuracy_vs_iterations",
                                             "evaluation_loss_vs_iterations"]
    assert scalars(val, "epoch_loss") == [(e, pytest.approx(h["val_loss"][e], rel=1e-6)) for e in range(2)]
    assert scalars(val, "evaluation_loss_vs_iterations") == [(3 * (e + 1), pytest.approx(h["val_loss"][e], rel=1e-6))
                                                             for e in range(2)]
    weights = [p.path for layer in model.layers for p in layer.weights]
    assert sorted(train.Tags()["histograms"]) == sorted(f"{w}/histogram" for w in weights)
    kernel = model.layers[-1].weights[0]
    last = train.Histograms(f"{kernel.path}/histogram")[-1]
    assert last.step == 1 and last.histogram_value.num == kernel.value.size
    assert last.histogram_value.sum == pytest.approx(float(kernel.value.sum()), rel=1e-5)
    # Images: the biases and the dense kernel; the 3x3x1x2 convolution kernel as its 2 filters.
    assert sorted(train.Tags()["images"]) == sorted(f"{w}/image" for w in weights)


def test_tensorboard_batch_level_logs(tmp_path):
    pytest.importorskip("tensorboardX")
    hooks = Hooks()
    fit([TensorBoard(tmp_path, update_freq=2, write_steps_per_second=True), hooks], epochs=2, validation=False)
    train = read_events(tmp_path / "train")
    batch_logs = [logs for name, _, logs in hooks.logs if name == "on_train_batch_end"]
    assert scalars(train, "batch_loss") == [(step, pytest.approx(batch_logs[step - 1]["loss"], rel=1e-6))
                                            for step in (2, 4, 6)]
    assert [step for step, _ in scalars(train, "batch_steps_per_second")] == [2, 4, 6]
    assert [step for step, _ in scalars(train, "epoch_steps_per_second")] == [0, 1]
    assert not (tmp_path / "validation").exists()


def test_tensorboard_arguments_and_missing_library(tmp_path, monkeypatch):
    pytest.importorskip("tensorboardX")
    with pytest.raises(ValueError, match='TensorBoard: argument "update_freq" must be "epoch", "batch" or a positive'):
        TensorBoard(tmp_path, update_freq=0)
    with pytest.raises(ValueError, match="TensorBoard: profiling is not available in convscope"):
        TensorBoard(tmp_path, profile_batch=2)
    with pytest.raises(ValueError, match='TensorBoard: argument "histogram_freq" must be an int >= 0, received 0.5'):
        TensorBoard(tmp_path, histogram_freq=0.5)
    with pytest.raises(ValueError, match="TensorBoard: convscope has no embedding projector"):
        TensorBoard(tmp_path, embeddings_freq=1)
    assert TensorBoard(tmp_path, update_freq="batch").update_freq == 1
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"tensorboardX, which is not installed: "
                                          r"pip install 'convscope\[tensorboard\]'"):
        TensorBoard(tmp_path)


def test_weight_images_follow_keras_layout():
    image = callbacks.tensorboard.weight_image
    assert image(np.zeros(5)).shape == (1, 5, 1, 1)
    assert image(np.zeros((6, 2))).shape == (1, 2, 6, 1)
    assert image(np.zeros((3, 3, 1, 4))).shape == (4, 3, 3, 1)
    assert image(np.zeros((3, 3, 2, 8))) is None
    assert image(np.zeros((3, 3, 2, 4))).shape == (3, 3, 2, 4)  # Keras shows it as 3 RGBA images


# -- EarlyStopping and TerminateOnNaN: Keras 3's messages and options -------------------------------
def test_early_stopping_checks_its_counts():
    with pytest.raises(ValueError, match=r'EarlyStopping: argument "patience" must be an int >= 0, received 1.5'):
        EarlyStopping(patience=1.5)
    with pytest.raises(TypeError, match=r'EarlyStopping: argument "monitor" must be a log key \(str\), received 3'):
        EarlyStopping(monitor=3)


def test_early_stopping_restores_at_the_end_with_keras_message(capsys):
    stop = EarlyStopping(monitor="score", mode="min", patience=5, restore_best_weights=True, verbose=1)
    best = []
    keep = LambdaCallback(on_epoch_end=lambda epoch, logs: best.append(model.get_weights()) if epoch == 1 else None)
    model = toy_model()
    fit([Script("score", [3, 1, 2]), stop, keep], epochs=3, validation=False, model=model)
    assert capsys.readouterr().out == "Restoring model weights from the end of the best epoch: 2.\n"
    for a, b in zip(model.get_weights(), best[0]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_terminate_on_nan_raise_error():
    class Poison(Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.model.layers[0].kernel.value[...] = np.nan

    ended = []
    with pytest.raises(RuntimeError, match=r"NaN or Inf loss encountered at batch 1. Loss value: nan. "
                                           r"Terminating training immediately."):
        fit([Poison(), TerminateOnNaN(raise_error=True), LambdaCallback(on_train_end=ended.append)], epochs=1)
    assert ended == []
    with pytest.raises(TypeError, match='TerminateOnNaN: argument "raise_error" must be a bool'):
        TerminateOnNaN(raise_error="yes")
