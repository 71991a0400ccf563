"""Every lesson on ten seeds and three models, in fast mode: 10 x 3 x 9 = 270 runs, every one passing.

A check that passes by chance on one draw would fail on another: each seed trains each model afresh
(its weights and the order of its batches drawn from that seed) and gives the lessons that seed for
their own draws (the networks they train, their random weights and gradients). The three models:
the Keras MNIST convnet (the lessons' default model), LeNet-5 (tanh, average pooling, "same"
padding, three Dense layers) and a small functional graph (a strided "same" stem, a residual Add,
max pooling). Each is trained one epoch on 2,000 sample digits, as a briefly trained user's model.
The cases run in two worker processes (CI's two cores); each test reports its own case.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import convscope
from convscope import layers, lessons, zoo
from convscope.datasets import mnist_sample
from convscope.lessons.lab import fresh_model, keras_convnet_config, seeded

SEEDS = range(10)
TRAINING_IMAGES = 2000


def residual_graph_config() -> dict:
    inputs = convscope.Input(shape=(28, 28, 1))
    h = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    h = layers.ReLU()(layers.Add()([h, layers.Conv2D(8, 3, padding="same")(h)]))
    h = layers.Conv2D(16, 3, padding="same", activation="relu")(layers.MaxPooling2D(2)(h))
    outputs = layers.Dense(10, activation="softmax")(layers.Flatten()(h))
    return convscope.Model(inputs, outputs).get_config()


ARCHITECTURES = {
    "keras-convnet": keras_convnet_config,
    "lenet5": lambda: zoo.lenet5().get_config(),
    "residual-graph": residual_graph_config,
}


WORKERS = 2      # CI has two cores: the 30 cases run in two processes, each on one BLAS thread
SINGLE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}


def digits():
    (x, y), _ = mnist_sample.load_data()
    return (x[:TRAINING_IMAGES, :, :, None] / np.float32(255.0)).astype(np.float32), y[:TRAINING_IMAGES].astype(np.int64)


def run_case(case) -> dict:
    """Train ``architecture`` from ``seed`` and run every lesson on it with that seed: {lesson: its verdict line}
    for the lessons that failed, and the number of lessons run."""
    seed, architecture = case
    x, y = digits()
    with seeded(seed):
        model = fresh_model(ARCHITECTURES[architecture]())
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    failed = {}
    with contextlib.redirect_stdout(io.StringIO()):   # the lessons' progress lines
        for name in lessons.names():
            result = lessons.run(name, model=model, fast=True, seed=seed)
            if not result.verdict:
                failed[name] = result.report(introduction=False).splitlines()[-1]
    return {"failed": failed, "lessons": len(lessons.names())}


@pytest.fixture(scope="module")
def outcomes():
    """Every case, run once in ``WORKERS`` fresh processes (spawned, so each starts its BLAS with one thread:
    two processes of two spinning BLAS threads on two cores run several times slower than one thread each)."""
    cases = [(seed, architecture) for seed in SEEDS for architecture in ARCHITECTURES]
    saved = {key: os.environ.get(key) for key in SINGLE_THREAD}
    os.environ.update(SINGLE_THREAD)
    try:
        with ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("spawn")) as pool:
            return dict(zip(cases, pool.map(run_case, cases)))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("seed", SEEDS)
def test_every_lesson_passes_on_this_seed_and_model(seed, architecture, outcomes):
    outcome = outcomes[(seed, architecture)]
    assert outcome["lessons"] == 9
    assert not outcome["failed"], "\n".join(f"seed {seed}, {architecture}: {line}" for line in outcome["failed"].values())
