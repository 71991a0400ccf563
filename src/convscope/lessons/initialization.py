"""Lesson: the initial weights decide whether a network can learn at all."""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..initializers import compute_fans
from . import plots
from .lab import float64, fresh_model, seeded

NAME = "initialization"
TITLE = "Initialization: same network, same data, same seed; only kernel_initializer changes"
QUESTION = "How should a network's weights start, and why do some starts never learn?"
EXPLANATION = """
Training starts from the initial weights, and some starts are dead ends.

  Constant (zeros, ones): every filter of a layer starts equal, so every filter computes the
    same map, receives the same gradient and takes the same step: they stay equal forever.
    A layer of 32 identical filters is worth one filter. Only a random start breaks the tie.
  Random, and the size of the signal. A layer whose fan_in inputs per output are multiplied by
    zero-mean random weights of standard deviation σ makes its pre-activation z = x ⋆ K + b
    about sqrt(fan_in)·σ times the size of its input x (Var z = fan_in·σ²·E[x²] when b = 0): call
    that the layer's gain. A fixed σ gives every layer a gain that grows with its fan_in: with
    random_normal(1.0) a layer reading 288 values multiplies their size by about 17, the next
    layer multiplies again, the logits explode, the softmax saturates and the loss starts in the
    hundreds; training fails or crawls. A σ too small shrinks the signal layer after layer.
  Scaled to the layer: glorot_uniform takes σ = sqrt(2 / (fan_in + fan_out)) and he_normal
    σ = sqrt(2 / fan_in) (a gain of sqrt(2), which ReLU, zeroing about half of z, brings back to
    about 1). What they keep is the size of the forward signal: the standard deviation of z stays
    of the same order from one layer to the next. They do not keep each gradient cell's size:
    dL/dz of a conv layer is spread over many more cells than the logits' (26·26·32 against 10
    in the Keras convnet), so each of its cells is far smaller; the experiment shows the
    per-cell sizes and the layers' totals, sqrt(Σ (dL/dz)²) per image, side by side.
  Biases start at zero (bias_initializer "zeros", Keras's default; the experiment sets it in
    every layer): the random kernels already make the filters differ, and a zero bias adds
    nothing to z's size at the start.

fan_in = kh·kw·in_channels (what one output sees), fan_out = kh·kw·filters (see
initializers.compute_fans). The experiment builds the model's architecture once per
initializer (the Keras convnet without its Dropout, which would break the tie by itself),
from one seed, and trains each on the same batches in float64. In float32 a matrix product may
round identical columns differently (on the development machine it does), and Adam, which
divides each step by the gradient's own size, inflates those last-bit differences into real
steps: the experiment would then measure the arithmetic, not the initializer. Even in float64
a product may now and then round one of identical columns differently in its last bit, so
filters count as distinct only when they differ by more than 1e-12 of the kernel's largest
weight (rounding is near 1e-16 of it).
It reports every layer's fans, the formula's standard deviation against the drawn weights',
at step 0 on one batch, averaged over 8 draws of the weights (4 in fast mode, which also trains 30 steps of 32), every layer's gain (measured, and
sqrt(fan_in)·σ), the standard deviations of z and of dL/dz and dL/dz's total per image, the
learning curves, and the number of distinct filters per conv layer after training.
"""

INITIALIZERS = {  # name: (Keras identifier, the std the weights should have, from (fan_in, fan_out))
    "zeros": ("zeros", lambda fan_in, fan_out: 0.0),
    "ones": ("ones", lambda fan_in, fan_out: 0.0),
    "random_normal(1.0)": ({"class_name": "RandomNormal", "config": {"stddev": 1.0}}, lambda fan_in, fan_out: 1.0),
    "random_normal(0.05)": ({"class_name": "RandomNormal", "config": {"stddev": 0.05}}, lambda fan_in, fan_out: 0.05),
    "glorot_uniform": ("glorot_uniform", lambda fan_in, fan_out: math.sqrt(2.0 / (fan_in + fan_out))),
    "he_normal": ("he_normal", lambda fan_in, fan_out: math.sqrt(2.0 / fan_in)),
}
CONSTANT = ("zeros", "ones")
SCALED = ("glorot_uniform", "he_normal")
DRAWS = 8          # the step-0 sizes are averaged over this many draws of a random initializer's weights
DRAWS_FAST = 4     # ... and over this many in fast mode
GAIN_FACTOR = 2     # a layer's measured gain is within this factor of sqrt(fan_in)·σ
KEPT_FACTOR = 4     # with a scaled initializer, std of z changes by less than this factor from layer to layer
SAME = 1e-12       # filters apart by no more than this fraction of the largest weight are the same filter
LAST_STEPS = 10     # "final loss": the mean over the last 10 training steps (table and legend alike)


def experiment(lab):
    (x, y), (x_test, y_test) = lab.data()
    steps, batch = (30, 32) if lab.fast else (len(x) // 128, 128)
    n_draws = DRAWS_FAST if lab.fast else DRAWS
    rng = backend.global_rng()   # the lesson's draws: another --seed, other batches and weights
    order = rng.permutation(len(x))[: steps * batch]     # the same batches for every run
    seed = int(rng.integers(2**31))                       # and the same seed for every initializer
    lab.number("training", f"{steps} steps of {batch} images each (Adam), float64, seed {seed} (drawn from the "
               "lesson's generator) for every initializer")
    weights_rows, step0_rows, result_rows, curves, stats, gains, accuracy, final_loss = [], [], [], {}, {}, {}, {}, {}
    biases = []
    with float64():
        for name, (identifier, formula) in INITIALIZERS.items():
            with seeded(seed):
                model = fresh_model(with_initializer(lab.architecture(), identifier))
                weighted = [layer for layer in model.layers if getattr(layer, "kernel", None) is not None]
                for layer in weighted:
                    kernel = layer.kernel.value
                    fan_in, fan_out = compute_fans(kernel.shape)
                    expected = formula(fan_in, fan_out)
                    # A std estimated from n weights is off by about 1/sqrt(2n) of itself: allow 4 times that.
                    tolerance = 4 / math.sqrt(2 * kernel.size) * expected
                    weights_rows.append([name, layer.name, fan_in, fan_out, expected, float(kernel.std()), tolerance])
                # Step 0 on one batch, averaged over n_draws draws of the weights (this model's and more from the next
                # seeds): the gain law is about the weights' distribution, and a layer of 4 filters is a small sample.
                draws = [model] + ([] if name in CONSTANT else [drawn(lab, identifier, seed + d) for d in range(1, n_draws)])
                biases += [float(np.abs(p.value).max()) for m in draws for p in m.parameters if p.name.endswith("bias")]
                sizes = [step0_sizes(m, x[order[:batch]], y[order[:batch]]) for m in draws]
                stats[name] = {key: [float(np.sqrt(np.mean([size[key][k] for size in sizes])))
                                     for k in range(len(weighted))] for key in (Z, GRAD, TOTAL)}
                if name not in CONSTANT:   # the gain law is about zero-mean random weights: not the constants
                    gains[name] = [(float(np.sqrt(np.mean([size[Z][k] for size in sizes])
                                                  / np.mean([size["x²"][k] for size in sizes]))),
                                    math.sqrt(compute_fans(l.kernel.value.shape)[0]
                                              * np.mean([size["w²"][k] for size in sizes])))
                                   for k, l in enumerate(weighted)]
                step0_rows += [[name, l.name, *gain, *values] for l, gain, *values in
                               zip(weighted, gains.get(name, [("-", "-")] * len(weighted)), *stats[name].values())]
                curves[name] = [model.train_step(x[i], y[i])[0]
                                for i in lab.progress(np.split(order, steps), description=f"training {name}")]
            accuracy[name] = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
            final_loss[name] = float(np.mean(curves[name][-LAST_STEPS:]))
            distinct = [distinct_filters(layer.kernel.value) for layer in lab.conv_layers(model)]
            result_rows.append([name, curves[name][0], final_loss[name], accuracy[name],
                                " / ".join(f"{d} of {n}" for d, n in distinct)])
            if name in ("zeros", "ones"):
                for layer, (count, _) in zip(lab.conv_layers(model), distinct):
                    lab.check(f"{name}, {layer.name}: distinct filters after training (apart by more than {SAME:g} of the "
                              "largest weight)", count, "==", 1)

    lab.table("weights: fans, the formula's std and the drawn weights' std",
              ["initializer", "layer", "fan_in", "fan_out", "formula std", "measured std", "tolerance"], weights_rows)
    lab.check("layers whose measured std is off the formula by more than the tolerance",
              sum(abs(measured - expected) > tolerance for *_, expected, measured, tolerance in weights_rows), "==", 0)
    lab.check("biases at step 0, every layer and initializer (bias_initializer 'zeros'): largest |b|", max(biases), "==", 0)
    lab.table(f"step 0, one batch, each value the root mean square over {n_draws} draws of a random initializer's "
              "weights: each layer's gain std(z) / rms(its input), measured and sqrt(fan_in)·σ; the standard deviation "
              "of z and of dL/dz (per cell), and dL/dz's total per image, sqrt(Σ (dL/dz)²)",
              ["initializer", "layer", "gain", "sqrt(fan_in)·σ", *stats["glorot_uniform"]], step0_rows)
    lab.check("every layer, every random initializer: measured gain against sqrt(fan_in)·σ, furthest apart "
              "(as a factor, either way)", max(factor(m, law) for values in gains.values() for m, law in values),
              "<=", GAIN_FACTOR)
    kept(lab, stats, [layer.name for layer in weighted])

    lab.table("after training", ["initializer", "loss at step 1", f"loss, mean of the last {LAST_STEPS} steps",
                                 "test accuracy", "distinct filters per conv layer"], result_rows)
    # Fast mode trains 30 steps of 32 only, which a network of a few filters needs more than: 4 times chance there.
    good = 0.4 if lab.fast else 0.95
    for name in SCALED:
        lab.check(f"{name} learns: test accuracy after {steps} steps", accuracy[name], ">=", good)
    lab.check("random_normal(1.0): the largest layer gain (each layer multiplies its input's size by about "
              "sqrt(fan_in))", max(m for m, _ in gains["random_normal(1.0)"]), ">=", 4)
    # Failing shows in the accuracy, stalling in the loss: either one is the claim.
    ratio = final_loss["random_normal(1.0)"] / final_loss["glorot_uniform"]
    deficit = accuracy["glorot_uniform"] - accuracy["random_normal(1.0)"]
    lab.number(f"random_normal(1.0): final loss (mean of the last {LAST_STEPS} steps) over glorot_uniform's", ratio)
    lab.number("random_normal(1.0): test accuracy below glorot_uniform's", deficit)
    lab.check("random_normal(1.0) fails or stalls: final loss >= 10 x glorot_uniform's, or accuracy >= 0.1 lower",
              ratio >= 10 or deficit >= 0.1, "==", 1)
    lab.number("random_normal(1.0): loss at step 1, in units of a uniform guess's (ln 10)",
               curves["random_normal(1.0)"][0] / math.log(10))

    lab.picture("initialization_curves.png", plots.runs_figure, curves, "training loss per step, by kernel_initializer",
                "loss (log scale)", log=True, summary=(f"mean of the last {LAST_STEPS} steps:", final_loss))
    lab.picture("initialization_step0.png", plots.layer_stats_figure, stats, [layer.name for layer in weighted],
                f"step 0 (root mean square over {n_draws} draws of the weights): how large each layer's pre-activations "
                "and their gradients are, by kernel_initializer")


Z, GRAD, TOTAL = "std of z", "std of dL/dz (per cell)", "dL/dz per image, sqrt(Σ (dL/dz)²)"


def drawn(lab, identifier, seed):
    """Another draw of the architecture's weights with ``identifier``, from ``seed``."""
    with seeded(seed):
        return fresh_model(with_initializer(lab.architecture(), identifier))


def step0_sizes(model, x, y) -> dict:
    """Per weighted layer, on one batch: the variance of z (Z), of dL/dz (GRAD) and dL/dz's mean squared
    total per image (TOTAL); the mean square of the layer's input ("x²") and the variance of its weights ("w²")."""
    weighted = [layer for layer in model.layers if getattr(layer, "kernel", None) is not None]
    records = {r.name: r for r in model.trace(x, y)}
    rs = [records[layer.name] for layer in weighted]
    return {Z: [float(r.preactivation.var()) for r in rs],
            GRAD: [float(r.grad_preactivation.var()) for r in rs],
            TOTAL: [float((r.grad_preactivation ** 2).sum() / len(r.grad_preactivation)) for r in rs],
            "x²": [float(np.mean(np.square(r.input))) for r in rs],
            "w²": [float(layer.kernel.value.var()) for layer in weighted]}


def kept(lab, stats, names):
    """The claim on what the scaled initializers keep (std of z, layer to layer), checked; what happens to the
    gradients, in the printed sentences, from the same numbers."""
    for name in SCALED:
        z, grad, total = stats[name][Z], stats[name][GRAD], stats[name][TOTAL]
        lab.note(f"{name}: std of z {chain(z)} ({names[0]} to {names[-1]}: at most {largest_step(z):.2g}x from one "
                 f"layer to the next)")
        lab.note(f"{name}: std of dL/dz per cell {chain(grad)}: {names[-1]}'s is {grad[-1] / grad[0]:.3g} times "
                 f"{names[0]}'s; per image in total {chain(total)} (at most {largest_step(total):.2g}x from one layer "
                 "to the next)")
    lab.check(f"{' and '.join(SCALED)}: std of z from one weighted layer to the next, largest change (as a factor, "
              "either way)", max(largest_step(stats[name][Z]) for name in SCALED), "<=", KEPT_FACTOR)
    blown = stats["random_normal(1.0)"][Z]
    lab.note(f"random_normal(1.0): std of z {chain(blown)} ({names[-1]}'s is {blown[-1] / blown[0]:.3g} times "
             f"{names[0]}'s)")


def chain(values) -> str:
    return " -> ".join(f"{v:.2g}" for v in values)


def largest_step(values) -> float:
    """The largest factor, up or down, between neighbouring values (inf where one is 0 and the other not)."""
    return max((factor(a, b) for a, b in zip(values, values[1:])), default=1.0)


def factor(a, b) -> float:
    """max(a / b, b / a) for positive a, b: how many times one is the other, whichever is larger."""
    if a == b:
        return 1.0
    return math.inf if min(a, b) <= 0 else max(a / b, b / a)


# Where a layer's config names the initializer of its kernels: Conv2D / Dense, DepthwiseConv2D, SeparableConv2D.
KERNEL_INITIALIZERS = ("kernel_initializer", "depthwise_initializer", "pointwise_initializer")


def with_initializer(config, identifier):
    """``config`` with every kernel's initializer replaced by ``identifier`` and every bias initializer by "zeros",
    nested models' too, and, in a Sequential chain, the Dropout layers left out (a graph's connections name them,
    so a graph keeps them)."""
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
        if "bias_initializer" in settings:            # every bias starts at zero, whatever the architecture says
            settings["bias_initializer"] = "zeros"
        layers.append({**spec, "config": settings})
    return {**config, "layers": layers}


def distinct_filters(kernel):
    """(number of different filters, number of filters): two filters are the same when no weight of theirs differs
    by more than SAME times the kernel's largest |weight| (float64 rounding leaves about 1e-16 of it)."""
    filters = kernel.reshape(-1, kernel.shape[-1]).T
    limit = SAME * float(np.abs(filters).max())
    kinds = []
    for f in filters:
        if not any(np.abs(f - kind).max() <= limit for kind in kinds):
            kinds.append(f)
    return len(kinds), len(filters)
