"""Lesson: weight sharing (one filter for every position) and the bias (one number per filter); the parameter
count follows."""

from __future__ import annotations

import re

import numpy as np

from ..layers import Conv2D, Dense
from ..arraymath.conv import conv2d
from ..arraymath.shapes import output_hw, paddings_2d
from . import plots
from .lab import float64, float64_copy, max_abs

NAME = "bias"
TITLE = "Weight sharing and the bias: one filter and one bias per map, used at every position"
QUESTION = "Why does a conv layer need so few parameters, and where does its bias go?"
EXPLANATION = """
A conv layer uses the same filter at every position of its input: weight sharing, and what makes
a conv layer small. Filter f's kh·kw·C weights and its one bias b[f] make every cell of map f:

    z[n, i, j, f] = (x ⋆ K)[n, i, j, f] + b[f]

so the layer holds (kh·kw·C + 1)·F parameters, however large its input (a grouped layer's
filters are C/groups deep). A Dense layer joining the same H·W·C inputs to the same OH·OW·F
outputs holds one weight per (input, output) pair and one bias per output: (H·W·C + 1)·(OH·OW·F).
For the Keras MNIST convnet's first layer (28x28x1 in, 26x26x32 out) that is
(784 + 1)·21,632 = 16,981,120 parameters, against (3·3·1 + 1)·32 = 320. Two things make the
difference: locality (an output cell is connected only to the kh·kw·C inputs of its window,
fewer at the borders when "same" padding puts part of the window outside) and sharing (every
connection of filter f uses one of the same kh·kw·C weights, at every position).

The same b[f] is added at every position of filter f's map, for every image (broadcasting). A
Dense layer holds (inputs + 1)·units; pooling, Flatten and Dropout hold none.

The experiment writes the studied conv layer (the first, or --layer) as the Dense layer it
equals: a copy of the layer whose weights are the numbers 1, 2, ..., kh·kw·C·F (so that each can
be recognised) gets one image per input cell, all zeros but a 1 in that cell; side by side, its
outputs are the Dense layer's weight matrix. It counts the matrix's entries (the Dense weights),
the non-zero ones (the connections) and the distinct numbers among them (the shared weights).
Then it subtracts b[f] from every conv layer's pre-activation maps (model.trace) and compares
them with the same convolution computed without a bias: they agree at every cell, so the bias
was one constant per map. Last, it counts every layer's parameters by the formula and checks
the counts against the table model.summary() prints.
"""

# The most (input cell, output cell) pairs the weight-sharing measurement feeds through the layer; a larger
# layer is measured on a crop of its input.
MAX_PAIRS = 50_000_000
ONE_HOT_BATCH = 256


def experiment(lab):
    user_model = lab.model()
    model = float64_copy(user_model)
    (_, _), (x_test, _) = lab.data()
    x = x_test[: 8 if lab.fast else 64]
    with float64():
        records = {r.name: r for r in model.trace(x)}
    without = {}
    for conv in lab.conv_layers(model):
        if not conv.use_bias:
            lab.note(f"{conv.name} has no bias (use_bias=False)")
            continue
        record = records[conv.name]
        without[conv.name] = without_bias = conv2d(record.input, conv.kernel.value, None, conv.strides, conv.padding,
                                                   conv.dilation_rate, conv.groups)
        bias = conv.bias.value
        difference = record.preactivation - without_bias
        lab.number(f"{conv.name}: bias values (min, max)", f"{bias.min():+.4f}, {bias.max():+.4f} over {len(bias)} filters")
        lab.number(f"{conv.name}: spread of (z - conv without bias) within each map, largest",
                   float(np.max(difference.max(axis=(0, 1, 2)) - difference.min(axis=(0, 1, 2)))))
        lab.check(f"{conv.name}: z - b[f] vs the convolution without bias, max |difference| / max |z|",
                  max_abs(record.preactivation - bias, without_bias) / np.abs(record.preactivation).max(), "<=", 1e-12)

    studied = lab.conv_layers(model)[0]
    weight_sharing(lab, studied, records[studied.name].input.shape[1:], records[studied.name].preactivation.shape[1:])

    # The picture shows the first conv layer with a bias (--layer's when it has one): a graph's stem often has none.
    first = next((conv for conv in lab.conv_layers(model) if conv.use_bias), None)
    if first is not None:
        record, bias = records[first.name], first.bias.value
        f = int(np.argmax(np.abs(bias)))
        z, convolution = record.preactivation[0, :, :, f], without[first.name][0, :, :, f]
        lab.picture("bias_map.png", plots.panels_figure, [
            (f"pre-activation z, filter {f}", z),
            ("x ⋆ K, the convolution without bias", convolution),
            (f"z - x ⋆ K: b[{f}] = {bias[f]:+.4f} everywhere", z - convolution),
        ], f"{first.name}: the bias shifts the whole map by one number", columns=3, shared_scale=True)

    summary_counts, summary_total = summary_table(user_model)
    rows, total = [], 0
    for layer in user_model.layers:
        formula, count = parameter_formula(layer)
        if count is None:
            lab.note(f"{layer.name} ({type(layer).__name__}): no formula in this lesson; summary says "
                     f"{summary_counts[layer.name]:,}")
            count = summary_counts[layer.name]
        total += count
        rows.append([layer.name, type(layer).__name__, formula, count, summary_counts[layer.name]])
    lab.table("parameters per layer: formula vs model.summary()", ["layer", "type", "formula", "by formula", "summary"], rows)
    lab.check("layers whose formula count differs from summary()", sum(r[3] != r[4] for r in rows), "==", 0)
    lab.check("total by formula minus summary()'s Total params", total - summary_total, "==", 0)


def weight_sharing(lab, conv, input_shape, output_shape):
    """``conv`` against the Dense layer joining the same inputs to the same outputs: the counts by formula,
    and the same formulas held to the Dense weight matrix measured on the layer itself."""
    (h, w, c), (oh, ow, f) = input_shape, output_shape
    inputs, outputs = h * w * c, oh * ow * f
    formula, own = parameter_formula(conv)
    dense = dense_parameters(inputs, outputs)
    linked = connections(conv, (h, w, c))
    lab.number(f"{conv.name}: its parameters", f"{formula} = {own:,}")
    lab.number(f"{conv.name} as a Dense layer, {h}x{w}x{c} = {inputs:,} inputs to {oh}x{ow}x{f} = {outputs:,} outputs",
               f"({inputs:,} + 1)·{outputs:,} = {dense:,} parameters, {dense / own:,.0f} times the conv layer's {own:,}")
    lab.number(f"{conv.name}: locality, (input, output) pairs connected",
               f"{linked:,} of {inputs * outputs:,} ({linked / (inputs * outputs):.2%})")
    lab.number(f"{conv.name}: sharing, distinct weights on those connections",
               f"{shared_weights(conv, c):,} (each used {linked / shared_weights(conv, c):,.0f} times on average)")

    crop = measured_shape(conv, (h, w, c))
    entries, per_image, nonzero, distinct = dense_matrix_counts(conv, crop)
    where = "its whole input" if crop == (h, w, c) else f"a {crop[0]}x{crop[1]} crop of its input (all of it would " \
                                                        f"feed {inputs * outputs:,} pairs)"
    lab.number(f"{conv.name}: Dense weight matrix measured on {where}",
               f"{entries:,} entries, {nonzero:,} non-zero, {distinct:,} distinct numbers")
    inputs_c = crop[0] * crop[1] * crop[2]
    lab.check(f"{conv.name} as a Dense layer on {crop[0]}x{crop[1]}x{crop[2]}: parameters by the formula (inputs + 1)·"
              "outputs minus the measured matrix's entries and outputs (one bias each)",
              dense_parameters(inputs_c, per_image) - (entries + per_image), "==", 0)
    lab.check(f"{conv.name} on {crop[0]}x{crop[1]}x{crop[2]}: connected pairs by the formula minus the matrix's "
              "non-zero entries", connections(conv, crop) - nonzero, "==", 0)
    (kh, kw), depth = conv.kernel_size, c // conv.groups
    lab.check(f"{conv.name}: shared weights kh·kw·C·F = {kh}·{kw}·{depth}·{f} by the formula minus the distinct numbers "
              "in the matrix", shared_weights(conv, c) - distinct, "==", 0)


def dense_parameters(inputs, outputs) -> int:
    """A Dense layer from ``inputs`` to ``outputs`` values: a weight per (input, output) pair, a bias per output."""
    return (inputs + 1) * outputs


def shared_weights(conv, channels) -> int:
    """The weights all positions share: kh·kw·(channels / groups)·filters."""
    kh, kw = conv.kernel_size
    return kh * kw * (channels // conv.groups) * conv.filters


def connections(conv, shape) -> int:
    """(input cell, output cell) pairs ``conv`` joins on an input of ``shape`` (h, w, c): for each filter and each
    channel it sees, the window taps that land inside the input, summed over the output positions."""
    h, w, c = shape
    (top, _), (left, _) = paddings_2d((h, w), conv.kernel_size, conv.strides, conv.padding, conv.dilation_rate)
    out = output_hw((h, w), conv.kernel_size, conv.strides, conv.padding, conv.dilation_rate)
    inside = []
    for n, k, s, d, before, o in zip((h, w), conv.kernel_size, conv.strides, conv.dilation_rate, (top, left), out):
        rows = np.arange(o)[:, None] * s - before + np.arange(k)[None, :] * d     # input index of each tap
        inside.append(int(np.sum((rows >= 0) & (rows < n))))
    return conv.filters * (c // conv.groups) * inside[0] * inside[1]


def measured_shape(conv, shape):
    """The input shape to measure ``conv``'s Dense matrix on: ``shape`` itself, or the largest top-left square crop
    (down to one window) whose matrix has at most ``MAX_PAIRS`` entries."""
    h, w, c = shape
    extent = [d * (k - 1) + 1 for k, d in zip(conv.kernel_size, conv.dilation_rate)]
    for size in range(max(h, w), 0, -1):
        crop = (min(h, max(size, extent[0])), min(w, max(size, extent[1])), c)
        oh, ow = output_hw(crop[:2], conv.kernel_size, conv.strides, conv.padding, conv.dilation_rate)
        if crop[0] * crop[1] * c * oh * ow * conv.filters <= MAX_PAIRS:
            break
    return crop


def dense_matrix_counts(conv, shape):
    """The Dense weight matrix ``conv`` equals on inputs of ``shape``, measured: a copy of the layer without bias,
    its weights numbered 1..n, gets one image per input cell (all zeros but a 1 there); each output row is one
    row of the matrix. Returns (entries, outputs per image, non-zero entries, distinct non-zero numbers)."""
    h, w, c = shape
    copy = Conv2D(conv.filters, conv.kernel_size, strides=conv.strides, padding=conv.padding,
                  dilation_rate=conv.dilation_rate, groups=conv.groups, use_bias=False, name="numbered_copy")
    copy.build((None, h, w, c))
    numbers = np.arange(1, copy.kernel.value.size + 1, dtype=np.float64).reshape(copy.kernel.value.shape)
    copy.set_weights([numbers])
    cells, nonzero, values, per_image = h * w * c, 0, np.zeros(0), 0
    for start in range(0, cells, ONE_HOT_BATCH):
        count = min(ONE_HOT_BATCH, cells - start)
        images = np.zeros((count, cells))
        images[np.arange(count), start + np.arange(count)] = 1.0
        rows = copy(images.reshape(count, h, w, c)).reshape(count, -1)
        per_image = rows.shape[1]
        nonzero += int(np.count_nonzero(rows))
        values = np.union1d(values, rows[rows != 0])
    return cells * per_image, per_image, nonzero, len(values)


def parameter_formula(layer):
    """(formula as text, parameter count) for Conv2D, Dense and weightless layers; (text, None) otherwise."""
    if type(layer) is Conv2D:
        kh, kw = layer.kernel_size
        channels = layer.input_shape[3] // layer.groups
        return (f"({kh}·{kw}·{channels} + {int(layer.use_bias)})·{layer.filters}",
                (kh * kw * channels + layer.use_bias) * layer.filters)
    if type(layer) is Dense:
        inputs = layer.input_shape[-1]
        return f"({inputs} + {int(layer.use_bias)})·{layer.units}", (inputs + layer.use_bias) * layer.units
    if not layer.parameters:
        return "no weights", 0
    return "-", None


def summary_table(model):
    """({layer name: Param #}, Total params) read from the text model.summary() prints."""
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    counts = {}
    for row in text.splitlines():
        cells = [c.strip() for c in row.strip("│").split("│")]
        if len(cells) in (3, 4) and (match := re.fullmatch(r"(\S+) \((\w+)\)", cells[0])):
            counts[match.group(1)] = int(cells[2].replace(",", ""))
    total = int(re.search(r"Total params: ([\d,]+)", text).group(1).replace(",", ""))
    return counts, total
