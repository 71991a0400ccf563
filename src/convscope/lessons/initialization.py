"""Lesson: the initial weights decide whether a network can learn at all."""

from __future__ import annotations

import math

import numpy as np

from ..initializers import compute_fans
from . import plots
from .lab import float64, fresh_model, seeded

NAME = "initialization"
TITLE = "Initialization: same network, same data, same seed; only kernel_initializer changes"
EXPLANATION = """
Training starts from the initial weights, and some starts are dead ends.

  Constant (zeros, ones): every filter of a layer starts equal, so every filter computes the
    same map, receives the same gradient and takes the same step: they stay equal forever.
    A layer of 32 identical filters is worth one filter. Only a random start breaks the tie.
  Far too large (random_normal with stddev 1.0): each layer multiplies the size of its input
    by about sqrt(fan_in) * stddev, so activations and logits explode, the softmax saturates,
    and the loss starts in the hundreds; training fails or crawls.
  Scaled to the layer (glorot_uniform: std sqrt(2 / (fan_in + fan_out)); he_normal:
    std sqrt(2 / fan_in), made for ReLU) keeps activations and gradients of similar size from
    layer to layer, and the network trains well.

fan_in = kh·kw·in_channels (what one output sees), fan_out = kh·kw·filters (see
initializers.compute_fans). The experiment builds the model's architecture once per
initializer (the Keras convnet without its Dropout, which would break the tie by itself),
from seed 0, and trains each on the same batches in float64. In float32 a matrix product may
round identical columns differently (on the development machine it does), and Adam, which
divides each step by the gradient's own size, inflates those last-bit differences into real
steps: the experiment would then measure the arithmetic, not the initializer.
It reports every layer's fans, the formula's standard deviation against the drawn weights',
the standard deviations of every layer's pre-activation z (what its activation receives)
and of dL/dz at step 0, the learning curves, and the number of distinct filters per conv
layer after training.
"""

INITIALIZERS = {  # name: (Keras identifier, the std the weights should have, from (fan_in, fan_out))
    "zeros": ("zeros", lambda fan_in, fan_out: 0.0),
    "ones": ("ones", lambda fan_in, fan_out: 0.0),
    "random_normal(1.0)": ({"class_name": "RandomNormal", "config": {"stddev": 1.0}}, lambda fan_in, fan_out: 1.0),
    "random_normal(0.05)": ({"class_name": "RandomNormal", "config": {"stddev": 0.05}}, lambda fan_in, fan_out: 0.05),
    "glorot_uniform": ("glorot_uniform", lambda fan_in, fan_out: math.sqrt(2.0 / (fan_in + fan_out))),
    "he_normal": ("he_normal", lambda fan_in, fan_out: math.sqrt(2.0 / fan_in)),
}


def experiment(lab):
    (x, y), (x_test, y_test) = lab.data()
    steps, batch = (60, 64) if lab.fast else (len(x) // 128, 128)
    order = np.random.default_rng(0).permutation(len(x))[: steps * batch]     # the same batches for every run
    lab.number("training", f"{steps} steps of {batch} images each (Adam), float64, seed 0 for every initializer")
    weights_rows, step0_rows, result_rows, curves, stats, accuracy, final_loss = [], [], [], {}, {}, {}, {}
    with float64():
        for name, (identifier, formula) in INITIALIZERS.items():
            with seeded(0):
                model = fresh_model(with_initializer(lab.architecture(), identifier))
                weighted = [layer for layer in model.layers if getattr(layer, "kernel", None) is not None]
                for layer in weighted:
                    kernel = layer.kernel.value
                    fan_in, fan_out = compute_fans(kernel.shape)
                    expected = formula(fan_in, fan_out)
                    # A std estimated from n weights is off by about 1/sqrt(2n) of itself: allow 4 times that.
                    tolerance = 4 / math.sqrt(2 * kernel.size) * expected
                    weights_rows.append([name, layer.name, fan_in, fan_out, expected, float(kernel.std()), tolerance])
                records = {r.name: r for r in model.trace(x[order[:batch]], y[order[:batch]])}
                stats[name] = {"std of z (pre-activation)": [float(records[l.name].preactivation.std()) for l in weighted],
                               "std of dL/dz": [float(records[l.name].grad_preactivation.std()) for l in weighted]}
                step0_rows += [[name, l.name, a, g] for l, a, g in zip(weighted, *stats[name].values())]
                curves[name] = [model.train_step(x[i], y[i])[0] for i in np.split(order, steps)]
            accuracy[name] = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
            final_loss[name] = float(np.mean(curves[name][-10:]))
            distinct = [distinct_filters(layer.kernel.value) for layer in lab.conv_layers(model)]
            result_rows.append([name, curves[name][0], final_loss[name], accuracy[name],
                                " / ".join(f"{d} of {n}" for d, n in distinct)])
            if name in ("zeros", "ones"):
                for layer, (count, _) in zip(lab.conv_layers(model), distinct):
                    lab.check(f"{name}, {layer.name}: distinct filters after training (bit for bit)", count, "==", 1)

    lab.table("weights: fans, the formula's std and the drawn weights' std",
              ["initializer", "layer", "fan_in", "fan_out", "formula std", "measured std", "tolerance"], weights_rows)
    lab.check("layers whose measured std is off the formula by more than the tolerance",
              sum(abs(measured - expected) > tolerance for *_, expected, measured, tolerance in weights_rows), "==", 0)
    lab.table("step 0, one batch: standard deviation of each layer's pre-activation z and of dL/dz",
              ["initializer", "layer", "std of z", "std of dL/dz"], step0_rows)
    lab.table("after training", ["initializer", "loss at step 1", "loss, last 10 steps", "test accuracy",
                                 "distinct filters per conv layer"], result_rows)
    good = 0.8 if lab.fast else 0.95
    for name in ("glorot_uniform", "he_normal"):
        lab.check(f"{name} trains well: test accuracy", accuracy[name], ">=", good)
    # Failing shows in the accuracy, stalling in the loss: either one is the claim.
    ratio = final_loss["random_normal(1.0)"] / final_loss["glorot_uniform"]
    deficit = accuracy["glorot_uniform"] - accuracy["random_normal(1.0)"]
    lab.number("random_normal(1.0): final loss (last 10 steps) over glorot_uniform's", ratio)
    lab.number("random_normal(1.0): test accuracy below glorot_uniform's", deficit)
    lab.check("random_normal(1.0) fails or stalls: final loss >= 10 x glorot_uniform's, or accuracy >= 0.1 lower",
              ratio >= 10 or deficit >= 0.1, "==", 1)
    lab.number("random_normal(1.0): loss at step 1, in units of a uniform guess's (ln 10)",
               curves["random_normal(1.0)"][0] / math.log(10))

    lab.picture("initialization_curves.png", plots.runs_figure, curves, "training loss per step, by kernel_initializer",
                "loss (log scale)", log=True)
    lab.picture("initialization_step0.png", plots.layer_stats_figure, stats, [layer.name for layer in weighted],
                "step 0: how large each layer's pre-activations and their gradients are, by kernel_initializer")


# Where a layer's config names the initializer of its kernels: Conv2D / Dense, DepthwiseConv2D, SeparableConv2D.
KERNEL_INITIALIZERS = ("kernel_initializer", "depthwise_initializer", "pointwise_initializer")


def with_initializer(config, identifier):
    """``config`` with every kernel's initializer replaced by ``identifier``, nested models' too, and, in a
    Sequential chain, the Dropout layers left out (a graph's connections name them, so a graph keeps them)."""
    chain = "input_layers" not in config
    layers = []
    for spec in config["layers"]:
        if chain and spec["class_name"] == "Dropout":
            continue
        settings = dict(spec["config"])
        if "layers" in settings:                      # a nested model: its layers start the same way
            settings = with_initializer(settings, identifier)
        for key in KERNEL_INITIALIZERS:
            if key in settings:
                settings[key] = identifier
        layers.append({**spec, "config": settings})
    return {**config, "layers": layers}


def distinct_filters(kernel):
    """(number of different filters, number of filters): filters compared bit for bit."""
    filters = kernel.reshape(-1, kernel.shape[-1]).T
    return len(np.unique(filters, axis=0)), len(filters)
