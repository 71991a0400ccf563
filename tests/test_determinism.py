"""Determinism (issue #8): on one machine and install, the same seed and data give bit-identical weights,
through ``fit`` (compiled kernels on and off) and through ``convscope train``. Resuming a run is
bit-identical too; ``tests/test_cli.py`` checks that (after SIGKILL and after Ctrl-C)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import convscope
from convscope import layers, runs
from convscope.datasets import mnist_sample
from convscope.arraymath import jit


@pytest.fixture(scope="module")
def data():
    (x, y), _ = mnist_sample.load_data()
    return runs.prepare(x[:256], y[:256])


def train(data, seed, compiled):
    """A small convnet (initial weights, dropout masks and shuffles all come from the seeded generator),
    Adam, 2 epochs of 4 batches."""
    previous = jit.enabled()
    jit.set_enabled(compiled)
    try:
        convscope.utils.set_random_seed(seed)
        layers.clear_session()
        model = convscope.Sequential([
            convscope.Input(shape=(28, 28, 1)), layers.Conv2D(8, 3, activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(8, 3, activation="relu"), layers.MaxPooling2D(2), layers.Flatten(), layers.Dropout(0.5),
            layers.Dense(10, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(*data, batch_size=64, epochs=2, verbose=0)
    finally:
        jit.set_enabled(previous)
    return model.get_weights()


def identical(a, b) -> bool:
    return len(a) == len(b) and all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("compiled", [
    pytest.param(True, id="compiled", marks=pytest.mark.skipif(jit.numba is None, reason="needs Numba")),
    pytest.param(False, id="numpy")])
def test_fit_with_the_same_seed_is_bit_identical(data, compiled):
    first, second = train(data, 3, compiled), train(data, 3, compiled)
    assert identical(first, second), [float(np.abs(x - y).max()) for x, y in zip(first, second)]
    other = train(data, 4, compiled)
    assert not any(np.array_equal(x, y) for x, y in zip(first[::2], other[::2])), "the seed must matter"


def cli_train(run_dir, seed, tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), CONVSCOPE_DATA=str(tmp_path / "no-data"),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "convscope.cli", "train", "--dataset", "mnist-sample", "--seed",
                             str(seed), "--limit", "320", "--batch-size", "64", "--epochs", "2", "--verbose", "0",
                             "--out", str(run_dir)], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return run_dir


def test_train_command_with_the_same_seed_is_bit_identical(tmp_path):
    a, b = cli_train(tmp_path / "a", 7, tmp_path), cli_train(tmp_path / "b", 7, tmp_path)
    for name in (runs.FINAL_MODEL, runs.CHECKPOINT):
        assert identical(convscope.load_model(a / name).get_weights(), convscope.load_model(b / name).get_weights())
    assert (a / "history.json").read_text() == (b / "history.json").read_text()
    for name in sorted(os.listdir(a / "filters")):
        with np.load(a / "filters" / name) as fa, np.load(b / "filters" / name) as fb:
            assert sorted(fa.files) == sorted(fb.files) and all(np.array_equal(fa[k], fb[k]) for k in fa.files)
