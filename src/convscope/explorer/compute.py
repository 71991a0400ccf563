"""The numbers behind the explorer page, computed with the public API (``trace``, layers' weights); no web here.

Every function takes a model the caller owns (the server passes a fresh copy per
request, with the page's kernel edits applied), so nothing here changes a
model that another request is using, and the model file is never written.
"""

from __future__ import annotations

import copy

import numpy as np

from .. import backend
from ..layers import AveragePooling2D, Conv2D, MaxPooling2D
from ..arraymath.shapes import effective_kernel, paddings_2d

CELL_ARITHMETIC = {Conv2D: "conv", MaxPooling2D: "max", AveragePooling2D: "mean"}
"""The layers whose single output values the page explains, by exact type, and how each computes one."""

MAX_EDITS = 1000
MAX_EDIT_MAGNITUDE = 1e3


def describe(model) -> list[dict]:
    """The model as a column of layers: name, class, output shape, parameter count, activation, kernel shape."""
    rows = []
    for layer in model.layers:
        activation = getattr(layer, "activation", None)
        kernel = conv_kernel(layer)
        rows.append({
            "name": layer.name, "class_name": type(layer).__name__,
            "output_shape": list(layer.output_shape[1:]), "params": layer.count_params(),
            "activation": None if activation is None else activation.name,
            "kernel_shape": None if kernel is None else list(kernel.shape),
            "window": window_of(layer),
        })
    return rows


def conv_kernel(layer):
    """The layer's 4-D kernel ``(kh, kw, in, out)`` if it is a Conv2D, else None."""
    return layer.kernel.value if CELL_ARITHMETIC.get(type(layer)) == "conv" and layer.built else None


def window_of(layer):
    """A sliding-window layer's geometry (size, strides, dilation, paddings), or None for other layers."""
    config = layer.get_config()
    size = config.get("kernel_size") or config.get("pool_size")
    if size is None or layer.input_shape is None or len(layer.input_shape) != 4:
        return None
    dilation = tuple(config.get("dilation_rate", (1, 1)))
    pads = paddings_2d(layer.input_shape[1:3], tuple(size), tuple(config["strides"]), config["padding"], dilation)
    return {"size": list(size), "strides": list(config["strides"]), "dilation": list(dilation),
            "pads": [list(p) for p in pads]}


def edited_copy(model, edits):
    """A deep copy of ``model`` with kernel weights replaced: ``edits`` is ``[{"layer", "index": [i, j, c, f],
    "value"}]``. Raises ValueError for an unknown layer, a non-conv layer, an index outside the kernel or a
    value that is not a finite number of reasonable size."""
    if not isinstance(edits, list) or len(edits) > MAX_EDITS:
        raise ValueError(f"edits must be a list of at most {MAX_EDITS} kernel edits")
    model = copy.deepcopy(model)
    for edit in edits:
        if not isinstance(edit, dict) or set(edit) != {"layer", "index", "value"}:
            raise ValueError('each edit must be {"layer": NAME, "index": [i, j, c, f], "value": NUMBER}')
        try:
            layer = model.get_layer(edit["layer"]) if isinstance(edit["layer"], str) else None
        except ValueError:
            layer = None
        kernel = None if layer is None else conv_kernel(layer)
        if kernel is None:
            raise ValueError(f"edit: {edit['layer']!r} is not a conv layer of this model")
        index = edit["index"]
        if (not isinstance(index, list) or len(index) != 4
                or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n
                           for i, n in zip(index, kernel.shape))):
            raise ValueError(f"edit: index must be 4 integers inside the kernel's shape {list(kernel.shape)}")
        value = edit["value"]
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value)
                or abs(value) > MAX_EDIT_MAGNITUDE):
            raise ValueError(f"edit: value must be a finite number between -{MAX_EDIT_MAGNITUDE:g} and "
                             f"{MAX_EDIT_MAGNITUDE:g}")
        kernel[tuple(index)] = value
    return model


def as_input(pixels):
    """A (28, 28) array of values 0-255 as the model's batch of one, scaled to [0, 1]."""
    return (np.asarray(pixels, dtype=backend.floatx()) / 255.0)[None, :, :, None]


def analyze(model, pixels, label=None) -> dict:
    """Prediction, every layer's maps (pre-activation and output) and, for ``label`` (default: the predicted
    class), dL/d(input) and each conv layer's dL/d(kernel)."""
    x = as_input(pixels)
    target = label if label is not None else int(np.argmax(model.predict(x, verbose=0)[0]))
    records = model.trace(x, np.array([target]))
    probabilities = records[-1].output[0]
    predicted = int(np.argmax(probabilities))
    layers = []
    for record in records:
        entry = {"name": record.name, "output": record.output[0]}
        if not np.array_equal(record.preactivation, record.output):
            entry["preactivation"] = record.preactivation[0]
        if "kernel" in record.param_grads and record.param_grads["kernel"].ndim == 4:
            entry["kernel_gradient"] = record.param_grads["kernel"]
        layers.append(entry)
    return {
        "probabilities": [float(p) for p in probabilities], "prediction": predicted,
        "label": target, "label_source": "predicted" if label is None else "given",
        "input_gradient": records.grad_input[0, :, :, 0], "layers": layers,
    }


def filters(model) -> list[dict]:
    """Every conv layer's kernel ``(kh, kw, in, out)`` and bias."""
    out = []
    for layer in model.layers:
        kernel = conv_kernel(layer)
        if kernel is not None:
            bias = getattr(layer, "bias", None)
            out.append({"name": layer.name, "kernel": kernel,
                        "bias": None if bias is None else bias.value})
    return out


def cell(model, pixels, layer_name: str, row: int, col: int, channel: int) -> dict:
    """The arithmetic of one output value of a conv or pooling layer, with the real numbers.

    Conv: the input patch the window sees (per input channel), the kernel slice,
    their element-wise products, the sum, the bias, z = sum + bias and the activation;
    pooling: the window and its max or mean. Everything is recomputed here from the
    layer's traced input and its weights and checked against the traced values
    (``matches``); ``receptive_field`` is the rectangle of input pixels the value depends on.
    """
    names = [layer.name for layer in model.layers]
    if layer_name not in names:
        raise ValueError(f"no layer named {layer_name!r}")
    position = names.index(layer_name)
    layer = model.layers[position]
    window = window_of(layer)
    kind = CELL_ARITHMETIC.get(type(layer))
    if window is None or kind is None:
        raise ValueError(f"{layer_name!r} is a {type(layer).__name__}: only conv and pooling cells have arithmetic")
    out_h, out_w, out_c = layer.output_shape[1:]
    if not (0 <= row < out_h and 0 <= col < out_w and 0 <= channel < out_c):
        raise ValueError(f"cell ({row}, {col}, {channel}) is outside {layer_name!r}'s output {out_h}x{out_w}x{out_c}")
    record = model.trace(as_input(pixels))[position]
    patch, inside = _window_patch(record.input[0], window, row, col)
    result = {
        "layer": layer_name, "class_name": type(layer).__name__, "row": row, "col": col, "channel": channel,
        "window": window, "patch_inside": inside,
        "receptive_field": receptive_field(model.layers[: position + 1], row, col),
        "traced_preactivation": float(record.preactivation[0, row, col, channel]),
        "traced_output": float(record.output[0, row, col, channel]),
    }
    if kind == "conv":
        result.update(_conv_cell(layer, conv_kernel(layer), patch, channel))
        computed, traced = result["output"], result["traced_output"]
    else:
        values = patch[:, :, channel]
        real = values[inside]  # padded cells never count in pooling
        computed = float(real.max() if kind == "max" else real.mean())
        result.update({"kind": kind, "patch": values, "output": computed})
        traced = result["traced_output"]
    # float32 sums in another order can differ in the last bits; anything larger is a real mismatch.
    result["matches"] = bool(abs(computed - traced) <= 1e-5 * max(1.0, abs(traced)))
    return result


def _conv_cell(layer, kernel, patch, channel) -> dict:
    groups = layer.get_config().get("groups", 1)
    per_group = kernel.shape[2]
    group = channel // (kernel.shape[3] // groups)
    patch = patch[:, :, group * per_group : (group + 1) * per_group]
    weights = kernel[:, :, :, channel]
    products = patch.astype(np.float64) * weights.astype(np.float64)
    bias = getattr(layer, "bias", None)
    bias_value = 0.0 if bias is None else float(bias.value[channel])
    total = float(products.sum())
    z = total + bias_value
    activation = layer.activation
    activated = float(np.asarray(activation(np.array([z], dtype=kernel.dtype)))[0])
    return {"kind": "conv", "patch": patch, "kernel": weights, "products": products,
            "channel_sums": products.sum(axis=(0, 1)), "input_channels": [group * per_group, (group + 1) * per_group],
            "sum": total, "bias": bias_value, "z": z, "activation": activation.name, "output": activated}


def _window_patch(x, window, row, col):
    """The (kh, kw, channels) cells the window at output (row, col) covers in ``x`` (h, w, c), zeros where
    it lies in the padding, and a boolean (kh, kw) mask of the cells inside the input."""
    (kh, kw), (sh, sw), (dh, dw) = window["size"], window["strides"], window["dilation"]
    (top, _), (left, _) = window["pads"]
    rows = row * sh - top + dh * np.arange(kh)
    cols = col * sw - left + dw * np.arange(kw)
    inside = ((rows >= 0) & (rows < x.shape[0]))[:, None] & ((cols >= 0) & (cols < x.shape[1]))[None, :]
    patch = np.zeros((kh, kw, x.shape[2]), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            if inside[i, j]:
                patch[i, j] = x[rows[i], cols[j]]
    return patch, inside


def receptive_field(layers, row: int, col: int) -> dict:
    """The input rectangle (top, left, bottom, right; inclusive, clipped to the image) that output cell
    (row, col) of the last of ``layers`` depends on, followed back through every window layer."""
    top, bottom, left, right = row, row, col, col
    for layer in reversed(layers):
        window = window_of(layer)
        if window is None:
            continue  # activations, normalization, dropout: one output cell per input cell
        (kh, kw), (sh, sw), (dh, dw) = window["size"], window["strides"], window["dilation"]
        (pad_top, _), (pad_left, _) = window["pads"]
        top, bottom = top * sh - pad_top, bottom * sh - pad_top + effective_kernel(kh, dh) - 1
        left, right = left * sw - pad_left, right * sw - pad_left + effective_kernel(kw, dw) - 1
    height, width = layers[0].input_shape[1:3]
    return {"top": max(top, 0), "left": max(left, 0), "bottom": min(bottom, height - 1), "right": min(right, width - 1)}
