"""Lesson: backpropagating a filter is two more correlations."""

from __future__ import annotations

import numpy as np

from ..layers import Conv2D
from ..arraymath.reference import correlate2d_loops, dilate2d, full_convolve2d_loops, rotate180
from ..arraymath.shapes import paddings_2d
from . import plots
from .lab import float64, float64_copy, kernel_planes, planes, relative_error

NAME = "backprop"
TITLE = "Backpropagating a filter: the gradients are correlations too"
EXPLANATION = """
A Conv2D layer computes z = b + x ⋆ K (⋆ is cross-correlation: the kernel slides over the
input unflipped). Backpropagation hands the layer the upstream gradient δ = dL/dz and asks
for two things.

  dL/dK  Every weight K[p, q, c, f] multiplied one input cell in every window, so its
         gradient adds up input × δ over all windows: the layer's input correlated with δ,
             dL/dK[:, :, c, f] = Σ_n  x[n, :, :, c] ⋆ δ[n, :, :, f].
  dL/dx  Every input cell was seen by all the windows covering it, through a different
         weight each time: the full convolution of δ with the kernel, which is the same as
         padding δ with kh-1 zeros and correlating it with the kernel rotated by 180°,
             dL/dx[n, :, :, c] = Σ_f  (pad δ[n, :, :, f]) ⋆ rot180(K[:, :, c, f]).

With stride s > 1 the windows skip cells: spread δ back onto the grid of window positions
first (s - 1 zeros between its entries, "dilated by the stride") and the same formulas hold.

The experiment runs the chosen conv layer (--layer; default: the model's last Conv2D larger than
1x1) on a real batch in float64, computes both gradients with the plain loops of
arraymath/reference.py, and compares them with the layer's own backward pass (model.trace) and with central finite
differences of the loss. A stride-2 twin of the layer, with the same kernel, checks the
dilated form.
"""

FD_STEP = 1e-6  # finite differences in float64: truncation and rounding errors both near 1e-9 of the gradient


def experiment(lab):
    model = float64_copy(lab.model())
    conv = chosen_layer(lab, model)
    (_, _), (x_test, y_test) = lab.data()
    n = 4 if lab.fast else 16
    x, y = x_test[:n], y_test[:n]
    lab.number("layer", f"{conv.name}: kernel {conv.kernel.value.shape}, strides {conv.strides}, padding {conv.padding!r}")
    lab.number("batch", f"{n} test images")

    with float64():
        record = next(r for r in model.trace(x, y) if r.name == conv.name)
        pads = paddings_2d(record.input.shape[1:3], conv.kernel_size, conv.strides, conv.padding)
        dkernel, dx, dx_by_true_convolution = gradients_by_loops(record.input, conv.kernel.value,
                                                                 record.grad_preactivation, conv.strides, pads)
        lab.check("dL/dK: loops (input ⋆ δ) vs the layer's backward, relative error",
                  relative_error(dkernel, record.param_grads["kernel"]), "<=", 1e-12)
        lab.check("dL/dx: loops (padded δ ⋆ rot180(K)) vs the layer's backward, relative error",
                  relative_error(dx, record.grad_input), "<=", 1e-12)
        lab.check("dL/dx: padded δ ⋆ rot180(K) vs true full convolution δ * K, relative error",
                  relative_error(dx, dx_by_true_convolution), "<=", 1e-12)

        kernel_fd, input_fd = finite_differences(model, conv, record, x, y, seed=0)
        for what, fd, grad in (("dL/dK", kernel_fd, dkernel), ("dL/dx", input_fd, dx)):
            error, smooth, corners = compare_slopes(fd, grad)
            lab.number(f"{what} finite differences", f"{smooth} points checked, {corners} on a corner of the loss "
                       f"(one-sided slopes differ: no derivative there), step {FD_STEP}")
            lab.check(f"{what}: central differences vs the loops, error relative to max |{what}|", error, "<=", 1e-6)
            lab.check(f"{what}: points where the loss is smooth enough to check", smooth, ">=", 3)

        twin, twin_delta, twin_dk, twin_dx = strided_twin(conv, record.input, stride=2, seed=1)
        twin_pads = paddings_2d(record.input.shape[1:3], conv.kernel_size, twin.strides, conv.padding)
        loop_dk, loop_dx, _ = gradients_by_loops(record.input, twin.kernel.value, twin_delta, twin.strides, twin_pads)
        lab.number("stride-2 twin", f"output {twin_delta.shape[1]}x{twin_delta.shape[2]}, δ dilated to "
                   f"{2 * twin_delta.shape[1] - 1}x{2 * twin_delta.shape[2] - 1}; δ is random (the layer alone is studied)")
        lab.check("stride 2: dL/dK by input ⋆ dilated δ vs the layer's backward, relative error",
                  relative_error(loop_dk, twin_dk), "<=", 1e-12)
        lab.check("stride 2: dL/dx by padded dilated δ ⋆ rot180(K) vs the layer's backward, relative error",
                  relative_error(loop_dx, twin_dx), "<=", 1e-12)

    c, f = strongest_pair(dkernel)
    kernel = conv.kernel.value
    # Sample 0's term of the sum: the same loops on one sample (padded input, δ dilated by the stride).
    one_term = gradients_by_loops(record.input[:1], kernel, record.grad_preactivation[:1], conv.strides,
                                  pads)[0][:, :, c, f]
    lab.picture(f"backprop_{conv.name}.png", plots.panels_figure, [
        (f"input x, channel {c}", record.input[0, :, :, c]),
        (f"upstream δ, filter {f}", record.grad_preactivation[0, :, :, f]),
        ("x ⋆ δ: sample 0's term of dL/dK", one_term),
        (f"dL/dK by loops, batch of {n}", dkernel[:, :, c, f]),
        ("dL/dK by the layer's backward", record.param_grads["kernel"][:, :, c, f]),
        ("kernel K", kernel[:, :, c, f]),
        ("K rotated 180°", rotate180(kernel[:, :, c, f])),
        ("dL/dx by loops", dx[0, :, :, c]),
        ("dL/dx by the layer's backward", record.grad_input[0, :, :, c]),
    ], f"{conv.name}: the gradients as correlations (sample 0, input channel {c}, filter {f})", columns=3,
        note=f"dL/dx of channel {c} sums padded δ ⋆ rot180(K) over all {kernel.shape[3]} filters; "
             f"filter {f}'s δ and kernel slice are the ones drawn")


def chosen_layer(lab, model):
    convs = lab.conv_layers(model)
    # By default the last Conv2D with a kernel larger than 1x1 (a 1x1 kernel's pictures are single cells).
    conv = convs[0] if lab.layer else ([c for c in convs if c.kernel_size != (1, 1)] or convs)[-1]
    if conv.groups != 1 or conv.dilation_rate != (1, 1):
        raise ValueError(f"lesson backprop covers groups=1 and dilation_rate=1; {conv.name!r} has "
                         f"groups={conv.groups}, dilation_rate={conv.dilation_rate}")
    return conv


def gradients_by_loops(x, kernel, delta, strides, pads):
    """(dL/dK, dL/dx, dL/dx again by true full convolution) of a conv layer, from the 2-D loop definitions.

    x (N, H, W, C) is the layer's input, kernel (KH, KW, C, F), delta = dL/dz (N, OH, OW, F).
    """
    kh, kw = kernel.shape[:2]
    (top, bottom), (left, right) = pads
    x_pad = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    # δ on the grid of window positions: (N, 1, F, h, w), broadcast against channels below.
    d = dilate2d(planes(delta), strides)[:, None]
    # A stride can leave the last rows / columns unvisited; the correlation covers the visited ones.
    visited = planes(x_pad)[:, :, None, : d.shape[-2] + kh - 1, : d.shape[-1] + kw - 1]   # (N, C, 1, H', W')
    dkernel = correlate2d_loops(visited, d).sum(axis=0).transpose(2, 3, 0, 1)               # sum over samples
    k = kernel_planes(kernel)[None]                                                          # (1, C, F, KH, KW)
    d_padded = np.pad(d, ((0, 0), (0, 0), (0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
    by_rotation = correlate2d_loops(d_padded, rotate180(k)).sum(axis=2)                      # sum over filters
    by_convolution = full_convolve2d_loops(d, k).sum(axis=2)
    return dkernel, *(back_to_input(g, x_pad.shape, pads) for g in (by_rotation, by_convolution))


def back_to_input(grad_planes, padded_shape, pads):
    """(N, C, h, w) gradient of the visited padded cells -> (N, H, W, C) gradient of the unpadded input."""
    (top, bottom), (left, right) = pads
    full = np.zeros((padded_shape[0], padded_shape[3], padded_shape[1], padded_shape[2]))
    full[:, :, : grad_planes.shape[2], : grad_planes.shape[3]] = grad_planes
    return np.moveaxis(full[:, :, top : padded_shape[1] - bottom, left : padded_shape[2] - right], 1, 3)


def finite_differences(model, conv, record, x, y, seed):
    """One-sided slopes of the loss, (left, right), for a few kernel weights and input cells of ``conv``:
    the 3 largest gradients and some at random. Returns two dicts {index: (left, right)}."""
    rng = np.random.default_rng(seed)
    h = record.input.copy()

    def picks(grad, random):
        largest = np.argsort(np.abs(grad).ravel())[-3:]
        return [np.unravel_index(i, grad.shape) for i in [*largest, *rng.choice(grad.size, random, replace=False)]]

    def loss_of_kernel():
        return float(model.loss(y, model.predict(x, verbose=0)))

    def loss_of_input():
        # The layer reads the perturbed copy h instead of what reaches it: the rest of the model, graph or
        # chain, runs as it is. trace runs every layer's own forward (predict may fuse a layer with the next).
        conv.forward = lambda _, training=False: type(conv).forward(conv, h, training=training)
        try:
            return float(model.loss(y, model.trace(x)[-1].output))
        finally:
            del conv.forward

    kernel = conv.kernel.value
    kernel_fd = {i: slopes(loss_of_kernel, kernel, i) for i in picks(record.param_grads["kernel"], 3)}
    input_fd = {i: slopes(loss_of_input, h, i) for i in picks(record.grad_input, 9)}
    return kernel_fd, input_fd


def slopes(loss, array, i):
    """(slope to the left, slope to the right) of ``loss()`` as ``array[i]`` moves by FD_STEP; restores ``array[i]``."""
    saved = array[i]
    values = []
    for value in (saved - FD_STEP, saved, saved + FD_STEP):
        array[i] = value
        values.append(loss())
    array[i] = saved
    down, mid, up = values
    return (mid - down) / FD_STEP, (up - mid) / FD_STEP


def compare_slopes(slopes_by_index, grad):
    """(largest error of the central difference, number of smooth points, number of corners) against ``grad``.

    A point where the two one-sided slopes differ by more than the tolerance (1e-6 of the gradient's
    scale) is a corner of the loss, typically a max-pooling tie (MNIST's zero background makes windows
    tie exactly): no derivative exists there, so it is counted and left out."""
    scale = float(np.abs(grad).max())
    smooth = {i: (left + right) / 2 for i, (left, right) in slopes_by_index.items() if abs(right - left) <= 1e-6 * scale}
    error = max((abs(fd - grad[i]) for i, fd in smooth.items()), default=float("nan")) / scale
    return error, len(smooth), len(slopes_by_index) - len(smooth)


def strided_twin(conv, x, stride, seed):
    """A copy of ``conv`` with stride ``stride`` (same kernel and bias, no activation), run forward and backward
    on ``x`` with a random upstream gradient. Returns (layer, δ, its dL/dK, its dL/dx)."""
    twin = Conv2D(conv.filters, conv.kernel_size, strides=stride, padding=conv.padding, use_bias=conv.use_bias,
                  name="strided_twin")
    twin.build((None, *x.shape[1:]))
    twin.set_weights(conv.get_weights())
    z = twin.forward(x)
    delta = np.random.default_rng(seed).standard_normal(z.shape)
    dx = twin.backward(delta)
    return twin, delta, twin.kernel.grad.copy(), dx


def strongest_pair(dkernel):
    """(channel, filter) whose kernel gradient is largest: the most telling pair to draw."""
    c, f = np.unravel_index(np.abs(dkernel).sum(axis=(0, 1)).argmax(), dkernel.shape[2:])
    return int(c), int(f)
