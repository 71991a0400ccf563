"""How one gradient value is made, recomputed from a ``trace`` record with labels (batch of one).

For a conv call z = x ⋆ K + b (⋆ is correlation, what a conv layer computes; stride s, dilation d, padding
``top``/``left``), with g = dL/dz:

    kernel gradient   dL/dK[i, j, c, f] = sum_{r, q} x_pad[r*s + i*d, q*s + j*d, c] * g[r, q, f]
                      the correlation of the input with g (every output position contributes once)
    input gradient    dL/dx[a, b, c] = sum_f sum_{i', j'} G[a + i'*d, b + j'*d, f] * K[kh-1-i', kw-1-j', c, f]
                      the full convolution of g with the kernel rotated by 180 degrees, where G is g
                      dilated by the stride (s - 1 zeros between its cells) and padded by d*(kh-1) - top
                      before (so tap i' lands on g[r] with r*s = a + top - (kh-1-i')*d, or on a zero)

A depthwise call is the same with one input channel per filter (K[i, j, c, m] feeds output
channel c*M + m). For pooling, a window's dL/dy goes to its maximum alone (the first in
row-major order among ties) or, for the mean, 1/count of it to each cell inside the input.
Sums are in float64, rounded once to the model's dtype and held against the traced value.
"""

from __future__ import annotations

import numpy as np

from ..layers import Conv2D, DepthwiseConv2D
from .forward_cells import POOL_KINDS
from .geometry import window_cells, window_of, window_patch
from .precision import at, rounding_bound, verdict


def _conv_channels(layer, kernel_channel: int, kernel_filter: int):
    """Conv2D (groups): kernel [.., c, f] joins input channel group(f)*per_group + c to output channel f."""
    kernel = layer.kernel.value
    group = kernel_filter // (kernel.shape[3] // layer.groups)
    return group * kernel.shape[2] + kernel_channel, kernel_filter


def _conv_readers(layer, channel: int):
    """The output channels that read input ``channel``, and the kernel's [.., local channel, those filters]."""
    kernel = layer.kernel.value
    group, local = divmod(channel, kernel.shape[2])
    per_group = kernel.shape[3] // layer.groups
    filters = list(range(group * per_group, (group + 1) * per_group))
    return filters, kernel[:, :, local, filters]


def _depthwise_channels(layer, kernel_channel: int, kernel_filter: int):
    """DepthwiseConv2D: kernel [.., c, m] joins input channel c to output channel c*M + m."""
    return kernel_channel, kernel_channel * layer.depth_multiplier + kernel_filter


def _depthwise_readers(layer, channel: int):
    multiplier = layer.depth_multiplier
    return list(range(channel * multiplier, (channel + 1) * multiplier)), layer.kernel.value[:, :, channel, :]


def _conv_words(shape) -> str:
    return f"{shape[3]} filters of {shape[0]}×{shape[1]}×{shape[2]}"


def _depthwise_words(shape) -> str:
    return f"{shape[2]} input channels, {shape[3]} filter{'s' if shape[3] > 1 else ''} of {shape[0]}×{shape[1]} each"


KERNEL_LAYERS = {Conv2D: (_conv_channels, _conv_readers, _conv_words),
                 DepthwiseConv2D: (_depthwise_channels, _depthwise_readers, _depthwise_words)}
"""The layers whose kernel and input gradients are explained, by exact type: (which input and output channel a
kernel entry joins, which output channels read an input channel, the kernel in words)."""

def kind(record) -> str | None:
    """Which backward panels a call has: "conv" (kernel and input gradients), "pool" (routing), or None."""
    layer_type = type(record.layer)
    return "conv" if layer_type in KERNEL_LAYERS else "pool" if layer_type in POOL_KINDS else None


def _require(record, wanted: str):
    if kind(record) != wanted:
        names = {"conv": "Conv2D or DepthwiseConv2D", "pool": "MaxPooling2D or AveragePooling2D"}[wanted]
        raise ValueError(f"{record.call!r} is a {record.class_name}: this gradient is shown for {names} calls")
    if record.grad_preactivation is None:
        raise ValueError(f"{record.call!r} has no gradients here: a nested model's layers are traced forward only")


def _check_input_index(record, index):
    shape = record.input.shape[1:]
    if len(index) != 3 or not all(0 <= v < n for v, n in zip(index, shape)):
        raise ValueError(f"input index {list(index)} is outside {record.call!r}'s input of shape {list(shape)}")


def _padded(x2d, window):
    (top, bottom), (left, right) = window["pads"]
    return np.pad(x2d, ((top, bottom), (left, right)))


def kernel_gradient(records, record, index) -> dict:
    """dL/dK[i, j, c, f] of a conv call: the (Ho, Wo) input values the tap (i, j) multiplies (``seen``, taken
    from the padded input channel, shape (H + pads, W + pads)), times dL/dz of filter f (Ho, Wo), summed; a
    shared layer's other calls add their own sums. Beside it ``traced``, the layer's own dL/dK."""
    _require(record, "conv")
    layer = record.layer
    shape = layer.kernel.value.shape
    if len(index) != 4 or not all(0 <= i < n for i, n in zip(index, shape)):
        raise ValueError(f"kernel index {list(index)} is outside {layer.name!r}'s kernel of shape {list(shape)}")
    i, j, c, f = index
    channel, out_channel = KERNEL_LAYERS[type(layer)][0](layer, c, f)

    def correlation(call):
        if call.grad_preactivation is None:
            raise ValueError(f"{layer.name!r} is also called as {call.call!r}, inside a nested model traced forward "
                             "only: its share of dL/dK cannot be shown")
        window = window_of(layer, call.input.shape)
        (sh, sw), (dh, dw) = window["strides"], window["dilation"]
        g = call.grad_preactivation[0, :, :, out_channel]
        padded = _padded(call.input[0, :, :, channel], window)
        seen = padded[np.ix_(i * dh + sh * np.arange(g.shape[0]), j * dw + sw * np.arange(g.shape[1]))]
        return window, padded, g, seen, seen.astype(np.float64) * g.astype(np.float64)

    window, padded, g, seen, products = correlation(record)
    dtype = record.output.dtype
    others = [{"call": other.call, "sum": at(correlation(other)[4].sum(), dtype)}
              for other in records if other.layer is layer and other is not record]
    total = at(products.sum() + sum(o["sum"] for o in others), dtype)
    traced = float(record.param_grads["kernel"][index])
    return {"kind": "kernel_gradient", "index": list(index), "input_channel": channel, "output_channel": out_channel,
            "window": window, "padded_input": padded, "gradient_map": g, "seen": seen, "products": products,
            "this_call_sum": at(products.sum(), dtype), "others": others, "sum": total, "traced": traced,
            "dtype": str(dtype), "bound": rounding_bound(products, dtype), **_check(total, traced, dtype)}


def input_gradient(record, index) -> dict:
    """dL/dx[a, b, c] at a conv call's input (see the module's formula): the (kh, kw, F) window of the dilated,
    padded dL/dz for the F filters that read channel c, times the kernel rotated by 180 degrees, summed; each
    tap's ``status`` says whether it read a value, a zero the stride inserted, or padding. For a pooling call:
    the shares of every window that reads the cell."""
    if kind(record) == "pool":
        return _pool_input_gradient(record, index)
    _require(record, "conv")
    _check_input_index(record, index)
    layer = record.layer
    a, b, c = index
    window = window_of(layer, record.input.shape)
    (kh, kw), (sh, sw), (dh, dw) = window["size"], window["strides"], window["dilation"]
    (top, _), (left, _) = window["pads"]
    filters, weights = KERNEL_LAYERS[type(layer)][1](layer, c)
    rotated = weights[::-1, ::-1, :]
    g = record.grad_preactivation[0][:, :, filters]
    values = np.zeros((kh, kw, len(filters)), dtype=g.dtype)
    status = []
    for ii in range(kh):
        row = []
        for jj in range(kw):
            # Rotated tap (ii, jj) is tap (kh-1-ii, kw-1-jj) of the kernel, reading dL/dz at r*s = a + top - tap*d.
            u, v = a + top - (kh - 1 - ii) * dh, b + left - (kw - 1 - jj) * dw
            if not (0 <= u <= (g.shape[0] - 1) * sh and 0 <= v <= (g.shape[1] - 1) * sw):
                row.append("pad")  # outside the dilated dL/dz: the full convolution's padding
            elif u % sh or v % sw:
                row.append("stride")  # a zero the stride dilation inserted
            else:
                row.append("value")
                values[ii, jj] = g[u // sh, v // sw]
        status.append(row)
    products = values.astype(np.float64) * rotated.astype(np.float64)
    dtype = record.output.dtype
    total = at(products.sum(), dtype)
    traced = float(record.grad_input[0, a, b, c])
    return {"kind": "input_gradient", "index": list(index), "filters": filters, "window": window,
            "gradient_window": values, "rotated_kernel": rotated, "products": products, "status": status,
            "filter_sums": products.sum(axis=(0, 1)), "dilated_gradient": _dilated(g, window, record.input.shape),
            "sum": total, "traced": traced, "dtype": str(dtype), "bound": rounding_bound(products, dtype),
            **_check(total, traced, dtype)}


def _dilated(g, window, input_shape):
    """g dilated by the stride and padded for the full convolution: shape (H + d(kh-1), W + d(kw-1), F), where
    the rotated kernel's window for input cell (a, b) starts at (a, b)."""
    (kh, kw), (sh, sw), (dh, dw) = window["size"], window["strides"], window["dilation"]
    (top, _), (left, _) = window["pads"]
    out = np.zeros((input_shape[1] + dh * (kh - 1), input_shape[2] + dw * (kw - 1), g.shape[2]), dtype=g.dtype)
    pad_top, pad_left = dh * (kh - 1) - top, dw * (kw - 1) - left
    for r in range(g.shape[0]):
        for q in range(g.shape[1]):
            u, v = r * sh + pad_top, q * sw + pad_left
            if 0 <= u < out.shape[0] and 0 <= v < out.shape[1]:
                out[u, v] = g[r, q]
    return out


def _route(record, row, col, channel):
    """One pooling window's (kh, kw) input values, inside-mask, where its dL/dy goes (float64 shares) and, for
    max pooling, the first maximum (row-major, as the layer's backward pass picks it among ties)."""
    window = window_of(record.layer, record.input.shape)
    patch, inside = window_patch(record.input[0][:, :, channel : channel + 1], window, row, col)
    values = patch[:, :, 0]
    dy = float(record.grad_output[0, row, col, channel])
    routed = np.zeros(values.shape, dtype=np.float64)
    argmax = None
    if POOL_KINDS[type(record.layer)] == "max":
        where = np.unravel_index(int(np.argmax(np.where(inside, values, -np.inf))), values.shape)
        argmax = [int(where[0]), int(where[1])]
        routed[where] = dy
    else:
        dtype = record.output.dtype
        routed[inside] = at(np.asarray(dy, dtype) / np.asarray(inside.sum(), dtype), dtype)
    return window, values, inside, dy, routed, argmax


def _all_shares(record, channel):
    """The (H, W) sum, over every window, of the share each input cell of ``channel`` receives."""
    out_h, out_w = record.output.shape[1:3]
    total = np.zeros(record.input.shape[1:3])
    for row in range(out_h):
        for col in range(out_w):
            window, _, inside, _, routed, _ = _route(record, row, col, channel)
            rows, cols = window_cells(window, row, col)
            for i, r in enumerate(rows):
                for j, q in enumerate(cols):
                    if inside[i, j]:
                        total[r, q] += routed[i, j]
    return total


def pool_gradient(record, index) -> dict:
    """A pooling window (output cell ``index``) and where its dL/dy goes, beside the traced dL/dx there; where
    windows overlap, a cell's dL/dx is the sum of the shares of every window that reads it (``shared_sum``)."""
    _require(record, "pool")
    row, col, channel = index
    window, values, inside, dy, routed, argmax = _route(record, row, col, channel)
    rows, cols = window_cells(window, row, col)
    clipped_rows, clipped_cols = np.clip(rows, 0, record.input.shape[1] - 1), np.clip(cols, 0, record.input.shape[2] - 1)
    dx = record.grad_input[0, :, :, channel]
    traced = np.where(inside, dx[np.ix_(clipped_rows, clipped_cols)], 0)
    (kh, kw), (sh, sw), (dh, dw) = window["size"], window["strides"], window["dilation"]
    overlapping = sh < dh * (kh - 1) + 1 or sw < dw * (kw - 1) + 1
    dtype = record.output.dtype
    # A cell hears from every window that reads it: without overlap that is this window's share alone.
    shared = (np.where(inside, _all_shares(record, channel)[np.ix_(clipped_rows, clipped_cols)], 0)
              if overlapping else routed)
    matches = bool(np.array_equal(shared[inside].astype(dtype), traced[inside].astype(dtype)))
    return {"kind": "pool_gradient", "pool": POOL_KINDS[type(record.layer)], "index": list(index),
            "window": window, "rows": rows.tolist(), "cols": cols.tolist(), "patch": values, "patch_inside": inside,
            "argmax": argmax, "count": int(inside.sum()), "dy": dy, "routed": routed, "shared_sum": shared,
            "traced_dx": traced, "overlapping": overlapping, "matches": matches, "dtype": str(dtype)}


def _pool_input_gradient(record, index) -> dict:
    """dL/dx at one input cell of a pooling call: the sum of the shares of every window that reads it."""
    _require(record, "pool")
    _check_input_index(record, index)
    a, b, c = index
    out_h, out_w = record.output.shape[1:3]
    shares = []
    for row in range(out_h):
        for col in range(out_w):
            window, _, inside, _, routed, _ = _route(record, row, col, c)
            rows, cols = window_cells(window, row, col)
            for i, r in enumerate(rows):
                for j, q in enumerate(cols):
                    if r == a and q == b and inside[i, j] and routed[i, j] != 0:
                        shares.append({"window": [row, col], "share": float(routed[i, j])})
    dtype = record.output.dtype
    values = np.array([s["share"] for s in shares])
    total = at(values.sum(), dtype)
    traced = float(record.grad_input[0, a, b, c])
    return {"kind": "pool_input_gradient", "index": list(index), "shares": shares, "sum": total, "traced": traced,
            "dtype": str(dtype), "bound": rounding_bound(values, dtype), **_check(total, traced, dtype)}


def _check(total, traced, dtype) -> dict:
    check = verdict(total, traced, dtype)
    return {"matches": check["matches"], "ulps": check["ulps"]}
