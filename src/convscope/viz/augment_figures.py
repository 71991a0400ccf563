"""What augmentation does to digits: a grid of a few images, each through several seeded draws of each layer.

One row per augmentation layer (Keras's defaults with moderate factors, or the augmentation front
of a model: its leading preprocessing and augmentation layers, then all of them together); for
each digit, its input and ``draws`` outputs of the layer in training mode. Every layer runs from a
copy of its config with its own seed, so the picture is the same for the same ``seed`` and the
global random generator is left alone. Grey levels are the pixel values on one fixed scale (the
colour bar), so contrast and brightness changes show as they are.
"""

from __future__ import annotations

import numpy as np

from ..layers import (
    CenterCrop, Normalization, RandomBrightness, RandomContrast, RandomCrop, RandomFlip, RandomRotation,
    RandomTranslation, RandomZoom, Rescaling, Resizing,
)
from . import _mpl

RANDOM = (RandomFlip, RandomRotation, RandomZoom, RandomTranslation, RandomContrast, RandomBrightness, RandomCrop)
FRONT = (*RANDOM, Rescaling, Normalization, Resizing, CenterCrop)
"""Layer types a model's augmentation front is made of (the leading run of them)."""
CELL = 0.62  # inches per image


def default_layers():
    """Each Keras augmentation layer with factors that keep a digit readable, on [0, 1] pixels."""
    return [RandomFlip("horizontal"), RandomRotation(0.1), RandomZoom(0.25), RandomTranslation(0.15, 0.15),
            RandomContrast((0.6, 0.6), value_range=(0, 1)), RandomBrightness(0.3, value_range=(0, 1)),
            RandomCrop(22, 22)]


def sample_digits(count: int = 3):
    """The first test image of each digit 0, 1, ..., count - 1 of the bundled MNIST sample, in [0, 1]."""
    from ..datasets import mnist_sample

    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10:
        raise ValueError(f"the number of digits must be an int between 1 and 10, received {count!r}")
    (_, _), (x, y) = mnist_sample.load_data()
    return x[[int(np.flatnonzero(y == d)[0]) for d in range(count)]].astype("float32") / 255


_SHOWN_KEYS = ("mode", "factor", "height_factor", "width_factor", "height", "width", "value_range", "scale")


def describe(layer) -> str:
    """The layer's type and the arguments that say how strong it is, for the row labels."""
    config = layer.get_config()
    args = [f"{key}={config[key]}" for key in _SHOWN_KEYS if config.get(key) is not None]
    return "\n".join([type(layer).__name__, *args])


def augmentation_front(model) -> list:
    """The model's leading layers that are preprocessing or augmentation (its InputLayer aside)."""
    front = []
    for layer in model.layers:
        if not isinstance(layer, FRONT):
            break
        front.append(layer)
    if not any(isinstance(layer, RANDOM) for layer in front):
        raise ValueError(f'model "{model.name}" does not start with augmentation layers (its first layers: '
                         f"{', '.join(type(layer).__name__ for layer in model.layers[:3])})")
    return front


def _seeded(layer, seed: int):
    """A fresh copy of ``layer`` drawing from its own generator seeded with ``seed``."""
    if not isinstance(layer, RANDOM):
        return layer
    return type(layer).from_config({**layer.get_config(), "seed": seed})


def _run(chain, x):
    for layer in chain:
        x = layer.forward(x, training=True)
    return x


def augment_figure(images, layers, draws: int = 4, seed: int = 0, title=None):
    """The grid (see the module docstring) for ``images`` (n, h, w) or (n, h, w, 1) floats and ``layers``.

    With more than one layer a last row applies them all in order (a model's front as fit runs it).
    """
    x = np.asarray(images, dtype="float32")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] != 1 or not len(x):
        raise ValueError(f"augment_figure draws grey images (n, height, width[, 1]), received shape {x.shape}")
    if not isinstance(draws, int) or isinstance(draws, bool) or draws < 1:
        raise ValueError(f"augment_figure: draws must be a positive int, received {draws!r}")
    rows = [(describe(layer), [_seeded(layer, seed + 1000 * r)])
            for r, layer in enumerate(layers)]
    if len(layers) > 1:
        rows.append(("all together", [_seeded(layer, seed + 1000 * r + 1) for r, layer in enumerate(layers)]))
    # Row r, draw d: the layer's d-th training call on the whole batch of digits.
    outputs = [[_run(chain, x)[..., 0] for _ in range(draws)] for _, chain in rows]
    values = np.concatenate([x.ravel(), *(o.ravel() for row in outputs for o in row)])
    vmin, vmax = float(values.min()), float(values.max())
    if vmax <= vmin:
        vmax = vmin + 1.0

    n, cols = len(x), len(x) * (draws + 1)
    fig = _mpl.new_figure(figsize=(1.3 + CELL * cols + 0.8, 0.6 + CELL * len(rows)))
    grid = fig.add_gridspec(len(rows), cols, left=1.3 / fig.get_figwidth(), right=1 - 0.8 / fig.get_figwidth(),
                            top=1 - 0.5 / fig.get_figheight(), bottom=0.1 / fig.get_figheight(), wspace=0.08,
                            hspace=0.08)
    shown = None
    for r, (label, _) in enumerate(rows):
        for i in range(n):
            for d in range(draws + 1):
                ax = fig.add_subplot(grid[r, i * (draws + 1) + d])
                picture = x[i, ..., 0] if d == 0 else outputs[r][d - 1][i]
                shown = ax.imshow(picture, cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_edgecolor("tab:orange" if d == 0 else "0.6")
                if r == 0:
                    ax.set_title("input" if d == 0 else f"draw {d}", fontsize=7)
                if i == 0 and d == 0:
                    ax.text(-0.15, 0.5, label, transform=ax.transAxes, ha="right", va="center", fontsize=7)
    bar = fig.add_axes([1 - 0.55 / fig.get_figwidth(), 0.15, 0.12 / fig.get_figwidth(), 0.7])
    fig.colorbar(shown, cax=bar).set_label("pixel value", fontsize=7)
    bar.tick_params(labelsize=6)
    fig.suptitle(title or f"Augmentation in training: {draws} seeded draws (seed {seed}) per digit and layer",
                 fontsize=9)
    return fig
