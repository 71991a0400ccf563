"""Lesson: the bias is one number per filter, and the parameter count follows."""

from __future__ import annotations

import re

import numpy as np

from ..layers import Conv2D, Dense
from ..arraymath.conv import conv2d
from . import plots
from .lab import float64, float64_copy, max_abs

NAME = "bias"
TITLE = "Bias: one number per filter, added to every cell of its map"
EXPLANATION = """
A Conv2D layer with F filters has F biases, not one per output cell:

    z[n, i, j, f] = (x ⋆ K)[n, i, j, f] + b[f]

The same b[f] is added at every position of filter f's map, for every image (broadcasting).
So a filter of a kh × kw kernel over C input channels holds kh·kw·C weights and one bias, and
the layer (kh·kw·C + 1)·F parameters, however large its input. A Dense layer holds
(inputs + 1)·units; pooling, Flatten and Dropout hold none.

The experiment subtracts b[f] from every conv layer's pre-activation maps (model.trace) and
compares them with the same convolution computed without a bias: they agree at every cell,
so the bias was one constant per map. Then it counts every layer's parameters by the formula
and checks the counts against the table model.summary() prints.
"""


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
