"""Pictures of one input travelling through a model: its prediction, feature maps and gradients.

Everything comes from ``model.trace(x, y)``, the public inspection door: the
maps are the layers' recorded pre-activations and outputs, the gradients are
dL/d(input) and each conv layer's dL/d(kernel) for the given label.
"""

from __future__ import annotations

import textwrap

import numpy as np

from .. import backend
from . import _mpl
from .figures import DIVERGING, feature_maps_figure, filters_figure, symmetric_limit
from .outputs import file_part
from .sources import filter_bank, input_adapter, is_conv, walk_layers

SALIENCY_PERCENTILE = 99  # the saliency's colour limit: a few strong pixels do not wash out the rest
CONFIDENT = 0.99  # p(label) from which the saliency's note calls the model sure


def input_figure(shown, probabilities, title=None, label=None, note=None, value_range=(0.0, 1.0)):
    """The model's input (one channel of it) beside its probabilities (the predicted class in red, the label
    marked). ``note`` says how the input was made (see ``sources.InputAdapter.describe``)."""
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    fig = _mpl.new_figure(figsize=(7.5, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.6])
    left.imshow(shown, cmap="gray", vmin=value_range[0], vmax=value_range[1], interpolation="nearest")
    low, high = value_range
    left.set_title(f"input ({shown.shape[0]}x{shown.shape[1]}, {low:g} = black, {high:g} = white)", fontsize=8)
    left.set_axis_off()
    predicted = int(probabilities.argmax())
    colours = ["tab:red" if k == predicted else "tab:blue" for k in range(len(probabilities))]
    right.bar(range(len(probabilities)), probabilities, color=colours)
    if len(probabilities) <= 20:
        right.set_xticks(range(len(probabilities)))
    right.set_ylim(0, 1.05)
    right.set_xlabel("class" + ("" if label is None else f" (label {label} marked ▲)"))
    right.set_ylabel("probability")
    right.set_title(f"prediction {predicted} (p = {probabilities[predicted]:.3f})", fontsize=9)
    if label is not None:
        right.annotate("▲", (label, 0), xytext=(0, -22), textcoords="offset points", ha="center", color="black")
    fig.suptitle(title or "Input and prediction")
    if note:
        fig.supxlabel("\n".join(textwrap.wrap(note, 110)), fontsize=7)
    return fig


def maps_figures(model, image, title_prefix="", adapter=None, layers=None):
    """``(name, Figure)`` pairs, one at a time (a large graph makes hundreds): the input with the prediction,
    then every layer with spatial maps (conv, pooling, ...), a layer with a kernel and a nonlinear activation
    twice: before it (z) and after it (activation(z)). A nested
    model's layers are traced on what the nested model received and drawn as "outer/inner". ``adapter`` turns
    the uint8 digit into the model's input (default: ``sources.input_adapter(model)``); ``layers``: only these
    layer names (or "outer/inner" paths). Each name is a file name part: ``input``, or the layer's path through
    ``outputs.file_part`` (``block/inner_dw`` -> ``block_inner_dw``) and ``_preactivation`` / ``_output``."""
    adapter = adapter or input_adapter(model)
    x = adapter(image, backend.floatx())
    records = model.trace(x)
    yield "input", input_figure(x[0, :, :, 0], records[-1].output[0], title=f"{title_prefix}input and prediction",
                                note=adapter.describe(), value_range=(adapter.low, adapter.high))
    for path, layer, record in _spatial_records(model, records):
        if layers is not None and path not in layers and layer.name not in layers:
            continue
        activation = getattr(layer, "activation", None)
        head = f"{title_prefix}{path} ({record.class_name})"
        slug = file_part(path)
        if is_conv(layer) and activation is not None and activation.name != "linear":
            yield f"{slug}_preactivation", feature_maps_figure(
                record.preactivation[0], f"{head}: before {activation.name} (z = x ⋆ K + b)", label="z")
            yield f"{slug}_output", feature_maps_figure(
                record.output[0], f"{head}: after {activation.name}", label=f"{activation.name}(z)")
        else:
            yield f"{slug}_output", feature_maps_figure(record.output[0], f"{head}: output", label="output")


def _spatial_records(model, records, prefix=""):
    """``[(path, layer, record)]`` of every call with 4-D output; a nested model's own calls follow its record."""
    found = []
    by_name = dict((layer.name, layer) for layer in model.layers)
    for record in records:
        layer = by_name[record.name]
        if not isinstance(record.output, np.ndarray) or record.output.ndim != 4:
            continue
        found.append((prefix + record.name, layer, record))
        if hasattr(layer, "layers") and isinstance(record.input, np.ndarray):
            found += _spatial_records(layer, layer.trace(record.input), f"{prefix}{record.name}/")
    return found


def gradient_figures(model, image, label: int, title_prefix="", adapter=None, layers=None, select=None):
    """``(name, Figure)`` pairs, one at a time, for one input and its label: the input gradient (saliency) and
    each conv layer's kernel gradient dL/dK, nested models' layers included, each on its own symmetric scale
    (``filters_figure``'s: per filter where one shared scale would leave many filters pale).
    ``adapter`` and ``layers`` as for ``maps_figures``; ``select(path, kernel)`` gives each kernel gradient's
    ``filters_figure`` options (``filters``, ``channels``, ``scale``), or None to leave that layer out
    (default: every layer, default subset and scale). Names: ``saliency`` and ``<file_part of the layer's
    path>_kernel_gradient``."""
    adapter = adapter or input_adapter(model)
    x = adapter(image, backend.floatx())
    records = model.trace(x, np.array([label]))
    probabilities = records[-1].output[0]
    gradient = records.grad_input[0].sum(axis=2)      # the digit sits in every channel: their gradients add up
    channels = "" if adapter.channels == 1 else \
        f"; dL/d(pixel) is the sum over the {adapter.channels} channels, each holding the digit"
    yield "saliency", saliency_figure(x[0, :, :, 0], gradient, label, probabilities,
                                      title=f"{title_prefix}input gradient (saliency)",
                                      value_range=(adapter.low, adapter.high), note=adapter.describe() + channels)
    for record in records:
        outer = model.get_layer(record.name)
        inner = {layer.name: (f"{record.name}/{path}", layer) for path, layer in walk_layers(outer)} \
            if hasattr(outer, "layers") else {}
        for name, kernel in record.param_grads.items():
            owner, _, weight = name.rpartition("/")     # a nested model names its weights "layer/weight"
            path, layer = inner.get(owner, (None, None)) if owner else (record.name, outer)
            if weight != "kernel" or kernel.ndim != 4 or layer is None:
                continue
            if layers is not None and path not in layers and layer.name not in layers:
                continue
            shown, bias, _ = filter_bank(layer, kernel, record.param_grads.get(f"{owner}/bias" if owner else "bias"))
            options = {} if select is None else select(path, shown)
            if options is None:
                continue
            nested = "" if not owner else f" (inside {record.name})"
            title = f"{title_prefix}{layer.name}{nested}: dL/dK for label {label} (db = dL/db)"
            yield f"{file_part(path)}_kernel_gradient", filters_figure(
                shown, title=title, bias=bias, label="dL/d(weight)", bias_name="db", **options)


def confidence_note(p: float) -> str:
    """What the size of the gradients says, given the probability ``p`` of the label."""
    if p >= CONFIDENT:
        return (f"the model is sure (p(label) = {p:.4f}): the loss and its gradients are small; "
                "an input it doubts: convscope show gradients MODEL --least-confident")
    return f"the model is unsure (p(label) = {p:.4f}): the loss and its gradients are larger than for an input it is sure of"


def saliency_figure(image, gradient, label, probabilities, title=None, value_range=(0.0, 255.0), note=None,
                    percentile=SALIENCY_PERCENTILE):
    """The input beside dL/d(input): red pixels raise the loss when brightened, blue ones lower it.

    The colour limits are ±(the ``percentile``-th percentile of |dL/d(pixel)|), not ±max: a few strong pixels
    would otherwise leave the rest white; the pixels beyond are drawn at full colour, and the note says the
    limit, the largest value and how many pixels lie beyond. ``value_range``: the input's black and white
    values; ``note`` how the input was made."""
    magnitude = np.abs(gradient)
    largest = symmetric_limit(gradient)
    limit = float(np.percentile(magnitude, percentile))
    limit = limit if limit > 0 else largest
    beyond = int(np.sum(magnitude > limit))
    fig = _mpl.new_figure(figsize=(8.4, 3.9), layout="constrained")
    left, middle, right = fig.subplots(1, 3)
    left.imshow(image, cmap="gray", vmin=value_range[0], vmax=value_range[1], interpolation="nearest")
    predicted = int(np.argmax(probabilities))
    p = float(probabilities[label])
    left.set_title(f"input: label {label}, predicted {predicted}\np(label) = {p:.4f}, 1 − p(label) = {1 - p:.2g}",
                   fontsize=8)
    shown = middle.imshow(gradient, cmap=DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest")
    middle.set_title("dL/d(pixel), signed", fontsize=8)
    _mpl.colour_bar(fig, shown, ax=middle, shrink=0.8, label="dL/d(pixel)", extend="both" if beyond else "neither")
    right.imshow(image, cmap="gray", vmin=value_range[0], vmax=value_range[1], interpolation="nearest")
    right.imshow(magnitude, cmap="magma", alpha=0.65, vmin=0, vmax=limit, interpolation="nearest")
    right.set_title("|dL/d(pixel)| over the input", fontsize=8)
    for ax in (left, middle, right):
        ax.set_axis_off()
    fig.suptitle(title or "Input gradient")
    scale = (f"colour limits ±{limit:.3g}, the {percentile:g}th percentile of |dL/d(pixel)| (largest {largest:.3g}; "
             f"{beyond} pixel{'s' if beyond != 1 else ''} beyond, drawn at full colour)")
    lines = [f"L = cross-entropy for label {label}; red: brightening the pixel raises the loss, blue: lowers it",
             scale, confidence_note(p)]
    fig.supxlabel("\n".join(lines + textwrap.wrap(note or "", 110)), fontsize=8)
    return fig
