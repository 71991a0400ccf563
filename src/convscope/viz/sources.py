"""Where the pictures and the explorer get their inputs: a model file or run folder, and test images.

Test images come from full MNIST when it is found on disk, else from the offline
sample. Nothing here downloads: ``--index N`` should answer at once, so a missing
data set falls back to the sample that ships inside the package, and says so.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..runs import model_file as model_path  # the one way a model file or run folder is opened (the explorer's too)

DATASETS = ("mnist", "fashion-mnist", "mnist-sample")


def load_test_set(dataset: str = "mnist", announce=print):
    """``(name, x_test, y_test)``: uint8 images ``(n, 28, 28)`` and labels; ``announce`` hears which set was used."""
    from .. import datasets

    if dataset not in DATASETS:
        raise ValueError(f"--dataset must be one of {', '.join(DATASETS)}, received {dataset!r}")
    if dataset != "mnist-sample":
        folder = datasets.find_local(dataset)
        if folder is not None:
            module = datasets.mnist if dataset == "mnist" else datasets.fashion_mnist
            (_, _), (x, y) = module.load_data(folder)
            announce(f"Test images: {dataset} ({len(x)} images) from {folder}")
            return dataset, x, y
        if dataset == "fashion-mnist":
            raise ValueError("Fashion-MNIST was not found locally (set CONVSCOPE_DATA to a folder holding fashion-mnist/)")
    (_, _), (x, y) = datasets.mnist_sample.load_data()
    if dataset == "mnist":
        announce("Full MNIST not found locally (set CONVSCOPE_DATA to a folder holding mnist/); "
                 f"using the offline sample's {len(x)} test images")
    else:
        announce(f"Test images: the offline mnist-sample ({len(x)} images)")
    return "mnist-sample", x, y


def pick(x, y, index: int):
    """Test image ``index`` and its label, or a ValueError naming the valid range."""
    if not 0 <= index < len(x):
        raise ValueError(f"--index must be between 0 and {len(x) - 1} for this test set, received {index}")
    return x[index], int(y[index])


# keras.applications models whose preprocess_input is not part of the graph: name prefix -> the range it maps to.
APPLICATION_RANGES = {"mobilenet": (-1.0, 1.0), "nasnet": (-1.0, 1.0), "xception": (-1.0, 1.0),
                      "inception": (-1.0, 1.0)}
# First layers that scale raw pixels themselves: the model wants values in [0, 255].
SCALING_LAYERS = ("Rescaling", "Normalization")


@dataclass(frozen=True)
class InputAdapter:
    """How MNIST digits become a model's input: resized to ``height`` x ``width``, the gray value copied into
    each of ``channels`` channels, and [0, 255] mapped linearly onto [``low``, ``high``]; ``reason`` says why."""

    height: int
    width: int
    channels: int
    low: float
    high: float
    reason: str

    @property
    def is_mnist(self) -> bool:
        return (self.height, self.width, self.channels, self.low, self.high) == (28, 28, 1, 0.0, 1.0)

    def describe(self) -> str:
        """One line for a figure or report: what was done to the 28x28 digits."""
        if self.is_mnist:
            return "input: the 28x28 digit, pixels / 255 (0 = black, 1 = white)"
        steps = [] if (self.height, self.width) == (28, 28) else [f"resized 28x28 -> {self.height}x{self.width} (bilinear)"]
        if self.channels > 1:
            steps.append(f"gray copied into {self.channels} channels")
        steps.append(f"scaled to [{self.low:g}, {self.high:g}] ({self.reason})")
        return "input: MNIST digit " + ", ".join(steps)

    def __call__(self, images, dtype="float32"):
        """uint8 digits ``(n, 28, 28)`` (or one ``(28, 28)``) -> the model's input ``(n, height, width, channels)``."""
        from .. import backend
        from ..layers import Resizing

        images = np.asarray(images, dtype=np.float64)
        batch = images[None] if images.ndim == 2 else images
        x = batch[..., None] / 255.0
        if (self.height, self.width) != x.shape[1:3]:
            with _floatx("float64"):
                x = np.clip(np.asarray(Resizing(self.height, self.width)(x)), 0.0, 1.0)
        x = np.repeat(x, self.channels, axis=3) * (self.high - self.low) + self.low
        return backend.cast(x, dtype)


def input_adapter(model, value_range=None) -> InputAdapter:
    """The ``InputAdapter`` for ``model``'s (single, image) input. The value range is ``value_range`` when given,
    else [0, 255] when the first layer is Rescaling / Normalization (the model scales pixels itself), else the
    range of a keras.applications model's preprocess_input (by the model's name), else [0, 1] as for MNIST."""
    shapes = model.input_shape
    if isinstance(shapes, list):
        raise ValueError(f"model {model.name!r} has {len(shapes)} inputs; the pictures and lessons feed one image")
    if len(shapes) != 4:
        raise ValueError(f"model {model.name!r} takes inputs shaped {shapes}; the pictures and lessons need "
                         "images (batch, height, width, channels)")
    _, height, width, channels = shapes
    if value_range is not None:
        low, high = (float(v) for v in value_range)
        if not low < high:
            raise ValueError(f"--input-range must be LOW,HIGH with LOW < HIGH, received {low:g},{high:g}")
        reason = "as asked"
    elif (first := first_layer(model)) is not None and type(first).__name__ in SCALING_LAYERS:
        low, high, reason = 0.0, 255.0, f"raw pixels: the model's first layer {first.name!r} ({type(first).__name__}) scales them"
    else:
        prefix = next((p for p in APPLICATION_RANGES if model.name.lower().startswith(p)), None)
        if prefix is not None:
            (low, high), reason = APPLICATION_RANGES[prefix], f"as keras.applications {prefix} preprocess_input does"
        else:
            low, high, reason = 0.0, 1.0, "pixels / 255, as for MNIST"
    return InputAdapter(int(height), int(width), int(channels), low, high, reason)


def walk_layers(model, prefix=""):
    """``[(path, layer)]`` for every layer of ``model``, nested models' layers after them as "outer/inner"."""
    found = []
    for layer in model.layers:
        path = prefix + layer.name
        found.append((path, layer))
        if hasattr(layer, "layers"):
            found += walk_layers(layer, path + "/")
    return found


def find_layer(model, name):
    """The layer called ``name`` (its own name or an "outer/inner" path), nested models included."""
    for path, layer in walk_layers(model):
        if name in (path, layer.name):
            return layer
    names = ", ".join(path for path, _ in walk_layers(model))
    raise ValueError(f'No layer named "{name}" in model "{model.name}"; its layers (nested ones as OUTER/INNER): {names}')


def is_conv(layer) -> bool:
    """Whether ``layer`` holds a 2-D convolution kernel ``(kh, kw, in, out)`` (Conv2D, DepthwiseConv2D, ...)."""
    return getattr(getattr(layer, "kernel", None), "value", None) is not None and layer.kernel.value.ndim == 4


def filter_bank(layer, kernel=None, bias=None):
    """``(kernel, bias, title)`` of a conv layer as ``filters_figure`` draws it. A depthwise kernel
    ``(kh, kw, C, M)`` filters each channel alone: it is shown as C·M one-channel filters ``(kh, kw, 1, C·M)``,
    filter c·M + m being slice [:, :, c, m] (output channel c·M + m), so every bias sits beside its filter."""
    kernel = layer.kernel.value if kernel is None else kernel
    if bias is None and getattr(layer, "bias", None) is not None:
        bias = layer.bias.value
    kh, kw, c, f = kernel.shape
    if type(layer).__name__ == "DepthwiseConv2D":
        reads = "filter c reads channel c" if f == 1 else f"filter c·{f} + m reads channel c"
        title = f"{layer.name} (DepthwiseConv2D): {c * f} filters of {kh}x{kw}, each on one input channel ({reads})"
        return kernel.reshape(kh, kw, 1, c * f), bias, title
    title = f"{layer.name}: {f} filters of {kh}x{kw}x{c} ({c} input channel{'s' if c > 1 else ''})"
    return kernel, bias, title


def first_layer(model):
    """The first layer after the input, looking inside a nested model; None for a model of inputs only."""
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        return first_layer(layer) if hasattr(layer, "layers") else layer
    return None


def parse_range(text):
    """``"LOW,HIGH"`` -> (low, high) floats, or None for None."""
    if text is None:
        return None
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--input-range must be LOW,HIGH (two numbers, e.g. -1,1), received {text!r}") from None
    return low, high


def parse_indices(text, option: str):
    """``"0-7"``, ``"0,3,5"`` or ``"0-3,8"`` -> ``[0, 1, ...]`` in the order written (None for None); a ValueError
    naming ``option`` for anything else."""
    if text is None:
        return None
    indices = []
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        if not (first.isdigit() and (not dash or last.isdigit())):
            raise ValueError(f"{option} must be indices or ranges such as 0-7 or 0,3,5, received {text!r}")
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            raise ValueError(f"{option}: a range runs from low to high (e.g. 0-7), received {part.strip()!r}")
        indices += range(low, high + 1)
    return indices


def least_confident(model, adapter, images, batch: int = 500):
    """``(index, top probability)`` of the image the model is least sure of: the lowest largest probability.
    ``images`` are uint8 digits ``(n, 28, 28)``, fed through ``adapter`` ``batch`` at a time."""
    from .. import backend

    tops = np.concatenate([np.max(model.predict(adapter(images[i:i + batch], backend.floatx()), verbose=0), axis=1)
                           for i in range(0, len(images), batch)])
    index = int(np.argmin(tops))
    return index, float(tops[index])


def training_only_layers(model) -> list[str]:
    """The layers of ``model`` (nested models' too) that act differently in training, one phrase each:
    ``["dropout (rate 0.5)", "batch_normalization (the batch's statistics)", "random_flip (random flip)"]``."""
    found = []
    for _, layer in walk_layers(model):
        kind = type(layer).__name__
        if kind == "Dropout":
            found.append(f"{layer.name} (rate {layer.rate:g})")
        elif kind == "BatchNormalization":
            found.append(f"{layer.name} (the batch's statistics)")
        elif kind.startswith("Random"):
            found.append(f"{layer.name} (random {kind[len('Random'):].lower()})")
    return found


@contextmanager
def _floatx(name):
    from .. import backend

    previous = backend.floatx()
    backend.set_floatx(name)
    try:
        yield
    finally:
        backend.set_floatx(previous)


def open_model(path):
    """The model in a model file or run folder (see ``runs.model_file``), uncompiled: the tools only read it."""
    from ..saving import load_model

    return load_model(model_path(path), compile=False)
