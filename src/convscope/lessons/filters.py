"""Lesson: filters are learned weights, and different starts learn different, equally good filters."""

from __future__ import annotations

import os

import numpy as np

from ..viz import filters_figure
from .lab import fresh_model, seeded

NAME = "filters"
TITLE = "Filters are learned weights"
EXPLANATION = """
A conv layer's filters are not designed. They start as random numbers (glorot_uniform by
default) and gradient descent changes them, like every other weight, to lower the loss.
Nothing tells a filter to become an edge or stroke detector: those are simply what training
arrives at because they help tell digits apart. Start from another random draw and training
arrives at different filters that work as well: many sets of filters solve the problem.

The experiment rebuilds the model's architecture untrained (the Keras MNIST convnet when no
model is given), trains it briefly from two random initializations (seeds 0 and 1), and
measures how far the first layer's filters moved, how different the two runs' filters are
(even after pairing every filter with its closest counterpart in the other run), and the two
test accuracies. When the model comes from a `convscope train` run folder, the filters it
recorded at initialization (filters/epoch_000.npz) are compared with its trained ones too.
"""


def experiment(lab):
    (x, y), (x_test, y_test) = lab.data()
    config = lab.architecture()
    runs = {}
    for seed in (0, 1):
        with seeded(seed):
            model = fresh_model(config)
            conv = lab.conv_layers(model)[0]
            before = conv.kernel.value.copy()
            model.fit(x, y, batch_size=128, epochs=1, verbose=0)
        accuracy = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
        runs[seed] = before, conv.kernel.value.copy(), accuracy
    lab.number("training", f"1 epoch on {len(x):,} images from each of two random initializations (seeds 0, 1)")

    for seed, (before, after, accuracy) in runs.items():
        lab.number(f"seed {seed}: test accuracy", accuracy)
        lab.check(f"seed {seed}: filters moved, |after - before| / |before|", distance(after, before), ">=", 0.2)
        lab.check(f"seed {seed}: the network learned, test accuracy", accuracy, ">=", 0.85)
    (_, a, accuracy_0), (_, b, accuracy_1) = runs[0], runs[1]
    lab.number("seed 0 vs seed 1: |a - b| / |a|, filter i against filter i", distance(a, b))
    lab.check("seed 0 vs seed 1: each filter's distance to the closest filter of the other run (median)",
              closest_distance(a, b), ">=", 0.3)
    lab.check("seed 0 vs seed 1: |difference of test accuracy|", abs(accuracy_0 - accuracy_1), "<=", 0.02)

    limit = max(np.abs(k).max() for run in runs.values() for k in run[:2])   # one colour scale for all four
    lab.picture("filters_seed0_before.png", filters_figure, runs[0][0], title="seed 0: first-layer filters at "
                "initialization", vmax=limit)
    lab.picture("filters_seed0_after.png", filters_figure, runs[0][1], title="seed 0: after 1 epoch", vmax=limit)
    lab.picture("filters_seed1_before.png", filters_figure, runs[1][0], title="seed 1: at initialization", vmax=limit)
    lab.picture("filters_seed1_after.png", filters_figure, runs[1][1], title="seed 1: after 1 epoch", vmax=limit)
    if lab.user_model is not None:
        users_run(lab)


def users_run(lab):
    """The user's own training: its final first-layer filters, and how far they moved if the run folder is known."""
    conv = lab.conv_layers(lab.user_model)[0]
    trained = conv.kernel.value
    snapshot = os.path.join(os.path.dirname(lab.model_path or ""), "filters", "epoch_000.npz")
    if lab.model_path and os.path.isfile(snapshot):
        with np.load(snapshot) as recorded:
            initial = recorded[f"{conv.name}/kernel"]
        lab.number(f"your run: {conv.name} moved from its initialization, |after - before| / |before|",
                   distance(trained, initial))
        limit = max(np.abs(initial).max(), np.abs(trained).max())
        lab.picture("filters_your_run_initial.png", filters_figure, initial,
                    title=f"your model's {conv.name} at initialization (filters/epoch_000.npz)", vmax=limit)
        lab.picture("filters_your_run_trained.png", filters_figure, trained, title=f"your model's {conv.name}, trained",
                    bias=conv.bias.value if conv.use_bias else None, vmax=limit)
    else:
        lab.picture("filters_your_model.png", filters_figure, trained, title=f"your model's {conv.name}, trained",
                    bias=conv.bias.value if conv.use_bias else None)


def distance(a, b) -> float:
    """|a - b| / |b| over the whole kernel (Frobenius norms)."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def closest_distance(a, b) -> float:
    """Median over the filters of ``a`` of the relative distance to the closest filter of ``b``: filters may be
    learned in any order, so each is compared with its best match, not with the filter of the same number."""
    fa = a.reshape(-1, a.shape[-1]).T                 # one row per filter
    fb = b.reshape(-1, b.shape[-1]).T
    pairwise = np.linalg.norm(fa[:, None, :] - fb[None, :, :], axis=2) / np.linalg.norm(fa, axis=1)[:, None]
    return float(np.median(pairwise.min(axis=1)))
