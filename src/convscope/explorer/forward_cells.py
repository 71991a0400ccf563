"""The arithmetic of one output value, recomputed from what a layer call read (a ``trace`` record) and its weights.

Each explainer takes the call's record (batch of one) and the value's index ((row, col,
channel) for a map, (unit,) for a vector) and returns the numbers the page shows. Sums of
products are taken in float64 (a float32 x float32 product is exact there) and rounded once
to the model's dtype; each later line (+ bias, the activation) is one operation in that
dtype, as the layer does it. ``EXPLAINERS`` picks the explainer by the layer's exact type.

    conv       z[r, c, f] = sum_{i, j, ch} x[r*s + i*d - pad, c*s + j*d - pad, ch] K[i, j, ch, f] + b[f]
    depthwise  z[r, c, ch*M + m] = sum_{i, j} x[..., ch] K[i, j, ch, m] + b       (one input channel)
    transpose  z[r, c, f] = sum over taps (a, b) landing on (r, c) of x[i, j, :] . K[a, b, f, :] + b[f],
               input cell (i, j) = ((r + top - a*d) / s, ...) where that divides exactly
    pooling    max (or mean) of the window's cells inside the input
    dense      z[k] = sum_i x[i] W[i, k] + b[k]; softmax p[k] = exp(z[k]) / sum_j exp(z[j])
    merge      y = x1 + x2 (Add), x1 - x2, x1 * x2, mean, max, min of the inputs at the same index
    concat     y[..., k] = the input whose channels hold k, at its own channel
    activation y = f(x) for one cell (ReLU, tanh, ...); softmax along the last axis as for dense
"""

from __future__ import annotations

import numpy as np

from ..layers import (
    Activation, Add, Average, AveragePooling2D, Concatenate, Conv2D, Conv2DTranspose, Dense, DepthwiseConv2D, LeakyReLU,
    Maximum, MaxPooling2D, Minimum, Multiply, ReLU, Softmax, Subtract,
)
from .geometry import window_of, window_patch
from .precision import at, rounding_bound

POOL_KINDS = {MaxPooling2D: "max", AveragePooling2D: "mean"}

TOP_TERMS = 12
"""How many of a dense unit's products are listed one by one (the largest in size); the rest are summed."""


def _activated(layer, z, dtype):
    return float(np.asarray(layer.activation(np.array([z], dtype=dtype)))[0])


def _linear_tail(layer, products, bias_index, dtype) -> dict:
    """sum (rounded once), + bias, = z, activation(z): the lines every weighted layer's panel ends with."""
    total = at(products.sum(), dtype)
    bias = getattr(layer, "bias", None)
    bias_value = 0.0 if bias is None else float(bias.value[bias_index])
    z = at(np.asarray(total, dtype) + np.asarray(bias_value, dtype), dtype)  # one addition in the model's dtype
    activation = layer.activation
    return {"sum": total, "bias": bias_value, "z": z, "activation": activation.name,
            "output": _activated(layer, z, dtype), "bound": rounding_bound(products, dtype)}


def conv(record, index, dtype) -> dict:
    row, col, channel = index
    layer = record.layer
    window = window_of(layer, record.input.shape)
    x = record.input[0]
    kernel = layer.kernel.value
    per_group = kernel.shape[2]
    group = channel // (kernel.shape[3] // layer.groups)
    channels = slice(group * per_group, (group + 1) * per_group)
    patch, inside = window_patch(x[:, :, channels], window, row, col)
    weights = kernel[:, :, :, channel]
    products = patch.astype(np.float64) * weights.astype(np.float64)
    return {"kind": "conv", "window": window, "patch": patch, "patch_inside": inside, "kernel": weights,
            "products": products, "channel_sums": products.sum(axis=(0, 1)),
            "input_channels": [channels.start, channels.stop], "input_map": x[:, :, channels],
            "output_map": record.preactivation[0, :, :, channel], **_linear_tail(layer, products, channel, dtype)}


def depthwise(record, index, dtype) -> dict:
    row, col, channel = index
    layer = record.layer
    window = window_of(layer, record.input.shape)
    x = record.input[0]
    source, m = divmod(channel, layer.depth_multiplier)
    patch, inside = window_patch(x[:, :, source : source + 1], window, row, col)
    weights = layer.kernel.value[:, :, source : source + 1, m]
    products = patch.astype(np.float64) * weights.astype(np.float64)
    return {"kind": "depthwise", "window": window, "patch": patch, "patch_inside": inside, "kernel": weights,
            "products": products, "channel_sums": products.sum(axis=(0, 1)), "input_channels": [source, source + 1],
            "depth_multiplier": layer.depth_multiplier, "input_map": x[:, :, source : source + 1],
            "output_map": record.preactivation[0, :, :, channel], **_linear_tail(layer, products, channel, dtype)}


def transpose(record, index, dtype) -> dict:
    row, col, channel = index
    layer = record.layer
    window = window_of(layer, record.input.shape)
    (kh, kw), (sh, sw), (dh, dw) = window["size"], window["strides"], window["dilation"]
    (top, _), (left, _) = window["pads"]
    x = record.input[0]
    kernel = layer.kernel.value  # (kh, kw, filters, in_channels)
    sources = np.full((kh, kw, 2), -1, dtype=np.int64)
    products = np.zeros((kh, kw, x.shape[2]))
    for a in range(kh):
        for b in range(kw):
            i, j = row + top - a * dh, col + left - b * dw
            if i % sh == 0 and j % sw == 0 and 0 <= i // sh < x.shape[0] and 0 <= j // sw < x.shape[1]:
                sources[a, b] = i // sh, j // sw
                products[a, b] = x[i // sh, j // sw].astype(np.float64) * kernel[a, b, channel].astype(np.float64)
    return {"kind": "transpose", "window": window, "sources": sources, "kernel": kernel[:, :, channel, :],
            "products": products, "tap_sums": products.sum(axis=2), "channel_sums": products.sum(axis=(0, 1)),
            "input_map": x, "output_map": record.preactivation[0, :, :, channel],
            **_linear_tail(layer, products, channel, dtype)}


def pooling(record, index, dtype) -> dict:
    row, col, channel = index
    kind = POOL_KINDS[type(record.layer)]
    window = window_of(record.layer, record.input.shape)
    patch, inside = window_patch(record.input[0][:, :, channel : channel + 1], window, row, col)
    values = patch[:, :, 0]
    if kind == "max":
        # The first maximum in row-major order, as the layer's backward pass picks it among ties.
        masked = np.where(inside, values, -np.inf)
        where = np.unravel_index(int(np.argmax(masked)), masked.shape)
        output, argmax = float(values[where]), [int(where[0]), int(where[1])]
    else:
        real = values[inside]  # padded cells never count in pooling
        output, argmax = at(real.astype(np.float64).sum() / real.size, dtype), None
    bound = 0.0 if kind == "max" else rounding_bound(values[inside], dtype)  # a max is exact; a mean is a sum
    return {"kind": kind, "window": window, "patch": values, "patch_inside": inside, "argmax": argmax, "bound": bound,
            "count": int(inside.sum()), "input_map": record.input[0][:, :, channel : channel + 1],
            "output_map": record.output[0, :, :, channel], "output": output}


def dense(record, index, dtype) -> dict:
    (unit,) = index
    layer = record.layer
    x = record.input[0].reshape(-1)
    weights = layer.kernel.value[:, unit]
    products = x.astype(np.float64) * weights.astype(np.float64)
    order = np.argsort(-np.abs(products), kind="stable")
    top, rest = order[:TOP_TERMS], order[TOP_TERMS:]
    result = {"kind": "dense", "inputs": int(x.size),
              "terms": [{"i": int(i), "x": float(x[i]), "w": float(weights[i]), "product": at(products[i], dtype)}
                        for i in top],
              "rest_count": int(rest.size), "rest_sum": at(products[rest].sum(), dtype),
              "zeros": int((x == 0).sum()), **_linear_tail(layer, products, unit, dtype)}
    if layer.activation.name == "softmax":  # p_k needs every unit's z, so it comes from the softmax lines
        result["softmax"] = softmax(record.preactivation[0], record.output[0], dtype)
        result["output"] = result["softmax"]["p"][unit]
    return result


def softmax(z, traced, dtype) -> dict:
    """exp(z_k), their sum and p_k = exp(z_k) / sum, from the layer's z (float64, each rounded once to
    ``dtype``); beside the forward pass's probabilities. Above 80, exp overflows float32, so then every z is
    shifted by the largest first (which changes no p_k, and is how softmax is computed)."""
    z = z.astype(np.float64)
    shift = float(z.max()) if z.max() > 80 else 0.0
    exps = np.exp(z - shift)
    total = exps.sum()
    return {"z": [float(v) for v in z], "shift": shift, "exp": [at(e, dtype) for e in exps], "total": at(total, dtype),
            "p": [at(e / total, dtype) for e in exps], "traced_p": [float(p) for p in traced]}


def elementwise(record, index, dtype) -> dict:
    """An activation layer's value: y = f(x) of the same cell of its input; for softmax (last axis), the values
    along that axis at this position through exp, their sum, and the division."""
    f = record.layer.activation
    if f.name == "softmax":
        position = (0, *index[:-1])
        lines = softmax(record.input[position], record.output[position], dtype)
        return {"kind": "softmax", "function": f.name, "unit": int(index[-1]), "softmax": lines,
                "output": lines["p"][index[-1]]}
    x = float(record.input[(0, *index)])
    return {"kind": "activation", "function": f.name, "x": x, "output": _activated(record.layer, x, dtype)}


MERGE_SYMBOLS = {Add: "+", Subtract: "−", Multiply: "×", Average: "mean", Maximum: "max", Minimum: "min"}


def merge(record, index, dtype) -> dict:
    shape = record.output.shape
    values = [float(np.broadcast_to(x, shape)[(0, *index)]) for x in record.input]
    kind = type(record.layer)
    xs = np.array(values, dtype=dtype)
    if kind is Add:
        out = xs[0]
        for v in xs[1:]:
            out = out + v  # in the order the layer adds
    elif kind is Subtract:
        out = xs[0] - xs[1]
    elif kind is Multiply:
        out = np.prod(xs, dtype=dtype)
    elif kind is Average:
        out = xs.sum(dtype=dtype) / np.asarray(len(xs), dtype)
    else:
        out = xs.max() if kind is Maximum else xs.min()
    return {"kind": "merge", "operation": MERGE_SYMBOLS[kind], "inputs": record.inbound, "values": values,
            "output": float(out)}


def concatenate(record, index, dtype) -> dict:
    axis = record.layer.axis % record.output.ndim
    position = (0, *index)
    offset = position[axis]
    for name, x in zip(record.inbound, record.input):
        if offset < x.shape[axis]:
            source = list(position)
            source[axis] = offset
            return {"kind": "concatenate", "axis": axis, "source": name, "source_index": source[1:],
                    "inputs": record.inbound, "sizes": [int(x.shape[axis]) for x in record.input],
                    "output": float(x[tuple(source)])}
        offset -= x.shape[axis]
    raise ValueError(f"index {list(index)} is outside {record.call!r}'s output")


EXPLAINERS = {
    Conv2D: conv, DepthwiseConv2D: depthwise, Conv2DTranspose: transpose, MaxPooling2D: pooling,
    AveragePooling2D: pooling, Dense: dense, Concatenate: concatenate,
    **{cls: merge for cls in MERGE_SYMBOLS}, **{cls: elementwise for cls in (Activation, ReLU, LeakyReLU, Softmax)},
}
"""The layers whose single output values the page explains, by exact type."""


def explains(record) -> bool:
    """Whether ``EXPLAINERS`` has this call's layer type, on an input it explains (dense: a vector)."""
    explainer = EXPLAINERS.get(type(record.layer))
    if explainer is dense:
        return record.input.ndim == 2  # z = W x + b for one unit of a vector
    if explainer is elementwise:
        return record.layer.activation.name != "softmax_along_axis"  # softmax over other axes: not shown
    return explainer is not None
