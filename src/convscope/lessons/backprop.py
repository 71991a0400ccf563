"""Lesson: backpropagating a filter is two more correlations."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import backend
from ..layers import Conv2D
from ..arraymath.reference import correlate2d_loops, dilate2d, full_convolve2d_loops, rotate180
from ..arraymath.shapes import paddings_2d
from . import plots
from .lab import float64, float64_copy, kernel_planes, planes, relative_error

NAME = "backprop"
TITLE = "Backpropagating a filter: the gradients are correlations too"
QUESTION = "How is a filter backpropagated: what are a conv layer's gradients with respect to its kernel and its input?"
EXPLANATION = """
A Conv2D layer computes z = x ⋆ K + b (⋆ is cross-correlation: the kernel slides over the
input unflipped; * is the true convolution, kernel flipped). Backpropagation hands the layer
the upstream gradient δ = dL/dz and asks for two things.

  dL/dK  Every weight K[p, q, c, f] multiplied one input cell in every window, so its
         gradient adds up input × δ over all windows and all samples of the batch: the
         layer's input correlated with δ, one term per sample,
             dL/dK[:, :, c, f] = Σ_n  x[n, :, :, c] ⋆ δ[n, :, :, f].
  dL/dx  Every input cell was seen by all the windows covering it, through a different
         weight each time: the full convolution of δ with the kernel, which is the same as
         padding δ with kh-1 zeros and correlating it with the kernel rotated by 180°,
             dL/dx[n, :, :, c] = Σ_f  δ[n, :, :, f] * K[:, :, c, f]   (full)
                               = Σ_f  (pad δ[n, :, :, f]) ⋆ rot180(K[:, :, c, f]).

Stride. With stride s > 1 the windows start every s cells: spread δ back onto the grid of
window positions first (s - 1 zeros between its entries, "dilated by the stride"), and the
same two formulas hold on the cells the windows cover. The OH windows of a column start at
rows 0, s, ..., (OH - 1)·s, so they cover rows 0 to (OH - 1)·s + kh - 1; when H - kh is not a
multiple of s, the rows after that are in no window. With stride 2 on 28 rows and a 3x3
"valid" kernel, OH = 13 windows cover rows 0 to 26 and row 27 is never read. Such a row
does not reach z, so dL/dx there is exactly 0, and it adds nothing to dL/dK: the loops
correlate only the covered part of the input (they crop x to its first (OH - 1)·s + kh rows
and columns) and fill dL/dx's never-covered rows and columns with zeros.
Padding. With padding="same" the input is first surrounded by zero rows and columns
(Keras's rule: OH = ceil(H / s), total = max((OH - 1)·s + kh - H, 0) rows, the odd one at the
bottom / right); the formulas run on the padded input, and the gradient that lands on the
padding is dropped (the zeros are constants, not inputs): dL/dx is cropped back to H x W.

The experiment runs the chosen conv layer (--layer; default: the model's last Conv2D larger than
1x1) on a real batch in float64, computes both gradients with the plain loops of
arraymath/reference.py, and compares them with the layer's own backward pass (model.trace) and with
central finite differences of the loss, at points where the loss is verified smooth (no ReLU kink
or max-pooling tie within reach of the step). A stride-2 twin of the layer, with the same kernel,
checks the dilated form and the never-covered edge.
"""

FD_STEP = 1e-6        # finite differences in float64: truncation and rounding errors both near 1e-9 of the gradient
FD_POINTS = 6         # points verified smooth that each finite-difference check needs ...
FD_CANDIDATES = 30    # ... found among at most this many (the largest gradients and random ones, alternating)
BEND_LIMIT = 1e-10    # a point is smooth when no layer output bends by more than this (see ``bend``)


def experiment(lab):
    model = float64_copy(lab.model())
    conv = chosen_layer(lab, model)
    (_, _), (x_test, y_test) = lab.data()
    n = 4 if lab.fast else 16
    x, y = x_test[:n], y_test[:n]
    lab.number("layer", f"{conv.name}: kernel {conv.kernel.value.shape}, strides {conv.strides}, padding {conv.padding!r}")
    lab.number("batch", f"{n} test images")

    with float64():
        traced = model.trace(x, y)
        record = next(r for r in traced if r.name == conv.name)
        pads = paddings_2d(record.input.shape[1:3], conv.kernel_size, conv.strides, conv.padding)
        lab.number(f"{conv.name}'s windows",
                   coverage_text(record.input.shape[1:3], conv.kernel_size, conv.strides, pads))
        dkernel, dx, dx_by_true_convolution = gradients_by_loops(record.input, conv.kernel.value,
                                                                 record.grad_preactivation, conv.strides, pads)
        lab.check("dL/dK: loops (input ⋆ δ) vs the layer's backward, relative error",
                  relative_error(dkernel, record.param_grads["kernel"]), "<=", 1e-12)
        lab.check("dL/dx: loops (padded δ ⋆ rot180(K)) vs the layer's backward, relative error",
                  relative_error(dx, record.grad_input), "<=", 1e-12)
        lab.check("dL/dx: padded δ ⋆ rot180(K) vs true full convolution δ * K, relative error",
                  relative_error(dx, dx_by_true_convolution), "<=", 1e-12)

        tried = finite_differences(model, conv, record, x, y)
        for what, grad in (("dL/dK", dkernel), ("dL/dx", dx)):
            points = tried[what]
            smooth = [p for p in points if p.smooth]
            lab.number(f"{what} finite differences", f"{len(points)} points tried (the largest gradients and random "
                       f"ones, alternating), {len(points) - len(smooth)} rejected for a kink within 2 steps (a ReLU "
                       f"input at 0, a max-pooling tie: some layer's output bends by up to "
                       f"{max((p.bend for p in points), default=0):.1e}), {len(smooth)} kept (bend at most "
                       f"{max((p.bend for p in smooth), default=0):.1e}); step h = {FD_STEP}")
            scale = max(scale_of(grad), 1e-300)   # a gradient of exact zeros: the absolute error
            error = max((abs(p.central - grad[p.index]) / scale for p in smooth), default=float("nan"))
            lab.check(f"{what}: points verified smooth (at ±h and ±2h no layer's output bends by more than "
                      f"{BEND_LIMIT:g} of its largest value), found among at most {FD_CANDIDATES}", len(smooth), ">=",
                      FD_POINTS)
            lab.check(f"{what}: central differences at those points vs the loops, error relative to max |{what}|",
                      error, "<=", 1e-6)

        twin_input = with_an_uncovered_edge(record.input, conv.kernel_size, stride=2, padding=conv.padding)
        twin, twin_delta, twin_dk, twin_dx = strided_twin(conv, twin_input, stride=2)
        twin_pads = paddings_2d(twin_input.shape[1:3], conv.kernel_size, twin.strides, conv.padding)
        loop_dk, loop_dx, _ = gradients_by_loops(twin_input, twin.kernel.value, twin_delta, twin.strides, twin_pads)
        lab.number("stride-2 twin", f"input {twin_input.shape[1]}x{twin_input.shape[2]}"
                   + ("" if twin_input.shape == record.input.shape else f" (the layer's {record.input.shape[1]}x"
                      f"{record.input.shape[2]} input without its last row / column, so that one is never covered)")
                   + f", output {twin_delta.shape[1]}x{twin_delta.shape[2]}, δ dilated to "
                   f"{2 * twin_delta.shape[1] - 1}x{2 * twin_delta.shape[2] - 1}; δ is random (the layer alone is studied)")
        lab.number("stride-2 twin's windows",
                   coverage_text(twin_input.shape[1:3], conv.kernel_size, twin.strides, twin_pads))
        lab.check("stride 2: dL/dK by input ⋆ dilated δ vs the layer's backward, relative error",
                  relative_error(loop_dk, twin_dk), "<=", 1e-12)
        lab.check("stride 2: dL/dx by padded dilated δ ⋆ rot180(K) vs the layer's backward, relative error",
                  relative_error(loop_dx, twin_dx), "<=", 1e-12)
        rows, cols = uncovered(twin_input.shape[1:3], conv.kernel_size, twin.strides, twin_pads)
        if rows or cols:
            edge = np.zeros(twin_input.shape[1:3], dtype=bool)
            edge[twin_input.shape[1] - rows:, :] = edge[:, twin_input.shape[2] - cols:] = True
            lab.check(f"stride 2: |dL/dx| on the {rows} row(s) and {cols} column(s) no window covers (the layer's "
                      f"backward), largest", np.abs(twin_dx[:, edge]).max(), "==", 0)

    draw(lab, conv, record, dkernel, dx, y, traced[-1].output)


def draw(lab, conv, record, dkernel, dx, y, probabilities):
    """The picture: the batch sum dL/dK = Σ_n x ⋆ δ next to its largest term, for the most telling (c, f)."""
    n = len(y)
    c, f = strongest_pair(dkernel)
    kernel = conv.kernel.value
    pads = paddings_2d(record.input.shape[1:3], conv.kernel_size, conv.strides, conv.padding)
    # Each sample's term of the sum: the same loops on one sample at a time (padded input, δ dilated by the stride).
    terms = np.stack([gradients_by_loops(record.input[i : i + 1], kernel, record.grad_preactivation[i : i + 1],
                                         conv.strides, pads)[0][:, :, c, f] for i in range(n)])
    s = int(np.abs(terms).sum(axis=(1, 2)).argmax())
    share = float(np.abs(terms[s]).sum() / np.abs(terms).sum())
    lab.number("picture", f"input channel {c}, filter {f}: sample {s}'s term is the largest of the {n} in the "
               f"sum dL/dK (its share of Σ |term|: {share:.0%}); the model gives sample {s}'s label, {int(y[s])}, "
               f"probability {float(np.ravel(probabilities[s])[int(y[s])]):.3g} (the surer and righter the model, "
               "the smaller δ)")
    lab.picture(f"backprop_{conv.name}.png", plots.panels_figure, [
        (f"x: sample {s}, channel {c}", record.input[s, :, :, c]),
        (f"δ: sample {s}, filter {f}", record.grad_preactivation[s, :, :, f]),
        (f"x ⋆ δ: sample {s}'s term", terms[s]),
        (f"the other {n - 1} terms, summed", terms.sum(axis=0) - terms[s]),
        (f"dL/dK: all {n} terms (loops)", dkernel[:, :, c, f]),
        ("dL/dK: the layer's backward", record.param_grads["kernel"][:, :, c, f]),
        ("kernel K", kernel[:, :, c, f]),
        ("K rotated 180°", rotate180(kernel[:, :, c, f])),
        (f"dL/dx: sample {s}, loops", dx[s, :, :, c]),
        ("dL/dx: the layer's backward", record.grad_input[s, :, :, c]),
    ], f"{conv.name}: dL/dK = Σ over the batch of x ⋆ δ (input channel {c}, filter {f}; sample {s}'s term is "
       f"{share:.0%} of Σ |term|)", columns=5, groups=[(2, 3, 4, 5), (8, 9)],
        note=f"one colour scale for the four dL/dK panels (a term, the rest, their sum, the layer's), one for the two "
             f"dL/dx panels\ndL/dx of channel {c} sums padded δ ⋆ rot180(K) over all {kernel.shape[3]} filters; "
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
    # A stride can leave the last rows / columns in no window (``uncovered``): they never reach z, so the
    # correlation runs on the covered (OH - 1)·s + kh rows and columns alone.
    covered = planes(x_pad)[:, :, None, : d.shape[-2] + kh - 1, : d.shape[-1] + kw - 1]   # (N, C, 1, H', W')
    dkernel = correlate2d_loops(covered, d).sum(axis=0).transpose(2, 3, 0, 1)               # sum over samples
    k = kernel_planes(kernel)[None]                                                          # (1, C, F, KH, KW)
    d_padded = np.pad(d, ((0, 0), (0, 0), (0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
    by_rotation = correlate2d_loops(d_padded, rotate180(k)).sum(axis=2)                      # sum over filters
    by_convolution = full_convolve2d_loops(d, k).sum(axis=2)
    return dkernel, *(back_to_input(g, x_pad.shape, pads) for g in (by_rotation, by_convolution))


def back_to_input(grad_planes, padded_shape, pads):
    """(N, C, h, w) gradient of the covered padded cells -> (N, H, W, C) gradient of the unpadded input: the rows
    and columns no window covers get 0 (they do not reach z), the padding's gradient is cropped away."""
    (top, bottom), (left, right) = pads
    full = np.zeros((padded_shape[0], padded_shape[3], padded_shape[1], padded_shape[2]))
    full[:, :, : grad_planes.shape[2], : grad_planes.shape[3]] = grad_planes
    return np.moveaxis(full[:, :, top : padded_shape[1] - bottom, left : padded_shape[2] - right], 1, 3)


@dataclass
class Point:
    """A finite-difference point: ``index`` into the array, the loss at -2h, -h, +h, +2h around it, and
    ``bend``: how far the most bent layer output (or the loss) is from smooth there (see ``bend``)."""

    index: tuple
    losses: tuple
    bend: float

    @property
    def central(self) -> float:
        return (self.losses[2] - self.losses[1]) / (2 * FD_STEP)

    @property
    def smooth(self) -> bool:
        return self.bend <= BEND_LIMIT


def bend(at0, down2, down1, up1, up2) -> float:
    """max |Δ²(2h) - 4 Δ²(h)| / max |value at 0|, with Δ²(t) = v(+t) + v(-t) - 2 v(0), for one layer's output.

    A smooth function has Δ²(t) = t² v'' + O(t⁴), so the difference is rounding alone (about 1e-15 of the values).
    A kink within 2h of the point (a ReLU input crossing 0, a max-pooling tie breaking, a clipped
    probability) makes Δ² grow like t, not t², and leaves about the step times the jump in slope (1e-7 of the
    values on MNIST's ties). Each cell of each layer is looked at: kinks that cancel in the loss still show."""
    second = lambda down, up: up + down - 2 * at0   # noqa: E731
    return float(np.abs(second(down2, up2) - 4 * second(down1, up1)).max() / max(float(np.abs(at0).max()), 1e-300))


def finite_differences(model, conv, record, x, y):
    """{"dL/dK": [Point, ...], "dL/dx": [...]}: for the kernel and the input of ``conv``, the points tried in order
    (picked by the layer's own gradient) until FD_POINTS of them are smooth or FD_CANDIDATES have been tried."""
    rng = backend.global_rng()   # the random candidates: another --seed, other points
    h = record.input.copy()

    def evaluate():
        """(the loss, every layer's output and the loss, flattened) with the layer reading the copy h instead of
        what reaches it: the rest of the model, graph or chain, runs as it is; trace runs every layer's own
        forward (predict may fuse a layer with the next)."""
        conv.forward = lambda _, training=False: type(conv).forward(conv, h, training=training)
        try:
            records = model.trace(x)
        finally:
            del conv.forward
        loss = loss_of(model, y, records)
        return loss, [*(flat(r.output) for r in records), np.array([loss])]

    _, at0 = evaluate()
    found = {}
    for what, array, grad in (("dL/dK", conv.kernel.value, record.param_grads["kernel"]), ("dL/dx", h, record.grad_input)):
        points = found[what] = []
        for i in candidates(grad, rng):   # a second or two: 4 traces per point, about 10 points
            runs = [moved(evaluate, array, i, k * FD_STEP) for k in (-2, -1, 1, 2)]
            points.append(Point(i, tuple(loss for loss, _ in runs),
                                max(bend(*values) for values in zip(at0, *(maps for _, maps in runs)))))
            if sum(p.smooth for p in points) == FD_POINTS:
                break
    return found


def loss_of(model, y, records) -> float:
    """The loss the backward pass differentiates. When the last layer's activation is the one the loss fuses with
    (softmax and cross-entropy), trace's gradient is the fused one from the logits, which no clipping of the
    probabilities to [1e-7, 1 - 1e-7] touches and which keeps a confident model's tiny losses to full precision:
    the loss is then computed the same way, from the last layer's pre-activation."""
    last = records[-1]
    activation = getattr(getattr(last.layer, "activation", None), "name", None)
    if activation is not None and activation == getattr(model.loss, "output_activation", None):
        return float(model.loss.with_logits()(y, last.preactivation))
    return float(model.loss(y, last.output))


def flat(values):
    """A layer's output (one array, or a list for several outputs) as one flat array."""
    return np.concatenate([np.ravel(v) for v in (values if isinstance(values, list) else [values])])


def candidates(grad, rng):
    """FD_CANDIDATES indices into ``grad``: its largest entries and random ones, alternating."""
    largest = np.argsort(np.abs(grad).ravel())[::-1][:FD_CANDIDATES]
    taken = set(largest.tolist())
    random = [i for i in rng.permutation(grad.size)[: 2 * FD_CANDIDATES] if i not in taken]
    order = [i for pair in zip(largest, random) for i in pair][:FD_CANDIDATES]
    return [np.unravel_index(i, grad.shape) for i in order]


def moved(evaluate, array, i, step):
    """``evaluate()`` with ``array[i]`` moved by ``step``; ``array[i]`` restored after."""
    saved = array[i]
    array[i] = saved + step
    try:
        return evaluate()
    finally:
        array[i] = saved


def scale_of(grad) -> float:
    return float(np.abs(grad).max())


def uncovered(hw, kernel_size, strides, pads):
    """(rows, columns) at the bottom / right of an ``hw`` input that no window covers: the OH windows of a
    column cover padded rows 0 .. (OH - 1)·s + kh - 1, of the H + top + bottom there are."""
    out = windows(hw, kernel_size, strides, pads)
    return tuple(max(n + sum(pad) - ((o - 1) * s + k), 0)
                 for n, pad, o, s, k in zip(hw, pads, out, strides, kernel_size))


def windows(hw, kernel_size, strides, pads):
    """(OH, OW): window positions per column and row on the padded input, floor((H + pads - kh) / s) + 1."""
    return tuple((n + sum(pad) - k) // s + 1 for n, pad, k, s in zip(hw, pads, kernel_size, strides))


def coverage_text(hw, kernel_size, strides, pads) -> str:
    """What a layer's windows cover, in words, e.g. ``13 x 13 windows of 3 x 3, strides (2, 2), on the 28 x 28 input:
    the last 1 row(s) and 1 column(s) are in no window (...)``, with the padding when there is some."""
    out = windows(hw, kernel_size, strides, pads)
    rows, cols = uncovered(hw, kernel_size, strides, pads)
    (top, bottom), (left, right) = pads
    padded = (f" padded by rows {top} above / {bottom} below and columns {left} left / {right} right (zeros; their "
              "gradient is dropped)") if top + bottom + left + right else ""
    text = (f"{out[0]} x {out[1]} windows of {kernel_size[0]} x {kernel_size[1]}, strides {tuple(strides)}, on the "
            f"{hw[0]} x {hw[1]} input{padded}")
    if not rows and not cols:
        return text + ": every row and column is in some window"
    return text + (f": the last {rows} row(s) and {cols} column(s) are in no window (cropped from x for dL/dK; "
                   "dL/dx there is 0)")


def with_an_uncovered_edge(x, kernel_size, stride, padding):
    """``x`` as it is, or without its last row / column, so that with ``stride`` and "valid" windows the last row
    and column of what is returned are in no window (what the stride-2 twin shows); "same" padding: ``x``."""
    if padding != "valid":
        return x
    h, w = (n - ((n - k) % stride == 0) for n, k in zip(x.shape[1:3], kernel_size))
    return x[:, :h, :w]


def strided_twin(conv, x, stride):
    """A copy of ``conv`` with stride ``stride`` (same kernel and bias, no activation), run forward and backward
    on ``x`` with a random upstream gradient. Returns (layer, δ, its dL/dK, its dL/dx)."""
    twin = Conv2D(conv.filters, conv.kernel_size, strides=stride, padding=conv.padding, use_bias=conv.use_bias,
                  name="strided_twin")
    twin.build((None, *x.shape[1:]))
    twin.set_weights(conv.get_weights())
    z = twin.forward(x)
    delta = backend.global_rng().standard_normal(z.shape)
    dx = twin.backward(delta)
    return twin, delta, twin.kernel.grad.copy(), dx


def strongest_pair(dkernel):
    """(channel, filter) whose kernel gradient is largest: the most telling pair to draw."""
    c, f = np.unravel_index(np.abs(dkernel).sum(axis=(0, 1)).argmax(), dkernel.shape[2:])
    return int(c), int(f)
