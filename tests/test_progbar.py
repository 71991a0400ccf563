"""ProgbarLogger's layout: a terminal's width kept (live bar and epoch line), plain lines elsewhere, and a line at
least every HEARTBEAT_SECONDS without a live bar. Driven through the callback's hooks with a fake clock."""

import io
import os
import re
import sys

import numpy as np
import pytest

import convscope
from convscope import cli, layers
from convscope.arraymath import jit
from convscope.callbacks import Callback, ProgbarLogger, progbar

STEPS = 422
BATCH_LOGS = {"accuracy": 0.9123, "loss": 0.2358}
EPOCH_LOGS = {**BATCH_LOGS, "val_accuracy": 0.9612, "val_loss": 0.1234}
METRICS = list(EPOCH_LOGS)


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def fake_clock(monkeypatch):
    """progbar's clock, moved on by hand: ``fake_clock.now``."""

    class Clock:
        now = 1000.0

        def __call__(self):
            return self.now

    clock = Clock()
    monkeypatch.setattr(progbar, "clock", clock)
    return clock


def run_epoch(verbose, clock, batches=STEPS, seconds_per_batch=0.035, epochs=2):
    """One epoch of fit's hooks: ``batches`` batches, then the epoch's logs with validation."""
    logger = ProgbarLogger()
    logger.set_params({"verbose": verbose, "epochs": epochs, "steps": batches})
    logger.on_train_begin()
    logger.on_epoch_begin(0)
    for batch in range(batches):
        clock.now += seconds_per_batch
        logger.on_train_batch_end(batch, BATCH_LOGS)
    logger.on_epoch_end(0, EPOCH_LOGS)
    return logger


@pytest.mark.parametrize("width, lines", [(80, 2), (120, 1)])
def test_the_epoch_line_on_a_terminal_keeps_every_metric_within_the_width(width, lines, monkeypatch, fake_clock):
    pytest.importorskip("tqdm")
    monkeypatch.setenv("COLUMNS", str(width))
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    run_epoch(1, fake_clock)
    # The live bar redraws after "\r" and is cleared when the epoch ends; the epoch's line comes last.
    epoch_line = screen.getvalue().rsplit("\r", 1)[1].splitlines()
    assert len(epoch_line) == lines, epoch_line
    assert epoch_line[0].startswith(f"{STEPS}/{STEPS} - 15s - 35ms/step - accuracy: 0.9123 - loss: 0.2358")
    assert all(line.startswith("  - ") for line in epoch_line[1:])
    assert max(map(len, epoch_line)) <= width
    text = "\n".join(epoch_line)
    assert all(f"{name}: " in text for name in METRICS)
    assert screen.getvalue().startswith("Epoch 1/2\n")


def test_wrap_parts_cuts_only_between_parts():
    parts = ["422/422", "15s", "35ms/step", "accuracy: 0.9123", "loss: 0.2358", "val_accuracy: 0.9612"]
    assert progbar.wrap_parts(parts, 40) == [
        "422/422 - 15s - 35ms/step", "  - accuracy: 0.9123 - loss: 0.2358", "  - val_accuracy: 0.9612"]
    assert progbar.wrap_parts(parts, 200) == [" - ".join(parts)]
    assert progbar.wrap_parts(["1/1", "a_metric_name_longer_than_the_line: 0.5000"], 20) == [
        "1/1", "  - a_metric_name_longer_than_the_line: 0.5000"]  # kept whole: the terminal folds it


@pytest.mark.parametrize("width, shown, dropped", [(80, ["accuracy", "loss"], []), (120, ["accuracy", "loss"], []),
                                                   (60, ["accuracy"], ["loss"])])
def test_the_live_bar_fits_the_width(width, shown, dropped, monkeypatch):
    tqdm = pytest.importorskip("tqdm").tqdm
    bar = tqdm(total=STEPS, file=io.StringIO(), leave=False)
    progbar._draw(bar, 120, BATCH_LOGS, width)
    line = str(bar)   # the line as tqdm draws it, trimmed at its ncols
    bar.close()
    assert line.startswith("120/422 ") and len(line) <= width
    # Nothing was trimmed off: the last metric shown is whole.
    assert all(f"{name}: 0." in line for name in shown) and re.search(r"\d\.\d{4}$", line), line
    assert not any(f"{name}:" in line for name in dropped)


def test_without_a_width_the_terminal_is_taken_as_80_columns(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(os, "get_terminal_size", lambda *args: os.terminal_size((0, 0)))   # a tty that says 0
    assert progbar.columns() == progbar.DEFAULT_COLUMNS == 80

    def no_terminal(*args):
        raise OSError("not a terminal")

    monkeypatch.setattr(os, "get_terminal_size", no_terminal)
    assert progbar.columns() == 80
    monkeypatch.setenv("COLUMNS", "132")
    assert progbar.columns() == 132


def test_a_pipe_gets_a_line_every_10_seconds_and_the_whole_epoch_line(monkeypatch, capsys, fake_clock):
    monkeypatch.setenv("COLUMNS", "40")   # ignored: a pipe's lines are never cut
    run_epoch(1, fake_clock, batches=12, seconds_per_batch=3.0)
    assert capsys.readouterr().out.splitlines() == [
        "Epoch 1/2",
        "  batch  4/12 - 12s - accuracy: 0.9123 - loss: 0.2358",
        "  batch  8/12 - 24s - accuracy: 0.9123 - loss: 0.2358",
        "  batch 12/12 - 36s - accuracy: 0.9123 - loss: 0.2358",
        "12/12 - 36s - 3s/step - accuracy: 0.9123 - loss: 0.2358 - val_accuracy: 0.9612 - val_loss: 0.1234",
    ]


def test_a_pipe_is_silent_within_10_seconds_and_verbose_2_is_one_line_per_epoch(capsys, fake_clock):
    run_epoch(1, fake_clock, batches=9, seconds_per_batch=1.0, epochs=1)
    assert capsys.readouterr().out.splitlines() == [
        "9/9 - 9s - 1s/step - accuracy: 0.9123 - loss: 0.2358 - val_accuracy: 0.9612 - val_loss: 0.1234"]
    run_epoch(2, fake_clock, batches=12, seconds_per_batch=3.0, epochs=1)
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "12/12 - 36s - 3s/step - accuracy: 0.9123 - loss: 0.2358 - val_accuracy: 0.9612 - val_loss: 0.1234"]


def test_a_terminal_without_tqdm_gets_the_plain_lines(monkeypatch, fake_clock):
    monkeypatch.setitem(sys.modules, "tqdm", None)   # as when the "progress" extra is not installed
    monkeypatch.setenv("COLUMNS", "60")
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    run_epoch(1, fake_clock, batches=12, seconds_per_batch=3.0)
    lines = screen.getvalue().splitlines()
    assert "\r" not in screen.getvalue() and lines[1] == "  batch  4/12 - 12s - accuracy: 0.9123 - loss: 0.2358"
    assert lines[-2:] == ["12/12 - 36s - 3s/step - accuracy: 0.9123 - loss: 0.2358",
                          "  - val_accuracy: 0.9612 - val_loss: 0.1234"]


def test_fit_auto_is_verbose_1_as_in_keras_and_prints_plain_lines_to_a_pipe(capsys):
    seen = {}

    class Params(Callback):
        def on_train_begin(self, logs=None):
            seen.update(self.params)

    model = convscope.Sequential([convscope.Input(shape=(4,)), layers.Dense(2, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    x, y = np.random.default_rng(0).normal(size=(32, 4)).astype("float32"), np.arange(32) % 2
    model.fit(x, y, batch_size=16, epochs=2, callbacks=[Params()])
    assert seen["verbose"] == 1
    out = capsys.readouterr().out
    assert "\r" not in out and re.fullmatch(r"Epoch 1/2\n2/2 - .*loss: \d\.\d{4}\nEpoch 2/2\n2/2 - .*\n", out), out


def test_train_reports_compile_time_apart_from_training_time(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(jit, "compile_seconds", lambda: 0.5)
    args = ["train", "--dataset", "mnist-sample", "--limit", "64", "--batch-size", "64", "--epochs", "1",
            "--verbose", "0", "--out", str(tmp_path / "run")]
    assert cli.main(args) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("Training time"))
    assert re.fullmatch(r"Training time: -?\d+\.\d s \(and 0\.5 s compiling kernels, first run only\); model saved "
                        r"to .*model\.convscope", line), line
