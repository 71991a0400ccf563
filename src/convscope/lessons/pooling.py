"""Lesson: pooling learns nothing; it routes gradients, and max pooling commutes with ReLU."""

from __future__ import annotations

import numpy as np

from .. import activations
from ..layers import AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D
from . import plots
from .lab import float64, float64_copy, max_abs

POOLING_LAYERS = (MaxPooling2D, AveragePooling2D, GlobalMaxPooling2D, GlobalAveragePooling2D)

NAME = "pooling"
TITLE = "Pooling learns nothing: no parameters, the gradient is routed or shared"
EXPLANATION = """
A pooling layer summarises each window by a fixed rule: max pooling keeps the largest value,
average pooling the mean. There is nothing to learn, so it has zero parameters, and
backpropagation only routes the upstream gradient back into each window:

  max pooling      the window's whole gradient goes to its arg-max cell, the others get 0
                   (when several cells tie, convscope, like Keras, picks the first);
  average pooling  each of the window's k cells gets 1/k of it.

Max pooling only selects, so it commutes with any non-decreasing activation:
max(relu(z)) == relu(max(z)), exactly. Average pooling does not: the mean of rectified values
is not the rectified mean. convscope's training loop exploits this (src/convscope/fusion.py):
a ReLU layer followed by MaxPooling2D pools the pre-activation first and applies ReLU to a map
four times smaller, the same numbers bit for bit; model.trace runs the layers one by one, so
every map stays visible.

The experiment pools the first conv layer's real maps (model.trace) with both layers, sends a
random upstream gradient back (the routing rule does not depend on where it comes from), and
checks each claim; then compares the model's fused predictions with the layer-by-layer trace.
"""


def experiment(lab):
    model = float64_copy(lab.model())
    (_, _), (x_test, _) = lab.data()
    x = x_test[: 8 if lab.fast else 64]
    conv = lab.conv_layers(model)[0]
    relu = activations.get("relu")
    with float64():
        records = model.trace(x)
        z = next(r for r in records if r.name == conv.name).preactivation      # real maps, signs and all
        maps = relu(z)
        max_pool, avg_pool = MaxPooling2D(2, name="new_max_pool"), AveragePooling2D(2, name="new_avg_pool")
        pooled = max_pool(maps)
        avg_pool(maps)
        upstream = np.random.default_rng(0).standard_normal(pooled.shape)
        max_dx, avg_dx = max_pool.backward(upstream), avg_pool.backward(upstream)
        fused = model.predict(x, verbose=0)

    pools = [layer for layer in model.layers if type(layer) in POOLING_LAYERS] + [max_pool, avg_pool]
    lab.number("pooling layers counted", ", ".join(f"{p.name}: {p.count_params()}" for p in pools))
    lab.check("parameters in all pooling layers (the model's and two new ones)",
              sum(p.count_params() for p in pools), "==", 0)

    # Every 2x2 window on its own last axis: (N, OH, OW, C, 4).
    cells, grads, avg_grads = (to_windows(a, pooled.shape) for a in (maps, max_dx, avg_dx))
    receiving = (grads != 0).sum(axis=-1)
    is_max = cells == cells.max(axis=-1, keepdims=True)
    ties = int((is_max.sum(axis=-1) > 1).sum())
    lab.number("max pooling: 2x2 windows", f"{receiving.size:,}, of which {ties:,} have their maximum in several cells "
               "(mostly all-zero background after ReLU; the first one gets the gradient)")
    lab.check("max pooling: windows where more than one cell receives gradient", int((receiving > 1).sum()), "==", 0)
    lab.check("max pooling: cells receiving gradient that are not their window's max",
              int((grads != 0)[~is_max].sum()), "==", 0)
    lab.check("max pooling: max |window's gradient sum - upstream gradient|", max_abs(grads.sum(axis=-1), upstream), "==", 0)
    lab.check("average pooling: max |cell gradient - upstream / 4|", max_abs(avg_grads, upstream[..., None] / 4), "<=", 1e-15)

    max_after, max_before = max_pool(relu(z)), relu(max_pool(z))
    avg_after, avg_before = avg_pool(relu(z)), relu(avg_pool(z))
    differ = avg_after != avg_before
    lab.check("max(relu(z)) vs relu(max(z)): cells that differ (bit for bit)", int((max_after != max_before).sum()), "==", 0)
    lab.number("avg(relu(z)) vs relu(avg(z)): largest difference", max_abs(avg_after, avg_before))
    lab.check("avg(relu(z)) vs relu(avg(z)): fraction of windows that differ", differ.mean(), ">=", 0.01)
    lab.check("model.predict (fused, pool first) vs model.trace (layer by layer): max |difference|",
              max_abs(fused, records[-1].output), "==", 0)

    f = int(differ.sum(axis=(0, 1, 2)).argmax())
    lab.picture("pooling_relu.png", plots.panels_figure, [
        (f"pre-activation z, map {f}", z[0, :, :, f]),
        ("max pool of relu(z)", max_after[0, :, :, f]),
        ("relu of max pool(z)", max_before[0, :, :, f]),
        ("avg pool of relu(z)", avg_after[0, :, :, f]),
        ("relu of avg pool(z)", avg_before[0, :, :, f]),
        ("difference of the two averages", avg_after[0, :, :, f] - avg_before[0, :, :, f]),
    ], f"{conv.name}, map {f}: max pooling commutes with ReLU, average pooling does not", columns=3)
    # The 8x8 patch (4x4 windows) where the map is busiest, so the arg-max cells are visible.
    r, c = max(((r, c) for r in range(0, maps.shape[1] - 7, 2) for c in range(0, maps.shape[2] - 7, 2)),
               key=lambda rc: maps[0, rc[0] : rc[0] + 8, rc[1] : rc[1] + 8, f].sum())
    patch = np.s_[0, r : r + 8, c : c + 8, f]
    lab.picture("pooling_gradients.png", plots.panels_figure, [
        (f"relu(z), rows {r}-{r + 7}, columns {c}-{c + 7}", maps[patch]),
        ("upstream gradient, one per window", upstream[0, r // 2 : r // 2 + 4, c // 2 : c // 2 + 4, f]),
        ("max pooling: dL/dx", max_dx[patch]),
        ("average pooling: dL/dx", avg_dx[patch]),
    ], f"map {f}: max pooling routes each 2x2 window's gradient to its max; average pooling shares it", columns=4)


def to_windows(a, pooled_shape):
    """(N, H, W, C) -> (N, OH, OW, C, 4): the cells of every non-overlapping 2x2 window (rows / columns
    beyond the last whole window, which "valid" pooling never reads, are dropped)."""
    n, oh, ow, c = pooled_shape
    a = a[:, : 2 * oh, : 2 * ow].reshape(n, oh, 2, ow, 2, c)
    return a.transpose(0, 1, 3, 5, 2, 4).reshape(n, oh, ow, c, 4)
