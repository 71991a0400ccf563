"""Lesson: the activation acts on every element, and without it stacked convolutions collapse into one."""

from __future__ import annotations

import numpy as np

from .. import activations, backend
from ..layers import AveragePooling2D, Conv2D, Dense, Flatten, Input
from ..models import Sequential
from ..arraymath.reference import dilate2d, full_convolve2d_loops
from ..viz import filters_figure
from . import plots
from .lab import float64, float64_copy, kernel_planes, relative_error

NAME = "activation"
TITLE = "Activation: element by element, and what stacking convolutions needs it for"
QUESTION = "What does a conv layer's activation do, and why can't stacked conv layers do without it?"
EXPLANATION = """
A Conv2D layer's activation g is applied to every element of every feature map on its own:
y[n, i, j, f] = g(z[n, i, j, f]), with g = relu in the Keras MNIST convnet. The maps keep
their shape; every cell goes through the same curve.

Without it, depth buys nothing. A convolution is linear (plus a constant, the bias), and a
convolution of a convolution is again one convolution: at stride 1 and without padding, two
stacked 3x3 layers (K1, b1, then K2, b2) equal a single 5x5 layer whose kernel composes the
two by full convolution, mixed across the middle channels,

    K[:, :, c, g] = Σ_f  K1[:, :, c, f] * K2[:, :, f, g]          (* : full convolution)
    b[g]          = b2[g] + Σ_f  b1[f] · Σ_{p,q} K2[p, q, f, g]

(each layer computes x ⋆ K + b; the composed kernel is used the same way). With a ReLU in
between no single kernel can do it: ReLU zeroes a different set of cells in every image, which
no fixed linear map reproduces, and even the best single kernel misses part of the output.

The experiment checks each statement on real images: the studied conv layer's maps (the first,
or --layer) before and after its activation; the single kernel equal to its kernel and the
next one that reads as many channels, applied directly one after the other (stride 1, no
padding, float64; a dilated or grouped kernel written as the plain kernel it equals); the best
single kernel of that size fitted by least squares, with and without a ReLU between the two;
and a small network trained from the same start with and without activations: two strided
convolutions, the average of each 3x3 block of their maps (averaging is linear; max pooling
would not be), then Dense. Without activations it is one affine map of the image, and a narrow
one: each of the 2x2x32 averages its classifier reads is a fixed weighted sum of the pixels in
one part of the digit. With ReLU the averages are taken over rectified responses, which no
weighted sum of pixels gives.
"""


FAST_IMAGES = 2000    # the small network's training images in fast mode


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

    # Two stacked convolutions: the studied kernel and the next that reads its maps, applied directly in turn.
    k1, b1 = kernel_and_bias(first)
    later = [c for c in convs[1:] if model.layers.index(c) > model.layers.index(first)]
    second = next((c for c in later if kernel_and_bias(c)[0].shape[2] == k1.shape[3]), None)
    if second is None:
        lab.note(f"no later conv layer reads {k1.shape[3]} channels; a random second kernel (normal, std 0.1, from the "
                 "lesson's seed) is used")
        k2, b2 = backend.global_rng().normal(0.0, 0.1, (3, 3, k1.shape[3], 16)), np.zeros(16)
    else:
        k2, b2 = kernel_and_bias(second)
    k, b = compose(k1, b1, k2, b2)
    lab.number("stacked kernels", f"{k1.shape} then {k2.shape} -> one kernel {k.shape}")
    relu = activations.get("relu")
    with float64():
        middle = convolve(images, k1, b1)
        linear_stack = convolve(middle, k2, b2)
        single = convolve(images, k, b)
        relu_stack = convolve(relu(middle), k2, b2)
    lab.check("two stacked linear convolutions vs the single composed kernel, relative error",
              relative_error(single, linear_stack), "<=", 1e-12)
    _, linear_residual = best_single_kernel(images, linear_stack, k.shape[0])
    relu_fit, relu_residual = best_single_kernel(images, relu_stack, k.shape[0])
    lab.check("best single kernel (least squares) for the linear stack: residual", linear_residual, "<=", 1e-10)
    lab.number("ReLU in between: cells of the middle maps it set to zero",
               f"{np.mean(middle < 0):.1%}")
    lab.check("best single kernel with ReLU in between: residual (share of the output it misses)",
              relu_residual, ">=", 0.01)

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
    keep = FAST_IMAGES if lab.fast else len(x_train)
    with_and_without(lab, x_train[:keep], y_train[:keep], x_test, y_test)


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
    """A conv layer's kernel, as the plain kernel (kh', kw', C, F) it equals at stride 1, and its bias (zeros when
    it has none): a dilated kernel with zeros between its taps, a grouped one with zeros for the channels
    outside each filter's group."""
    kernel = dilate2d(kernel_planes(conv.kernel.value), conv.dilation_rate).transpose(2, 3, 0, 1)
    depth, per_group = kernel.shape[2], conv.filters // conv.groups
    plain = np.zeros((*kernel.shape[:2], depth * conv.groups, conv.filters), kernel.dtype)
    for f in range(conv.filters):
        group = f // per_group
        plain[:, :, group * depth : (group + 1) * depth, f] = kernel[..., f]
    return plain, conv.bias.value if conv.use_bias else np.zeros(conv.filters)


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
    """Two strided convolutions, the average of each 3x3 block of their maps (a 28x28 digit leaves a 2x2 grid of
    averages), a Dense classifier. Averaging is linear, so without activations the whole network is one affine
    map of the image, whose classifier reads 2x2x32 fixed weighted sums of the pixels, one per part and channel."""
    return Sequential([
        Input(shape=input_shape),
        Conv2D(16, 3, strides=2, activation=activation),
        Conv2D(32, 3, strides=2, activation=activation),
        AveragePooling2D(3),
        Flatten(),
        Dense(10, activation="softmax"),
    ])


def with_and_without(lab, x_train, y_train, x_test, y_test):
    """Train the same small network, from the same weights, with ReLU and with no activation; compare accuracy
    and linearity."""
    epochs = 5
    nets = {"with ReLU": small_network("relu", x_train.shape[1:]),
            "without activations": small_network(None, x_train.shape[1:])}
    nets["without activations"].set_weights(nets["with ReLU"].get_weights())     # the same start
    curves, accuracy, nonlinearity = {}, {}, {}
    for label, net in nets.items():
        net.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        curves[label] = []
        for _ in lab.progress(range(epochs), description=f"the small network {label}, {epochs} epochs"):
            history = net.fit(x_train, y_train, batch_size=32, epochs=1, validation_data=(x_test, y_test), verbose=0)
            curves[label] += history.history["val_accuracy"]
        accuracy[label] = curves[label][-1]
        nonlinearity[label] = mixing_error(net, x_test[:100], x_test[100:200])
    lab.table(f"the same network trained {epochs} epochs on {len(x_train):,} images",
              ["network", "test accuracy", "|f(mix) - mix of f| / |f|"],
              [[label, accuracy[label], nonlinearity[label]] for label in curves])
    lab.check("without activations the trained network is affine: |f(a·x1 + (1-a)·x2) - (a·f(x1) + (1-a)·f(x2))| / |f|",
              nonlinearity["without activations"], "<=", 1e-4)
    lab.check("test accuracy with ReLU minus without", accuracy["with ReLU"] - accuracy["without activations"], ">=", 0.05)
    lab.picture("activation_training.png", plots.runs_figure, curves, "the same network with and without activations",
                "test accuracy", xlabel="epoch")


def mixing_error(net, x1, x2, a=0.3):
    """How far the logits are from affine in the input: max |f(a·x1 + (1-a)·x2) - (a·f(x1) + (1-a)·f(x2))| / max |f|."""
    def logits(x):
        return net.trace(x)[-1].preactivation          # the last layer's values before its softmax

    mixed, f1, f2 = logits(a * x1 + (1 - a) * x2), logits(x1), logits(x2)
    return float(np.abs(mixed - (a * f1 + (1 - a) * f2)).max() / np.abs(mixed).max())
