"""The numbers behind the explorer page, computed with the public API (``trace``, layers' weights); no web here.

Every function takes a model the caller holds alone for the request (``workspace.ModelPool`` lends one replica
at a time, the page's kernel edits applied to it and undone after), so nothing here changes a model that another
request is using, and the model file is never written. The page
works on layer *calls* in the graph's execution order (``trace``'s records; ``call``
is ``"dense"``, or ``"dense#1"`` for a shared layer's second call).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math

import numpy as np

from .. import backend
from ..images import BLANK_INK, ink_pixels
from . import backward_cells
from .forward_cells import EXPLAINERS, explains
from .geometry import receptive_field, window_of
from .precision import verdict

MAX_EDITS = 1000
MAX_EDIT_MAGNITUDE = 1e3


def as_input(pixels):
    """A (28, 28) array of values 0-255 as the model's batch of one, scaled to [0, 1]."""
    return (np.asarray(pixels, dtype=backend.floatx()) / 255.0)[None, :, :, None]


def trace_calls(model, x, y=None):
    """``model.trace(x, y)`` with every nested model's own calls listed just before it, forward only (each
    nested model traced again on what it received), as ``outer/inner``; the nested model's record then reads
    its last inner call, so the list stays a graph in execution order."""
    records = model.trace(x, y)
    return records if not any(_nested(r) for r in records) else _expand(records)


def _nested(record) -> bool:
    return hasattr(record.layer, "trace") and not isinstance(record.input, list)


def _expand(records):
    out = type(records)()
    out.grad_inputs = records.grad_inputs
    for record in records:
        if _nested(record):
            inner = _expand(record.layer.trace(record.input))
            names = {r.call for r in inner}
            prefix = f"{record.call}/"
            for r in inner:
                inbound = [prefix + n if n in names else record.inbound[0] for n in r.inbound]
                out.append(dataclasses.replace(r, call=prefix + r.call, name=f"{record.name}/{r.name}", inbound=inbound))
            record = dataclasses.replace(record, inbound=[prefix + inner[-1].call])
        out.append(record)
    return out


def calls(model):
    """The model's layer calls in execution order: ``traced`` on a blank digit (shapes, inputs, layers)."""
    return trace_calls(model, np.zeros((1, 28, 28, 1), dtype=backend.floatx()))


def describe(model) -> list[dict]:
    """One row per layer call, in execution order: call, layer name, class, the calls it reads, output shape,
    parameter count (on a layer's first call), activation, kernel shape, window, and which panels exist."""
    rows, counted = [], set()
    for record in calls(model):
        layer = record.layer
        activation = getattr(layer, "activation", None)
        kernel = conv_kernel(layer)
        first = id(layer) not in counted
        counted.add(id(layer))
        output = record.output if not isinstance(record.output, list) else record.output[0]
        rows.append({
            "call": record.call, "name": record.name, "class_name": record.class_name, "inbound": record.inbound,
            "output_shape": list(output.shape[1:]),
            "params": layer.count_params() if first and hasattr(layer, "count_params") else 0,
            "activation": None if activation is None else activation.name,
            "kernel_shape": None if kernel is None else list(kernel.shape),
            "window": None if isinstance(record.input, list) else window_of(layer, record.input.shape),
            "explained": explainable(record), "backward": None if "/" in record.call else backward_cells.kind(record),
        })
    return rows


def explainable(record) -> bool:
    """Whether the page can show the arithmetic of one output value of this call."""
    return not isinstance(record.output, list) and explains(record)


def conv_kernel(layer):
    """The layer's 4-D kernel if the page can edit it (Conv2D, DepthwiseConv2D), else None."""
    return layer.kernel.value if type(layer) in backward_cells.KERNEL_LAYERS and layer.built else None


def checked_edits(model, edits) -> list:
    """``edits`` (``[{"layer", "index": [i, j, c, f], "value"}]``) as ``[(kernel array, index, value)]`` on
    ``model``'s own kernels. Raises ValueError for an unknown layer, a layer without an editable kernel, an
    index outside the kernel or a value that is not a finite number of reasonable size."""
    if not isinstance(edits, list) or len(edits) > MAX_EDITS:
        raise ValueError(f"edits must be a list of at most {MAX_EDITS} kernel edits")
    out = []
    for edit in edits:
        if not isinstance(edit, dict) or set(edit) != {"layer", "index", "value"}:
            raise ValueError('each edit must be {"layer": NAME, "index": [i, j, c, f], "value": NUMBER}')
        layer = layer_at(model, edit["layer"]) if isinstance(edit["layer"], str) else None
        kernel = None if layer is None else conv_kernel(layer)
        if kernel is None:
            raise ValueError(f"edit: {edit['layer']!r} is not a conv layer of this model")
        index = edit["index"]
        if (not isinstance(index, list) or len(index) != 4
                or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n
                           for i, n in zip(index, kernel.shape))):
            raise ValueError(f"edit: index must be 4 integers inside the kernel's shape {list(kernel.shape)}")
        value = edit["value"]
        # The size test comes first: math.isfinite of a 100-digit JSON integer is fine, numpy's overflows.
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or abs(value) > MAX_EDIT_MAGNITUDE
                or not math.isfinite(value)):
            raise ValueError(f"edit: value must be a finite number between -{MAX_EDIT_MAGNITUDE:g} and "
                             f"{MAX_EDIT_MAGNITUDE:g}")
        out.append((kernel, tuple(index), float(value)))
    return out


@contextlib.contextmanager
def edited(model, edits):
    """``model`` itself with the kernel edits applied for the ``with`` block and undone after it (in reverse
    order, so an entry edited twice gets its first value back): no copy of the model is made. The caller
    must hold the model alone for the block (the server lends each request its own replica)."""
    changes = checked_edits(model, edits)
    saved = []
    try:
        for kernel, index, value in changes:
            saved.append((kernel, index, kernel[index].copy()))
            kernel[index] = value
        yield model
    finally:
        for kernel, index, old in reversed(saved):
            kernel[index] = old


def edited_copy(model, edits):
    """A deep copy of ``model`` with the kernel edits kept (for tools and tests that want the edited model)."""
    model = copy.deepcopy(model)
    for kernel, index, value in checked_edits(model, edits):
        kernel[index] = value
    return model


def target_of(model, x, label):
    """The label the gradients are for: ``label`` if given (ValueError unless the model has that class), else
    the predicted class."""
    classes = model.output_shape[-1]
    if label is not None and not 0 <= label < classes:
        raise ValueError(f"label {label} is not a class of this model: its output has {classes} classes, 0-{classes - 1}")
    return label if label is not None else int(np.argmax(model.predict(x, verbose=0)[0]))


def analyze(model, pixels, label=None, backward=False) -> dict:
    """Prediction, every call's maps (pre-activation and output) and, for ``label`` (default: the predicted
    class), dL/d(input) and each conv layer's dL/d(kernel); with ``backward``, each call's dL/d(output),
    dL/dz and dL/d(its input) too. ``blank`` flags an input with fewer than ``images.BLANK_INK`` ink pixels."""
    x = as_input(pixels)
    target = target_of(model, x, label)
    records = trace_calls(model, x, np.array([target]))
    probabilities = records[-1].output[0]
    layers = []
    for record in records:
        entry = {"call": record.call, "output": _first(record.output)[0]}
        if not np.array_equal(record.preactivation, record.output):
            entry["preactivation"] = record.preactivation[0]
        kernel_gradient = record.param_grads.get("kernel")
        if kernel_gradient is not None and conv_kernel(record.layer) is not None:
            entry["kernel_gradient"] = kernel_gradient
        if backward and record.grad_output is not None:  # a nested model's inner calls are traced forward only
            entry["grad_output"] = _first(record.grad_output)[0]
            if record.grad_preactivation is not record.grad_output:
                entry["grad_preactivation"] = record.grad_preactivation[0]
            if not isinstance(record.grad_input, list):
                entry["grad_input"] = record.grad_input[0]
        layers.append(entry)
    ink = ink_pixels(np.asarray(pixels))
    return {
        "probabilities": [float(p) for p in probabilities], "prediction": int(np.argmax(probabilities)),
        "label": target, "label_source": "predicted" if label is None else "given",
        "input_gradient": records.grad_input[0, :, :, 0], "layers": layers, "ink": ink, "blank": ink < BLANK_INK,
        "dtype": str(probabilities.dtype),
    }


def _first(value):
    return value[0] if isinstance(value, list) else value


def layer_at(model, path: str):
    """The layer named ``path`` (``"block/conv"`` for a layer of the nested model ``block``), or None."""
    for name in path.split("/"):
        try:
            model = model.get_layer(name) if hasattr(model, "get_layer") else None
        except ValueError:
            return None
    return model


def filters(model, prefix: str = "") -> list[dict]:
    """Every editable kernel ``(kh, kw, in, out)`` and bias, one entry per layer, nested models' as ``outer/inner``."""
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers"):
            out.extend(filters(layer, f"{prefix}{layer.name}/"))
        kernel = conv_kernel(layer)
        if kernel is not None:
            bias = getattr(layer, "bias", None)
            out.append({"name": prefix + layer.name, "class_name": type(layer).__name__, "kernel": kernel,
                        "bias": None if bias is None else bias.value,
                        "what": backward_cells.KERNEL_LAYERS[type(layer)][2](kernel.shape)})
    return out


def find(records, call: str):
    """The record of ``call``; ValueError naming the calls there are."""
    for record in records:
        if record.call == call:
            return record
    raise ValueError(f"no layer call named {call!r}; the model's calls are {[r.call for r in records]}")


def check_index(record, index, what: str = "output"):
    """``index`` must address one cell of the call's output (batch excluded)."""
    shape = _first(record.output).shape[1:]
    if len(index) != len(shape) or not all(0 <= i < n for i, n in zip(index, shape)):
        raise ValueError(f"{what} index {list(index)} is outside {record.call!r}'s output of shape {list(shape)}")


def cell(model, pixels, call: str, index) -> dict:
    """The arithmetic of one output value of a call (``index``: (row, col, channel) for a map, (unit,) for a
    vector), with the real numbers, recomputed from the call's traced input and its weights
    (``forward_cells``) and held against the traced value: ``matches`` only if equal in the model's dtype.
    ``receptive_field`` is the rectangle of input pixels the value depends on."""
    records = trace_calls(model, as_input(pixels))
    record = find(records, call)
    if not explainable(record):
        raise ValueError(f"{call!r} is a {record.class_name}: the page explains conv, depthwise, transposed conv, "
                         "pooling, dense, merging and concatenation values")
    check_index(record, index)
    dtype = record.output.dtype
    result = EXPLAINERS[type(record.layer)](record, tuple(index), dtype)
    traced_z, traced = record.preactivation[(0, *index)], record.output[(0, *index)]
    result.update({
        "layer": call, "layer_name": record.name, "class_name": record.class_name, "index": list(index), "dtype": str(dtype),
        "inbound": record.inbound, "traced_preactivation": float(traced_z), "traced_output": float(traced),
    })
    if len(index) == 3:
        result.update(row=index[0], col=index[1], channel=index[2],
                      receptive_field=receptive_field(records, call, index[0], index[1], (28, 28)))
    else:
        result.update(channel=index[0], receptive_field=receptive_field(records, call, 0, 0, (28, 28)))
    check = verdict(result["output"], traced, dtype)
    result.update(matches=check["matches"], ulps=check["ulps"])
    if "z" in result:
        z_check = verdict(result["z"], traced_z, dtype)
        result.update(z_matches=z_check["matches"], z_ulps=z_check["ulps"])
    return result


def _traced_with_label(model, pixels, label):
    x = as_input(pixels)
    target = target_of(model, x, label)
    return trace_calls(model, x, np.array([target])), target


def kernel_gradient_cell(model, pixels, label, call: str, index) -> dict:
    """dL/dK[i, j, c, f] of a conv call as the correlation that makes it (``backward_cells.kernel_gradient``),
    for ``label`` (default: the predicted class)."""
    records, target = _traced_with_label(model, pixels, label)
    record = find(records, call)
    result = backward_cells.kernel_gradient(records, record, tuple(index))
    return {"layer": call, "class_name": record.class_name, "label": target, **result}


def input_gradient_cell(model, pixels, label, call: str, index) -> dict:
    """dL/dx[row, col, c] at a conv or pooling call's input, as the full convolution of dL/dz with the
    180-degree-rotated kernel, or the routing of a pooling window's gradient (``backward_cells``)."""
    records, target = _traced_with_label(model, pixels, label)
    record = find(records, call)
    result = backward_cells.input_gradient(record, tuple(index))
    return {"layer": call, "class_name": record.class_name, "label": target, **result}


def pool_gradient_cell(model, pixels, label, call: str, index) -> dict:
    """Where a pooling window's gradient dL/dy[row, col, c] goes: to the maximum alone, or shared equally."""
    records, target = _traced_with_label(model, pixels, label)
    record = find(records, call)
    check_index(record, index)
    result = backward_cells.pool_gradient(record, tuple(index))
    return {"layer": call, "class_name": record.class_name, "label": target, **result}


def mistakes(model, x, y, batch_size: int = 500) -> list[int]:
    """Indices of the test images (uint8 (N, 28, 28), labels (N,)) the model misclassifies."""
    wrong = []
    for start in range(0, len(x), batch_size):
        batch = (np.asarray(x[start : start + batch_size], dtype=backend.floatx()) / 255.0)[..., None]
        predicted = np.argmax(model.predict(batch, verbose=0), axis=1)
        wrong.extend(int(start + k) for k in np.flatnonzero(predicted != y[start : start + batch_size]))
    return wrong
