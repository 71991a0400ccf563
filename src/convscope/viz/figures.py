"""The basic pictures: a layer's filters, a stack of feature maps, training curves; saving them as PNG.

Every colour scale is honest: values that can be negative (weights, gradients,
pre-activations) use a diverging map with limits symmetric around zero, so white
always means 0 and equal distances from white mean equal magnitudes; values that
cannot be negative (outputs of ReLU, pooling) run from 0 to their maximum. Each
picture carries its colour bar and says what its colours mean.
"""

from __future__ import annotations

import math

import numpy as np

from ..saving import atomic_write
from . import _mpl

DIVERGING = "RdBu_r"  # blue negative, white zero, red positive
SEQUENTIAL = "viridis"
GAP = "0.5"  # separator colour in tile mosaics: a neutral grey no weight maps to
ZOOM = 4  # mosaic pixels per weight, so the one-pixel gaps stay thin beside the tiles
MAX_TILES = 64  # first-layer filters or feature maps drawn one per small image
MAX_GRID_FILTERS = 64  # rows of a deeper layer's filter grid
MAX_GRID_CHANNELS = 32  # columns of a deeper layer's filter grid
TILE_COLUMNS = 8


def symmetric_limit(values, vmax=None) -> float:
    """The colour limit for signed values: ``vmax`` if given, else max |value| (1.0 for all zeros)."""
    if vmax is None:
        vmax = float(np.max(np.abs(values))) if np.size(values) else 0.0
    if not np.isfinite(vmax):
        raise ValueError(f"cannot draw non-finite values (max |value| is {vmax})")
    return vmax if vmax > 0 else 1.0


def value_norm(values, vmax=None):
    """Symmetric limits around zero when any value is negative, else [0, max]: the honest scale for ``values``."""
    colors = _mpl.colors()
    if vmax is not None or np.min(values) < 0:
        limit = symmetric_limit(values, vmax)
        return colors.Normalize(-limit, limit), DIVERGING
    top = float(np.max(values))
    if not np.isfinite(top):
        raise ValueError(f"cannot draw non-finite values (max is {top})")
    return colors.Normalize(0.0, top if top > 0 else 1.0), SEQUENTIAL


def filters_figure(kernel, title=None, bias=None, *, vmax=None, label="weight", bias_name="b"):
    """Every filter of a conv kernel ``(kh, kw, in, out)`` as a matplotlib Figure.

    A first layer (``in`` 1 or 3) shows each filter as a small image (RGB filters as
    colour images, grey meaning 0); deeper layers as a mosaic with one row per filter
    and one column per input channel, capped at ``MAX_GRID_FILTERS`` x
    ``MAX_GRID_CHANNELS`` with a note saying what was left out. ``vmax`` fixes the
    colour limit (e.g. the same across the frames of an animation); ``label`` names
    the values on the colour bar ("weight", "dL/dkernel", ...) and ``bias_name`` the bias in the labels.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 4:
        raise ValueError(f"filters_figure expects a kernel shaped (kh, kw, in, out), received shape {kernel.shape}")
    if bias is not None:
        bias = np.asarray(bias, dtype=np.float64).reshape(-1)
        if bias.shape != (kernel.shape[3],):
            raise ValueError(f"bias must hold one value per filter ({kernel.shape[3]}), received shape {bias.shape}")
    limit = symmetric_limit(kernel, vmax)
    title = title or f"{kernel.shape[3]} filters, kernel {kernel.shape[0]}x{kernel.shape[1]}x{kernel.shape[2]}"
    biases = None if bias is None else [f"{bias_name}={b:+.2g}" for b in bias]
    if kernel.shape[2] in (1, 3):
        return _first_layer_filters(kernel, biases, limit, title, label)
    return _filter_grid(kernel, biases, limit, title, label)


def mosaic(tiles):
    """Tiles ``(rows, cols, h, w)`` as one image: each value ``ZOOM`` x ``ZOOM`` pixels, NaN one-pixel gaps
    between tiles (drawn in ``GAP``); returns the image and the centre of each tile row and column."""
    rows, cols, h, w = tiles.shape
    big = np.kron(tiles, np.ones((ZOOM, ZOOM)))
    th, tw = h * ZOOM + 1, w * ZOOM + 1
    image = np.full((rows * th - 1, cols * tw - 1), np.nan)
    for r in range(rows):
        for c in range(cols):
            image[r * th : r * th + h * ZOOM, c * tw : c * tw + w * ZOOM] = big[r, c]
    return image, [r * th + (h * ZOOM - 1) / 2 for r in range(rows)], [c * tw + (w * ZOOM - 1) / 2 for c in range(cols)]


def _first_layer_filters(kernel, biases, limit, title, label):
    kh, kw, channels, count = kernel.shape
    shown = min(count, MAX_TILES)
    tiles, labels = [], []
    for f in range(shown):
        if channels == 1:
            tiles.append(kernel[:, :, 0, f])
        else:  # RGB: 0.5 grey is a zero weight, full colour is +-limit
            tiles.append(np.clip(0.5 + kernel[:, :, :, f] / (2 * limit), 0, 1))
        labels.append(f"#{f}" if biases is None else f"#{f}  {biases[f]}")
    notes = [f"colour: {label}, symmetric around 0 (white = 0), limits ±{limit:.3g}"]
    if channels == 3:
        notes = [f"RGB filters: each channel shown as 0.5 + {label} / (2 × {limit:.3g}); grey = 0"]
    if shown < count:
        notes.append(f"showing filters 0-{shown - 1} of {count}")
    norm = _mpl.colors().Normalize(-limit, limit)
    return _tile_grid(tiles, labels, norm, DIVERGING, title, "; ".join(notes), None if channels == 3 else label)


def _filter_grid(kernel, biases, limit, title, label):
    channels, count = kernel.shape[2:]
    rows, cols = min(count, MAX_GRID_FILTERS), min(channels, MAX_GRID_CHANNELS)
    image, row_centres, col_centres = mosaic(kernel[:, :, :cols, :rows].transpose(3, 2, 0, 1))
    cell = 0.2 if max(rows, cols) > 16 else 0.35  # inches per tile: big grids stay on one screen
    fig = _mpl.new_figure(figsize=(cols * cell + (3.8 if biases else 2.6), rows * cell + 1.6), layout="constrained")
    ax = fig.add_subplot()
    shown = ax.imshow(image, cmap=_mpl.colormap(DIVERGING, bad=GAP), norm=_mpl.colors().Normalize(-limit, limit),
                      interpolation="nearest")
    ax.set_xticks(col_centres, [str(c) for c in range(cols)], fontsize=6)
    ax.set_yticks(row_centres, [str(f) if biases is None else f"{f}  {biases[f]}" for f in range(rows)], fontsize=6)
    ax.tick_params(length=0, labeltop=True, top=False)
    ax.set_xlabel("input channel")
    ax.set_ylabel("filter" if biases is None else "filter (bias)")
    _mpl.colour_bar(fig, shown, ax=ax, shrink=min(1.0, 6 / (rows * cell + 1)), label=label)
    notes = [f"colour: {label}, symmetric around 0 (white = 0), limits ±{limit:.3g}"]
    if rows < count or cols < channels:
        notes.append(f"showing filters 0-{rows - 1} of {count}, input channels 0-{cols - 1} of {channels}")
    fig.suptitle(title)
    fig.supxlabel("; ".join(notes), fontsize=8)
    return fig


def feature_maps_figure(maps, title=None, cmap=None, *, label="value"):
    """Feature maps ``(h, w, c)`` (or one ``(h, w)`` map) as a grid of ``c`` small images with one colour bar.

    All maps share one scale so they can be compared; without ``cmap`` it is diverging
    and symmetric when any value is negative, else sequential from 0. At most
    ``MAX_TILES`` maps are drawn, with a note when some are left out.
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim == 2:
        maps = maps[:, :, None]
    if maps.ndim != 3 or maps.size == 0:
        raise ValueError(f"feature_maps_figure expects maps shaped (h, w, channels), received shape {maps.shape}")
    if not np.isfinite(maps).all():
        raise ValueError("feature_maps_figure: the maps contain NaN or infinite values")
    norm, default_cmap = value_norm(maps)
    count = maps.shape[2]
    shown = min(count, MAX_TILES)
    scale = (f"symmetric around 0 (white = 0), limits ±{norm.vmax:.3g}" if norm.vmin < 0
             else f"from 0 to {norm.vmax:.3g}")
    note = f"colour: {label}, {scale}; {maps.shape[0]}x{maps.shape[1]} each"
    if shown < count:
        note += f"; showing maps 0-{shown - 1} of {count}"
    title = title or f"{count} feature maps"
    return _tile_grid([maps[:, :, c] for c in range(shown)], [f"#{c}" for c in range(shown)], norm,
                      cmap or default_cmap, title, note, label)


def _tile_grid(tiles, labels, norm, cmap, title, note, bar_label):
    """Small images in rows of ``TILE_COLUMNS`` sharing ``norm``, with a title, a note and a colour bar.

    Placed by hand (in inches) rather than by constrained layout, which takes seconds to solve for 64 tiles.
    """
    cols = min(TILE_COLUMNS, len(tiles))
    rows = math.ceil(len(tiles) / cols)
    tile, caption, gap = 1.0, 0.22, 0.12  # inches: image, its label above, space between tiles
    left, right, top, bottom = 0.15, (1.2 if bar_label else 0.15), 0.55, 0.45
    content = cols * tile + (cols - 1) * gap
    width = max(left + content + right, 5.5)  # wide enough for the note under a few tiles
    left = (width - content - right + (0.15 if bar_label else 0)) / 2 if width > left + content + right else left
    height = top + rows * (tile + caption) + (rows - 1) * gap + bottom
    fig = _mpl.new_figure(figsize=(width, height))
    for k, (image, text) in enumerate(zip(tiles, labels)):
        r, c = divmod(k, cols)
        x = left + c * (tile + gap)
        y = height - top - caption - r * (tile + caption + gap) - tile
        ax = fig.add_axes((x / width, y / height, tile / width, tile / height))
        shown = ax.imshow(image, cmap=cmap, norm=norm, interpolation="nearest", aspect="equal")
        ax.set_title(text, fontsize=7, pad=2)
        ax.set_axis_off()
    if bar_label:
        grid_height = rows * (tile + caption) + (rows - 1) * gap - caption
        bar = fig.add_axes(((left + content + 0.25) / width, bottom / height, 0.18 / width, grid_height / height))
        _mpl.colour_bar(fig, shown, cax=bar, label=bar_label)
    fig.suptitle(title, y=1 - 0.12 / height, va="top")
    fig.text(0.5, 0.12 / height, note, ha="center", va="bottom", fontsize=8)
    return fig


def curves_figure(history: dict, title=None):
    """Loss and accuracy (and any other metric) per epoch, training and validation, as a Figure.

    ``history`` is Keras's ``History.history`` / a run's ``history.json``: lists keyed
    "loss", "accuracy", "val_loss", "val_accuracy", ...
    """
    if not isinstance(history, dict) or not history:
        raise ValueError("curves_figure expects a non-empty dict of per-epoch lists, e.g. {'loss': [...], ...}")
    for key, values in history.items():
        if not isinstance(values, (list, tuple, np.ndarray)) or len(values) == 0:
            raise ValueError(f"history[{key!r}] must be a non-empty list of numbers, received {values!r}")
    metrics = [k for k in history if not k.startswith("val_")] or [k[4:] for k in history]
    metrics.sort(key=lambda k: k != "loss")
    fig = _mpl.new_figure(figsize=(5.2 * len(metrics), 4), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics):
        for key, name, style in ((metric, "training", "o-"), (f"val_{metric}", "validation", "s--")):
            if key in history:
                values = np.asarray(history[key], dtype=np.float64)
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, style, markersize=3, label=f"{name} (last {values[-1]:.4f})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title or "Training curves")
    return fig


def save_figure(fig, path, dpi: int = 120):
    """Write ``fig`` to ``path`` as a PNG, atomically (no half-written file), then close it; returns ``path``."""
    try:
        with atomic_write(path) as f:
            fig.savefig(f, format="png", dpi=dpi)
    finally:
        _mpl.close(fig)
    return path
