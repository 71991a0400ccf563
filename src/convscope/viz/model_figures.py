"""Pictures of one input travelling through a model: its prediction, feature maps and gradients.

Everything comes from ``model.trace(x, y)``, the public inspection door: the
maps are the layers' recorded pre-activations and outputs, the gradients are
dL/d(input) and each conv layer's dL/d(kernel) for the given label.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from . import _mpl
from .figures import DIVERGING, feature_maps_figure, filters_figure, symmetric_limit
from .sources import as_batch


def input_figure(image, probabilities, title=None, label=None):
    """The input digit beside the model's ten probabilities (the predicted class in red, the label marked)."""
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    fig = _mpl.new_figure(figsize=(7.5, 3.2), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.6])
    left.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    left.set_title("input (28x28, 0 = black, 255 = white)", fontsize=8)
    left.set_axis_off()
    predicted = int(probabilities.argmax())
    colours = ["tab:red" if k == predicted else "tab:blue" for k in range(len(probabilities))]
    right.bar(range(len(probabilities)), probabilities, color=colours)
    right.set_xticks(range(len(probabilities)))
    right.set_ylim(0, 1.05)
    right.set_xlabel("class" + ("" if label is None else f" (label {label} marked ▲)"))
    right.set_ylabel("probability")
    right.set_title(f"prediction {predicted} (p = {probabilities[predicted]:.3f})", fontsize=9)
    if label is not None:
        right.annotate("▲", (label, 0), xytext=(0, -22), textcoords="offset points", ha="center", color="black")
    fig.suptitle(title or "Input and prediction")
    return fig


def maps_figures(model, image, title_prefix=""):
    """``[(name, Figure)]``: the input with the prediction, then every layer with spatial maps (conv, pooling, ...),
    a conv layer with a nonlinear activation twice: before it (z) and after it (activation(z))."""
    records = model.trace(as_batch(image, backend.floatx()))
    figures = [("input", input_figure(image, records[-1].output[0], title=f"{title_prefix}input and prediction"))]
    for record in records:
        if record.output.ndim != 4:
            continue
        activation = getattr(model.get_layer(record.name), "activation", None)
        head = f"{title_prefix}{record.name} ({record.class_name})"
        if activation is not None and activation.name != "linear":
            figures.append((f"{record.name}_preactivation", feature_maps_figure(
                record.preactivation[0], f"{head}: before {activation.name} (z = conv + bias)", label="z")))
            figures.append((f"{record.name}_output", feature_maps_figure(
                record.output[0], f"{head}: after {activation.name}", label=f"{activation.name}(z)")))
        else:
            figures.append((f"{record.name}_output", feature_maps_figure(record.output[0], f"{head}: output",
                                                                         label="output")))
    return figures


def gradient_figures(model, image, label: int, title_prefix=""):
    """``[(name, Figure)]`` for one input and its label: the input gradient (saliency) and each conv
    layer's kernel gradient dL/d(kernel), each on its own symmetric scale."""
    records = model.trace(as_batch(image, backend.floatx()), np.array([label]))
    probabilities = records[-1].output[0]
    figures = [("saliency", saliency_figure(image, records.grad_input[0, :, :, 0], label, probabilities,
                                            title=f"{title_prefix}input gradient (saliency)"))]
    for record in records:
        kernel = record.param_grads.get("kernel")
        if kernel is not None and kernel.ndim == 4:
            title = f"{title_prefix}{record.name}: dL/d(kernel) for label {label} (db = dL/d(bias))"
            figures.append((f"{record.name}_kernel_gradient", filters_figure(
                kernel, title=title, bias=record.param_grads.get("bias"), label="dL/d(weight)", bias_name="db")))
    return figures


def saliency_figure(image, gradient, label, probabilities, title=None):
    """The input beside dL/d(input): red pixels raise the loss when brightened, blue ones lower it."""
    limit = symmetric_limit(gradient)
    fig = _mpl.new_figure(figsize=(8, 3.6), layout="constrained")
    left, middle, right = fig.subplots(1, 3)
    left.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    predicted = int(np.argmax(probabilities))
    left.set_title(f"input: label {label}, predicted {predicted}\np(label) = {probabilities[label]:.4f}", fontsize=8)
    shown = middle.imshow(gradient, cmap=DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest")
    middle.set_title("dL/d(pixel), signed", fontsize=8)
    _mpl.colour_bar(fig, shown, ax=middle, shrink=0.8, label="dL/d(pixel)")
    right.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    right.imshow(np.abs(gradient), cmap="magma", alpha=0.65, vmin=0, vmax=limit, interpolation="nearest")
    right.set_title("|dL/d(pixel)| over the input", fontsize=8)
    for ax in (left, middle, right):
        ax.set_axis_off()
    fig.suptitle(title or "Input gradient")
    fig.supxlabel(f"L = cross-entropy for label {label}; red: brightening the pixel raises the loss, "
                  f"blue: lowers it; limits ±{limit:.3g}", fontsize=8)
    return fig
