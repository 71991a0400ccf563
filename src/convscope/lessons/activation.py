"""Lesson: the activation acts on every element, and without it stacked convolutions collapse into one."""

from __future__ import annotations

import numpy as np

from .. import activations
from ..layers import Conv2D, Dense, Flatten, Input
from ..models import Sequential
from ..arraymath.reference import full_convolve2d_loops
from ..viz import filters_figure
from . import plots
from .lab import float64, float64_copy, kernel_planes, relative_error, seeded

NAME = "activation"
TITLE = "Activation: element by element, and what stacking convolutions needs it for"
EXPLANATION = """
A Conv2D layer's activation is applied to every element of every feature map on its own:
y[n, i, j, f] = relu(z[n, i, j, f]). The maps keep their shape; every cell goes through the
same curve.

Without it, depth buys nothing. A convolution is linear, and a convolution of a convolution
is again one convolution: two stacked 3x3 layers (K1, b1, then K2, b2) equal a single 5x5
layer whose kernel composes the two by full convolution, mixed across the middle channels,

    K[:, :, c, g] = Σ_f  K1[:, :, c, f] * K2[:, :, f, g]          (* : full convolution)
    b[g]          = b2[g] + Σ_f  b1[f] · Σ_{p,q} K2[p, q, f, g]

With a ReLU in between no single kernel can do it: ReLU zeroes a different set of cells in
every image, which no fixed linear map reproduces.

The experiment checks each statement on real images: the model's first conv layer's maps
before and after activation; the single kernel equivalent to its first two conv kernels
stacked directly (float64); the best single 5x5 kernel fitted by least squares, with and
without a ReLU between the two; and a small network (strided convolutions, no pooling, which
is itself non-linear) trained with and without activations.
"""


def experiment(lab):
    model = float64_copy(lab.model())
    (_, _), (x_test, _) = lab.data()
    convs = lab.conv_layers(model)
    first = convs[0]
    with float64():
        images = x_test[: 8 if lab.fast else 32].astype(np.float64)
        record = next(r for r in model.trace(images) if r.name == first.name)
    element_by_element(lab, first, record)
    images = record.input       # what the studied layer reads: the images for a first layer, else earlier maps

    # Two stacked convolutions: the model's first two kernels, applied directly one after the other.
    k1, b1 = kernel_and_bias(first)
    second = next((c for c in convs[1:] if c.kernel.value.shape[2] == k1.shape[3]), None)
    if second is None:
        lab.note("no later conv layer takes the first one's maps; a seeded random second kernel is used")
        k2, b2 = np.random.default_rng(0).normal(0.0, 0.1, (3, 3, k1.shape[3], 16)), np.zeros(16)
    else:
        k2, b2 = kernel_and_bias(second)
    k, b = compose(k1, b1, k2, b2)
    lab.number("stacked kernels", f"{k1.shape} then {k2.shape} -> one kernel {k.shape}")
    relu = activations.get("relu")
    with float64():
        linear_stack = convolve(convolve(images, k1, b1), k2, b2)
        single = convolve(images, k, b)
        relu_stack = convolve(relu(convolve(images, k1, b1)), k2, b2)
    lab.check("two stacked linear convolutions vs the single composed kernel, relative error",
              relative_error(single, linear_stack), "<=", 1e-12)
    _, linear_residual = best_single_kernel(images, linear_stack, k.shape[0])
    relu_fit, relu_residual = best_single_kernel(images, relu_stack, k.shape[0])
    lab.check("best single kernel (least squares) for the linear stack: residual", linear_residual, "<=", 1e-10)
    lab.check("best single kernel with ReLU in between: residual (share of the output it misses)",
              relu_residual, ">=", 0.05)

    g = int(np.abs(relu_stack - relu_fit).sum(axis=(0, 1, 2)).argmax())
    lab.picture("activation_composed_kernels.png", filters_figure, k,
                title=f"the single {k.shape[0]}x{k.shape[1]} kernels equal to {k1.shape[0]}x{k1.shape[1]} then "
                      f"{k2.shape[0]}x{k2.shape[1]} (no activation)")
    lab.picture("activation_stacking.png", plots.panels_figure, [
        (f"two linear convs, map {g}", linear_stack[0, :, :, g]),
        (f"one composed {k.shape[0]}x{k.shape[1]} conv", single[0, :, :, g]),
        (f"difference (max {np.abs(single - linear_stack).max():.1e})", single[0, :, :, g] - linear_stack[0, :, :, g]),
        ("two convs, ReLU between", relu_stack[0, :, :, g]),
        (f"best single {k.shape[0]}x{k.shape[1]} kernel", relu_fit[0, :, :, g]),
        ("what it misses", relu_stack[0, :, :, g] - relu_fit[0, :, :, g]),
    ], "without activation two convolutions are one; with ReLU between, no single kernel fits", columns=3)

    # The small network of that part is the lesson's own: it learns the digits as they are.
    (x_train, y_train), (x_test, y_test) = lab.digits()
    with_and_without(lab, x_train, y_train, x_test, y_test)


def element_by_element(lab, layer, record):
    z, y = record.preactivation, record.output
    lab.number(f"{layer.name}: activation", layer.activation.name)
    if layer.activation.name == "linear":
        lab.note(f"{layer.name} has no activation of its own (linear): a graph such as MobileNetV2 applies its "
                 "nonlinearity as separate layers (BatchNormalization, then ReLU)")
    lab.number(f"{layer.name}: elements the activation changed", f"{np.mean(z != y):.1%} of {z.size:,}")
    lab.check(f"{layer.name}: output vs activation(pre-activation) element by element, max |difference|",
              np.abs(y - layer.activation(z)).max(), "==", 0)
    lab.check(f"{layer.name}: output shape differs from pre-activation shape", y.shape != z.shape, "==", 0)
    f = int(np.mean(z != y, axis=(0, 1, 2)).argmax())
    lab.picture("activation_elementwise.png", plots.activation_figure, z[0, :, :, f], y[0, :, :, f],
                f"{layer.name}, map {f}: {layer.activation.name} applied to every element")


def kernel_and_bias(conv):
    """A conv layer's kernel and bias (zeros when it has none)."""
    return conv.kernel.value, conv.bias.value if conv.use_bias else np.zeros(conv.filters)


def compose(k1, b1, k2, b2):
    """The single (kernel, bias) equal to correlating with k1 (+ b1) and then with k2 (+ b2)."""
    # (C, F, 1, KH, KW) against (1, F, G, KH, KW): every (input channel, middle channel, output) triple.
    per_middle_channel = full_convolve2d_loops(kernel_planes(k1)[:, :, None], kernel_planes(k2)[None])
    kernel = per_middle_channel.sum(axis=1).transpose(2, 3, 0, 1)          # sum over f -> (KH', KW', C, G)
    bias = b2 + b1 @ k2.sum(axis=(0, 1))                                      # b1 passes through k2's weights
    return kernel, bias


def convolve(x, kernel, bias):
    """A linear Conv2D ("valid", stride 1) holding ``kernel`` and ``bias``, applied to ``x``."""
    layer = Conv2D(kernel.shape[3], kernel.shape[:2], name="lesson_conv")
    layer.build((None, *x.shape[1:]))
    layer.set_weights([kernel, bias])
    return layer(x)


def best_single_kernel(images, target, size):
    """Least-squares fit of one size x size kernel (and bias) mapping ``images`` to ``target``.

    Returns (the fitted maps, residual): residual = |target - fit| / |target - its mean|, the share of the
    target's variation that no single kernel captures (0: a perfect fit; 1: no better than a constant)."""
    n, h, w, c = images.shape
    patches = np.lib.stride_tricks.sliding_window_view(images, (size, size), axis=(1, 2))  # (N, OH, OW, C, s, s)
    rows = patches.transpose(0, 1, 2, 4, 5, 3).reshape(-1, size * size * c)                # in a kernel's (p, q, c) order
    design = np.hstack([rows, np.ones((len(rows), 1))])
    goal = target.reshape(len(rows), -1)
    solution = np.linalg.lstsq(design, goal, rcond=None)[0]
    fit = design @ solution
    residual = np.linalg.norm(goal - fit) / np.linalg.norm(goal - goal.mean(axis=0))
    return fit.reshape(target.shape), float(residual)


def small_network(activation, input_shape):
    return Sequential([
        Input(shape=input_shape),
        Conv2D(16, 3, strides=2, activation=activation),
        Conv2D(32, 3, strides=2, activation=activation),
        Flatten(),
        Dense(10, activation="softmax"),
    ])


def with_and_without(lab, x_train, y_train, x_test, y_test):
    """Train the same small network with ReLU and with no activation; compare accuracy and linearity."""
    epochs = 5
    curves, accuracy, nonlinearity = {}, {}, {}
    for label, activation in (("with ReLU", "relu"), ("without activations", None)):
        with seeded(0):
            net = small_network(activation, x_train.shape[1:])
            net.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            history = net.fit(x_train, y_train, batch_size=128, epochs=epochs, validation_data=(x_test, y_test),
                              verbose=0)
        curves[label] = history.history["val_accuracy"]
        accuracy[label] = curves[label][-1]
        nonlinearity[label] = mixing_error(net, x_test[:100], x_test[100:200])
    lab.table(f"the same network trained {epochs} epochs on {len(x_train):,} images",
              ["network", "test accuracy", "|f(mix) - mix of f| / |f|"],
              [[label, accuracy[label], nonlinearity[label]] for label in curves])
    lab.check("without activations the trained network is affine: |f(a·x1 + (1-a)·x2) - (a·f(x1) + (1-a)·f(x2))| / |f|",
              nonlinearity["without activations"], "<=", 1e-4)
    lab.check("test accuracy with ReLU minus without", accuracy["with ReLU"] - accuracy["without activations"], ">=", 0.02)
    lab.picture("activation_training.png", plots.runs_figure, curves, "the same network with and without activations",
                "test accuracy", xlabel="epoch")


def mixing_error(net, x1, x2, a=0.3):
    """How far the logits are from affine in the input: max |f(a·x1 + (1-a)·x2) - (a·f(x1) + (1-a)·f(x2))| / max |f|."""
    def logits(x):
        return net.trace(x)[-1].preactivation          # the last layer's values before its softmax

    mixed, f1, f2 = logits(a * x1 + (1 - a) * x2), logits(x1), logits(x2)
    return float(np.abs(mixed - (a * f1 + (1 - a) * f2)).max() / np.abs(mixed).max())
