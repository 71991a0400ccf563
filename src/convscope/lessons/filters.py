"""Lesson: a filter is a block of weights slid over the input; its weights are learned, and different starts
learn different, equally good filters."""

from __future__ import annotations

import os

import numpy as np

from .. import backend
from ..arraymath.shapes import output_hw
from ..viz import filters_figure
from . import plots
from .lab import float64, float64_copy, fresh_model

NAME = "filters"
TITLE = "Filters are learned weights"
QUESTION = "What is a filter, and where do its weights come from?"
EXPLANATION = """
A filter is a block of weights kh x kw x C: kh rows, kw columns, and as deep as the layer's
input has channels (C). The layer slides it over the input: at each position it multiplies
the kh x kw x C window under it by the filter, cell by cell, adds up the products and the
filter's bias, and writes that one number into the filter's output map. One map per filter:
a layer of F filters holds a kernel K of shape (kh, kw, C, F) and computes

    z = x ⋆ K + b        (⋆: cross-correlation, the kernel slid as it is; see the correlation lesson)

Those weights are not designed. They start as random numbers (glorot_uniform by default) and
gradient descent changes them, like every other weight, to lower the loss. Nothing tells a
filter what to respond to: whatever it becomes is what lowered the loss. Start from another
random draw and training arrives at different filters that work about as well (the two test
accuracies differ by no more than three standard errors of such a difference, what the test
set can resolve, or 0.02 where that is larger): many sets of filters solve the problem.

The experiment reads the studied layer's numbers (its kernel's shape, its maps' shape) and
recomputes output values by hand, window times filter plus bias. Then it rebuilds the model's
architecture untrained (the Keras MNIST convnet when no model is given), trains it for one
epoch (in fast mode, of 5,000 images) in batches of 32 from two random initializations, drawn
one after the other from the lesson's seed, and measures how far the first layer's filters
moved, how different the two runs' filters are (even after pairing every filter with its
closest counterpart in the other run), and the two test accuracies. When the model comes from
a `convscope train` run folder, the filters it recorded at initialization
(filters/epoch_000.npz) are compared with its trained ones too.
"""

# The limits of the training claims, stated in the checks' wording.
MOVED = 0.1           # the filters moved by at least 10% of their size (Frobenius norm)
LEARNED = 0.3         # training raised the test accuracy by at least 0.3 over the untrained network's
DIFFERENT = 0.3       # each filter at least 30% of its size away from the other run's closest filter (median)
AS_WELL = 3           # the two runs' test accuracies within 3 standard errors of such a difference (at least 0.02)
BATCH = 32            # Keras's default batch size
FAST_IMAGES = 5000    # the training images of each run in fast mode


def experiment(lab):
    one_filter_by_hand(lab)
    (x, y), (x_test, y_test) = lab.data()
    if lab.fast:
        x, y = x[:FAST_IMAGES], y[:FAST_IMAGES]
    config = lab.architecture()
    runs = []
    for run in (1, 2):
        model = fresh_model(config)          # weights drawn now from the generator the lesson's seed started
        conv = lab.conv_layers(model)[0]
        before = conv.kernel.value.copy()
        untrained = accuracy_of(model, x_test, y_test)
        order = backend.global_rng().permutation(len(x))
        batches = [order[i : i + BATCH] for i in range(0, len(x), BATCH)]
        for batch in lab.progress(batches, description=f"run {run} of 2, one epoch"):
            model.train_step(x[batch], y[batch])
        runs.append((before, conv.kernel.value.copy(), untrained, accuracy_of(model, x_test, y_test)))
    lab.number("training", f"1 epoch on {len(x):,} images ({len(batches)} batches of up to {BATCH}), from each of two "
               f"random initializations; test accuracy on {len(x_test):,} images")

    for run, (before, after, untrained, accuracy) in enumerate(runs, 1):
        lab.number(f"run {run}: test accuracy untrained -> trained", f"{untrained:.4f} -> {accuracy:.4f}")
        lab.check(f"run {run}: filters moved, |after - before| / |before|", distance(after, before), ">=", MOVED)
        lab.check(f"run {run}: the network learned, test accuracy trained minus untrained", accuracy - untrained,
                  ">=", LEARNED)
    (_, a, _, accuracy_1), (_, b, _, accuracy_2) = runs
    lab.number("run 1 vs run 2: |a - b| / |a|, filter i against filter i", distance(a, b))
    lab.check("run 1 vs run 2: each filter's distance to the closest filter of the other run, relative (median)",
              closest_distance(a, b), ">=", DIFFERENT)
    resolution = standard_error(accuracy_1, accuracy_2, len(x_test))
    lab.number(f"standard error of a difference of two accuracies on {len(x_test):,} test images", resolution)
    lab.check(f"run 1 vs run 2 work about as well: |difference of test accuracy|, against {AS_WELL} standard errors "
              "(at least 0.02)", abs(accuracy_1 - accuracy_2), "<=", max(AS_WELL * resolution, 0.02))

    limit = max(np.abs(k).max() for run in runs for k in run[:2])   # one colour scale for all four
    lab.picture("filters_run1_before.png", filters_figure, runs[0][0], title="run 1: first-layer filters at "
                "initialization", vmax=limit)
    lab.picture("filters_run1_after.png", filters_figure, runs[0][1], title="run 1: after 1 epoch", vmax=limit)
    lab.picture("filters_run2_before.png", filters_figure, runs[1][0], title="run 2: at initialization", vmax=limit)
    lab.picture("filters_run2_after.png", filters_figure, runs[1][1], title="run 2: after 1 epoch", vmax=limit)
    if lab.user_model is not None:
        users_run(lab)


def one_filter_by_hand(lab):
    """The studied layer's filters and maps counted, and output values recomputed as Σ window · filter + b."""
    model = float64_copy(lab.model())
    (_, _), (x_test, _) = lab.data()
    conv = lab.conv_layers(model)[0]
    with float64():
        record = next(r for r in model.trace(x_test[:1]) if r.name == conv.name)
    kernel = conv.kernel.value
    bias = conv.bias.value if conv.use_bias else np.zeros(conv.filters)
    kh, kw, depth, count = kernel.shape
    x, z = record.input[0], record.preactivation[0]
    lab.number(f"{conv.name}: filters", f"{count}, each {kh}x{kw}x{depth}: {kh * kw * depth} weights and "
               f"{int(conv.use_bias)} bias" + (f" (groups={conv.groups}: each filter sees {depth} of the "
                                                f"{x.shape[2]} channels)" if conv.groups > 1 else ""))
    lab.number(f"{conv.name}: input -> maps", f"{x.shape} -> {z.shape}: {z.shape[2]} maps of {z.shape[0]}x{z.shape[1]}"
               f" (stride {conv.strides}, padding {conv.padding!r})")
    lab.check(f"{conv.name}: output maps minus filters", z.shape[2] - count, "==", 0)
    lab.check(f"{conv.name}: filter depth x groups minus input channels", depth * conv.groups - x.shape[2], "==", 0)
    window_positions = output_hw(x.shape[:2], (kh, kw), conv.strides, conv.padding, conv.dilation_rate)
    lab.check(f"{conv.name}: map cells minus window positions (rows x columns)",
              z.shape[0] * z.shape[1] - window_positions[0] * window_positions[1], "==", 0)

    # Every filter at three positions (corners and the middle), and the strongest response of the image.
    (top, bottom), (left, right) = conv.pads
    padded = np.pad(x, ((top, bottom), (left, right), (0, 0)))
    f, i, j = np.unravel_index(np.abs(np.moveaxis(z, 2, 0)).argmax(), (count, *z.shape[:2]))
    places = [(0, 0), (z.shape[0] // 2, z.shape[1] // 2), (z.shape[0] - 1, z.shape[1] - 1), (i, j)]
    by_hand = np.array([[np.sum(window(padded, conv, r, c, g) * kernel[..., g]) + bias[g] for g in range(count)]
                        for r, c in places])
    layer = np.array([z[r, c] for r, c in places])
    lab.check(f"{conv.name}: Σ window · filter + b by hand vs the layer's z, {len(places)} positions x {count} filters, "
              "max |difference| / max |z|", np.abs(by_hand - layer).max() / np.abs(z).max(), "<=", 1e-12)

    patch = window(padded, conv, i, j, f)
    lab.picture("filters_one_window.png", plots.panels_figure, [
        (f"input of {conv.name}, channel 0", x[:, :, 0]),
        (f"window at ({i}, {j}), channel 0", patch[:, :, 0]),
        (f"filter {f}, channel 0", kernel[:, :, 0, f]),
        (f"map {f}: z[{i}, {j}] = {z[i, j, f]:.3g}", z[:, :, f]),
    ], f"{conv.name}: filter {f} slid over the input, one number per position", columns=4,
        note=f"z[{i}, {j}] = Σ window · filter + b[{f}]: the window's cells times the filter's, added up, plus the bias")


def window(padded, conv, row, col, f):
    """The kh x kw x depth block of the (padded) input that filter ``f`` meets at output cell (row, col)."""
    (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.strides, conv.dilation_rate
    depth = conv.kernel.value.shape[2]
    group = f // (conv.filters // conv.groups)
    return padded[row * sh : row * sh + dh * (kh - 1) + 1 : dh, col * sw : col * sw + dw * (kw - 1) + 1 : dw,
                  group * depth : (group + 1) * depth]


def standard_error(p1, p2, n) -> float:
    """The standard error of p1 - p2, two accuracies measured on n images each: sqrt(p1(1-p1)/n + p2(1-p2)/n)."""
    return float(np.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / n))


def accuracy_of(model, x, y) -> float:
    return model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"]


def users_run(lab):
    """The user's own training: its final first-layer filters, and how far they moved if the run folder is known."""
    conv = lab.conv_layers(lab.user_model)[0]
    trained = conv.kernel.value
    snapshots = recorded_snapshots(lab, conv.name)
    if snapshots:
        initial = snapshots[0][1]
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


def recorded_snapshots(lab, layer):
    """The run folder's filter snapshots of ``layer``, read within the memory budget (a snapshot that is not what
    a run writes is refused in one line), or [] when the model does not come from a run folder that recorded its
    initialization."""
    from ..viz.evolution import load_snapshots

    folder = os.path.dirname(lab.model_path or "")
    if not lab.model_path or not os.path.isfile(os.path.join(folder, "filters", "epoch_000.npz")):
        return []
    return load_snapshots(folder, layer)[1]


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
