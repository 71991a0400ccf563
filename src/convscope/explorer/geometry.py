"""Where a value comes from: sliding windows, the patch a window covers, and receptive fields through a graph.

A window layer (conv, depthwise, pooling) maps output cell (r, c) to input cells

    rows r*sh - top + dh*i (i = 0..kh-1),   cols c*sw - left + dw*j (j = 0..kw-1)

(``top``/``left``: the padding before the first row / column). A receptive field is the
rectangle of model-input pixels that a value depends on, followed back through every
call of the graph (the union over branches); layers whose rule is unknown here are taken
to depend on the whole input, never on less than they do.
"""

from __future__ import annotations

import numpy as np

from ..arraymath.shapes import effective_kernel, paddings_2d
from ..layers import (
    Activation, Add, Average, AveragePooling2D, BatchNormalization, Concatenate, Conv2D, Conv2DTranspose, Cropping2D,
    DepthwiseConv2D, Dropout, LayerNormalization, LeakyReLU, Maximum, MaxPooling2D, Minimum, Multiply, ReLU, Rescaling,
    SeparableConv2D, Softmax, Subtract, UpSampling2D, ZeroPadding2D,
)


def window_of(layer, input_shape):
    """A sliding-window layer's geometry for an input of ``input_shape`` (batch, H, W, C): size, strides,
    dilation and paddings; None for a layer that is not a window over an image."""
    if type(layer) not in WINDOW_LAYERS or input_shape is None or len(input_shape) != 4:
        return None
    config = layer.get_config()
    size = tuple(config.get("kernel_size") or config["pool_size"])
    strides, dilation = tuple(config["strides"]), tuple(config.get("dilation_rate", (1, 1)))
    pads = layer.pads if type(layer) is Conv2DTranspose else paddings_2d(input_shape[1:3], size, strides,
                                                                          config["padding"], dilation)
    return {"size": list(size), "strides": list(strides), "dilation": list(dilation), "pads": [list(p) for p in pads]}


WINDOW_LAYERS = (Conv2D, DepthwiseConv2D, SeparableConv2D, MaxPooling2D, AveragePooling2D, Conv2DTranspose)


def window_cells(window, row: int, col: int):
    """The input rows and columns (arrays of kh and kw indices, possibly outside the input) the window at output
    (row, col) reads."""
    (kh, kw), (sh, sw), (dh, dw) = window["size"], window["strides"], window["dilation"]
    (top, _), (left, _) = window["pads"]
    return row * sh - top + dh * np.arange(kh), col * sw - left + dw * np.arange(kw)


def window_patch(x, window, row: int, col: int):
    """The (kh, kw, channels) cells the window at output (row, col) covers in ``x`` (h, w, c), zeros where it
    lies in the padding, and a boolean (kh, kw) mask of the cells inside the input."""
    rows, cols = window_cells(window, row, col)
    inside = ((rows >= 0) & (rows < x.shape[0]))[:, None] & ((cols >= 0) & (cols < x.shape[1]))[None, :]
    patch = np.zeros((len(rows), len(cols), x.shape[2]), dtype=x.dtype)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            if inside[i, j]:
                patch[i, j] = x[r, c]
    return patch, inside


# ---------------------------------------------------------------- receptive fields

def _through_window(layer, record, rect):
    window = window_of(layer, record.input.shape)
    (kh, kw), (sh, sw), (dh, dw) = window["size"], window["strides"], window["dilation"]
    (pad_top, _), (pad_left, _) = window["pads"]
    top, bottom, left, right = rect
    return (top * sh - pad_top, bottom * sh - pad_top + effective_kernel(kh, dh) - 1,
            left * sw - pad_left, right * sw - pad_left + effective_kernel(kw, dw) - 1)


def _through_transpose(layer, record, rect):
    """Output row r of a transposed conv gathers input rows i with i*s + a*d - top = r for a tap a: the
    inverse of a window, so the rectangle shrinks by the stride instead of growing."""
    window = window_of(layer, record.input.shape)
    (kh, kw), (sh, sw), (dh, dw) = window["size"], window["strides"], window["dilation"]
    (pad_top, _), (pad_left, _) = window["pads"]
    top, bottom, left, right = rect
    return (-(-(top + pad_top - effective_kernel(kh, dh) + 1) // sh), (bottom + pad_top) // sh,
            -(-(left + pad_left - effective_kernel(kw, dw) + 1) // sw), (right + pad_left) // sw)


def _through_upsampling(layer, record, rect):
    (sh, sw), (top, bottom, left, right) = layer.size, rect
    return top // sh, bottom // sh, left // sw, right // sw


def _shifted(pairs, sign):
    def rule(layer, record, rect):
        (top, _), (left, _) = getattr(layer, pairs)
        t, b, l, r = rect
        return t + sign * top, b + sign * top, l + sign * left, r + sign * left
    return rule


def _same_cells(layer, record, rect):
    return rect


def _through_concatenate(layer, record, rect):
    """Joined along the channels, every input holds the same cells; along rows or columns, each input holds
    its own stretch: the rectangle's part inside it, shifted to its own coordinates (None: none of it)."""
    axis = layer.axis % record.output.ndim
    if axis not in (1, 2):
        return rect
    low, high = (0, 1) if axis == 1 else (2, 3)
    parts, offset = [], 0
    for x in record.input:
        size = x.shape[axis]
        start, stop = max(rect[low], offset), min(rect[high], offset + size - 1)
        if start > stop:
            parts.append(None)
        else:
            part = list(rect)
            part[low], part[high] = start - offset, stop - offset
            parts.append(tuple(part))
        offset += size
    return parts


FIELD_RULES = {
    **{cls: _through_window for cls in (Conv2D, DepthwiseConv2D, SeparableConv2D, MaxPooling2D, AveragePooling2D)},
    Conv2DTranspose: _through_transpose, UpSampling2D: _through_upsampling,
    ZeroPadding2D: _shifted("padding", -1), Cropping2D: _shifted("cropping", 1),
    **{cls: _same_cells for cls in (Activation, ReLU, LeakyReLU, Softmax, BatchNormalization, LayerNormalization,
                                     Dropout, Rescaling, Add, Subtract, Multiply, Average, Maximum, Minimum)},
    Concatenate: _through_concatenate,
}
"""How each layer maps a rectangle of its output to the rectangle of its input(s) it reads, by exact type: one
rectangle for every input, or a list with one per input (None: that input is not read). Element-wise and
merging layers read the same cells; a layer missing here reads its whole input."""


def receptive_field(records, call: str, row: int, col: int, input_hw) -> dict:
    """The model-input rectangle (top, left, bottom, right; inclusive, clipped to ``input_hw``) that output
    cell (row, col) of ``call`` depends on, followed back through every call of ``records`` (a ``trace``);
    ``whole`` is True when some layer on the way reads its entire input."""
    by_call = {record.call: record for record in records}
    height, width = input_hw
    whole = [False]
    seen = {}  # (call, rect) -> rects: residual graphs reach one call along many paths

    def back(name, rect):
        record = by_call.get(name)
        if record is None:  # a model input
            return [rect]
        if (name, rect) not in seen:
            rule = FIELD_RULES.get(type(record.layer))
            if rule is None and record.inbound and all(n.startswith(f"{name}/") for n in record.inbound):
                rule = _same_cells  # a nested model, expanded: it reads its own last inner call
            if rule is None:
                whole[0] = True
                seen[name, rect] = [(0, height - 1, 0, width - 1)]
            else:
                inner = rule(record.layer, record, rect)
                parts = inner if isinstance(inner, list) else [inner] * len(record.inbound)
                seen[name, rect] = [r for inbound, part in zip(record.inbound, parts) if part is not None
                                    for r in back(inbound, part)]
        return seen[name, rect]

    rects = back(call, (row, row, col, col))
    top, bottom = min(r[0] for r in rects), max(r[1] for r in rects)
    left, right = min(r[2] for r in rects), max(r[3] for r in rects)
    return {"top": max(top, 0), "left": max(left, 0), "bottom": min(bottom, height - 1),
            "right": min(right, width - 1), "whole": whole[0]}
