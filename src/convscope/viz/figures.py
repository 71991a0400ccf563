"""The basic pictures: a layer's filters, a stack of feature maps, training curves; saving them as PNG.

Every colour scale is honest: values that can be negative (weights, gradients,
pre-activations) use a diverging map with limits symmetric around zero, so white
always means 0 and equal distances from white mean equal magnitudes; values that
cannot be negative (outputs of ReLU, pooling) run from 0 to their maximum. A bank of
filters whose sizes differ so much that one scale would leave many of them white gets one
scale per filter, written beside each. Each picture carries its colour bar and says which
scale it uses and what its colours mean.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np

from ..saving import atomic_write
from . import _mpl

DIVERGING = "RdBu_r"  # blue negative, white zero, red positive
SEQUENTIAL = "viridis"
GAP = "0.5"  # separator colour in tile mosaics: a neutral grey no weight maps to
ZOOM = 4  # mosaic pixels per weight, so the one-pixel gaps stay thin beside the tiles
MAX_TILES = 64  # first-layer filters or feature maps drawn one per small image
MAX_GRID_FILTERS = 64  # rows of a deeper layer's filter grid, at most
MAX_GRID_CHANNELS = 32  # columns of a deeper layer's filter grid, at most
DEFAULT_GRID_FILTERS = 16  # a deeper layer's grid by default: 16 x 8 tiles stay readable on one screen
DEFAULT_GRID_CHANNELS = 8
TILE_COLUMNS = 8
SCALES = ("auto", "shared", "per-filter")
# "auto" gives each filter its own scale when one shared scale would leave more than this share of the shown
# filters inside a quarter of the colour range (pale, their pattern lost).
FLATTENED_SHARE = 0.25
FLATTENED_BELOW = 0.25


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


def describe_indices(indices) -> str:
    """Indices as a reader writes them: ``[0, 1, 2, 3, 8, 10, 11]`` -> ``"0-3, 8, 10-11"``."""
    runs, start = [], None
    for k, index in enumerate(indices):
        if start is None:
            start = index
        if k + 1 == len(indices) or indices[k + 1] != index + 1:
            runs.append(str(start) if start == index else f"{start}-{index}")
            start = None
    return ", ".join(runs)


def chosen(indices, count: int, what: str, default: int, most: int) -> list[int]:
    """The indices to draw out of ``count``: ``indices`` checked (each in range, no repeats, at most ``most``),
    or the first ``default``."""
    if indices is None:
        return list(range(min(count, default)))
    picked = [int(i) for i in indices]
    if not picked:
        raise ValueError(f"{what}: choose at least one")
    wrong = [i for i in picked if not 0 <= i < count]
    if wrong:
        raise ValueError(f"{what} must be between 0 and {count - 1} (there are {count}), received {wrong[0]}")
    if len(set(picked)) != len(picked):
        raise ValueError(f"{what}: each index once, received {describe_indices(picked)}")
    if len(picked) > most:
        raise ValueError(f"{what}: one picture draws at most {most}, received {len(picked)}; choose fewer")
    return picked


def filter_scales(kernel, shown, scale: str, vmax=None):
    """``(limits, per_filter, note)``: the colour limit of each shown filter (all equal for one shared scale),
    whether each filter has its own, and the note that says which scale is used. ``scale`` is "shared", "per-filter" or "auto" (per-filter when one shared
    scale would leave more than ``FLATTENED_SHARE`` of the shown filters within ``FLATTENED_BELOW`` of its range)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, received {scale!r}")
    if vmax is not None and scale == "per-filter":
        raise ValueError("vmax fixes one shared colour limit; it cannot be combined with scale='per-filter'")
    own = np.array([symmetric_limit(kernel[..., f]) for f in shown])   # each filter's max |value|, all channels
    shared = symmetric_limit(kernel, vmax)                                # the whole kernel, shown or not
    pale = int(np.sum(own < FLATTENED_BELOW * shared))
    if scale == "auto":
        scale = "per-filter" if vmax is None and pale > FLATTENED_SHARE * len(shown) else "shared"
    if scale == "shared":
        return np.full(len(shown), shared), False, f"one scale for all filters, limits ±{shared:.3g}"
    note = "each filter on its own scale: ± its max |value| over all its channels, written beside it"
    if pale:
        note += (f"; one shared scale (±{shared:.3g}) would leave {pale} of the {len(shown)} shown filters within a "
                 "quarter of its range")
    return own, True, note


def filters_figure(kernel, title=None, bias=None, *, vmax=None, label="weight", bias_name="b",
                   filters=None, channels=None, scale="auto"):
    """A conv kernel ``(kh, kw, in, out)``'s filters (a chosen subset of them) as a matplotlib Figure.

    A first layer (``in`` 1 or 3) shows each filter as a small image (RGB filters as colour
    images, grey meaning 0), up to ``MAX_TILES``; a deeper layer as a mosaic with one row per
    filter and one column per input channel, by default filters 0-15 and channels 0-7
    (``filters=`` and ``channels=`` pick others: index lists, at most ``MAX_GRID_FILTERS`` x
    ``MAX_GRID_CHANNELS``). The title says which subset of how many is drawn.

    ``scale``: "shared" (one symmetric limit, max |value| of the whole kernel), "per-filter"
    (each filter's own max |value|, written beside it) or "auto" (per-filter where a shared
    scale would leave many filters pale); the note under the picture says which. ``vmax``
    fixes the shared limit (e.g. across the frames of an animation); ``label`` names the values
    ("weight", "dL/d(weight)", ...) and ``bias_name`` the bias in the labels.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 4:
        raise ValueError(f"filters_figure expects a kernel shaped (kh, kw, in, out), received shape {kernel.shape}")
    kh, kw, in_channels, count = kernel.shape
    if bias is not None:
        bias = np.asarray(bias, dtype=np.float64).reshape(-1)
        if bias.shape != (count,):
            raise ValueError(f"bias must hold one value per filter ({count}), received shape {bias.shape}")
    first_layer = in_channels in (1, 3)
    if first_layer and channels is not None:
        raise ValueError(f"channels: a first layer's filters ({in_channels} input channel"
                         f"{'s' if in_channels > 1 else ''}) are drawn whole; channels= picks a deeper layer's columns")
    shown = chosen(filters, count, "filters", MAX_TILES if first_layer else DEFAULT_GRID_FILTERS,
                   MAX_TILES if first_layer else MAX_GRID_FILTERS)
    limits, per_filter, scale_note = filter_scales(kernel, shown, scale, vmax)
    title = title or f"{count} filters, kernel {kh}x{kw}x{in_channels}"
    subset = f"filters {describe_indices(shown)} of {count}"
    labels = [f"{f}" + ("" if bias is None else f"  {bias_name}={bias[f]:+.2g}") for f in shown]
    if first_layer:
        if per_filter:  # on a second line: a tile is one inch wide
            labels = [f"{text}\n±{limit:.2g}" for text, limit in zip(labels, limits)]
        if len(shown) < count:
            title += f"\n{subset} (more: --filters)"
        return _first_layer_filters(kernel[..., shown], labels, limits, per_filter, title, label, scale_note)
    if per_filter:
        labels = [f"{text}  ±{limit:.2g}" for text, limit in zip(labels, limits)]
    columns = chosen(channels, in_channels, "channels", DEFAULT_GRID_CHANNELS, MAX_GRID_CHANNELS)
    if len(shown) < count or len(columns) < in_channels:
        title += f"\n{subset}, input channels {describe_indices(columns)} of {in_channels} (more: --filters, --channels)"
    return _filter_grid(kernel[:, :, columns][..., shown], columns, labels, limits, per_filter, bias is not None,
                        title, label, scale_note)


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


def wrap_title(title: str, width: float) -> str:
    """``title`` broken into lines that fit a figure ``width`` inches wide (at the suptitle's 12 points)."""
    return "\n".join(line for part in title.split("\n") for line in textwrap.wrap(part, max(20, int(width / 0.09))))


def _colour_words(label, per_filter, scale_note):
    """The note's first part and the colour bar's label: the values themselves, or each divided by its limit."""
    if per_filter:
        return f"colour: {label} / its filter's limit, symmetric around 0 (white = 0); {scale_note}", \
            f"{label} / filter's limit"
    return f"colour: {label}, symmetric around 0 (white = 0); {scale_note}", label


def _first_layer_filters(kernel, labels, limits, per_filter, title, label, scale_note):
    channels = kernel.shape[2]
    tiles = []
    for f, limit in enumerate(limits):
        if channels == 1:
            tiles.append(kernel[:, :, 0, f] / limit if per_filter else kernel[:, :, 0, f])
        else:  # RGB: 0.5 grey is a zero weight, full colour is +-limit
            tiles.append(np.clip(0.5 + kernel[:, :, :, f] / (2 * limit), 0, 1))
    note, bar_label = _colour_words(label, per_filter, scale_note)
    if channels == 3:
        note = f"RGB filters: each channel shown as 0.5 + {label} / (2 x limit); grey = 0; {scale_note}"
    top = 1.0 if per_filter else limits[0]
    return _tile_grid(tiles, [f"#{text}" for text in labels], _mpl.colors().Normalize(-top, top), DIVERGING, title,
                      note, None if channels == 3 else bar_label)


def _filter_grid(kernel, columns, labels, limits, per_filter, has_bias, title, label, scale_note):
    tiles = kernel.transpose(3, 2, 0, 1) / (limits[:, None, None, None] if per_filter else 1.0)
    image, row_centres, col_centres = mosaic(tiles)
    cell = 0.2 if max(len(labels), len(columns)) > 16 else 0.45  # inches per tile: big grids stay on one screen
    label_width = 0.06 * max(len(text) for text in labels) + 0.6
    fig = _mpl.new_figure(figsize=(max(len(columns) * cell + label_width + 2.0, 7.4), len(labels) * cell + 1.9),
                          layout="constrained")
    ax = fig.add_subplot()
    top = 1.0 if per_filter else limits[0]
    shown = ax.imshow(image, cmap=_mpl.colormap(DIVERGING, bad=GAP), norm=_mpl.colors().Normalize(-top, top),
                      interpolation="nearest")
    ax.set_xticks(col_centres, [str(c) for c in columns], fontsize=6 if cell < 0.3 else 8)
    ax.set_yticks(row_centres, labels, fontsize=6 if cell < 0.3 else 8)
    ax.tick_params(length=0, labeltop=True, top=False)
    ax.set_xlabel("input channel")
    beside = (["bias"] if has_bias else []) + (["±limit"] if per_filter else [])
    ax.set_ylabel("filter" + (f" ({', '.join(beside)})" if beside else ""))
    note, bar_label = _colour_words(label, per_filter, scale_note)
    _mpl.colour_bar(fig, shown, ax=ax, shrink=min(1.0, 6 / (len(labels) * cell + 1)), label=bar_label)
    width = fig.get_figwidth()
    fig.suptitle(wrap_title(title, width))
    fig.supxlabel("\n".join(textwrap.wrap(note, int(width / 0.065))), fontsize=8)
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
    caption_lines = max(text.count("\n") + 1 for text in labels)
    tile, caption, gap = 1.0, 0.12 + 0.1 * caption_lines, 0.12  # inches: image, its label above, space between
    right = 1.45 if bar_label else 0.15
    content = cols * tile + (cols - 1) * gap
    width = max(0.15 + content + right, 5.5)  # wide enough for the note under a few tiles
    left = (width - content - right + (0.15 if bar_label else 0)) / 2 if width > 0.15 + content + right else 0.15
    title = wrap_title(title, width)
    note = "\n".join(textwrap.wrap(note, int(width / 0.065)))
    top, bottom = 0.3 + 0.22 * (title.count("\n") + 1), 0.3 + 0.14 * (note.count("\n") + 1)
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


def curves_figure(history: dict, title=None, *, training_only=None):
    """Loss and accuracy (and any other metric) per epoch, training and validation, as a Figure.

    ``history`` is Keras's ``History.history`` / a run's ``history.json``: lists keyed
    "loss", "accuracy", "val_loss", "val_accuracy", ... With validation curves, a note says why the two differ:
    the training figure is the mean over the epoch's batches while the weights change, validation is measured
    after the epoch; ``training_only`` names the layers that act only in training (e.g. ``["dropout (rate
    0.5)"]``, from ``sources.training_only_layers``; None: not known, not mentioned).
    """
    if not isinstance(history, dict) or not history:
        raise ValueError("curves_figure expects a non-empty dict of per-epoch lists, e.g. {'loss': [...], ...}")
    for key, values in history.items():
        if not isinstance(values, (list, tuple, np.ndarray)) or len(values) == 0:
            raise ValueError(f"history[{key!r}] must be a non-empty list of numbers, received {values!r}")
    metrics = [k for k in history if not k.startswith("val_")] or [k[4:] for k in history]
    metrics.sort(key=lambda k: k != "loss")
    validated = any(f"val_{metric}" in history for metric in metrics)
    fig = _mpl.new_figure(figsize=(5.2 * len(metrics), 4.6 if validated else 4), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics):
        for key, name, style in ((metric, "training, epoch mean", "o-"), (f"val_{metric}", "validation, end of epoch",
                                                                           "s--")):
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
    if validated:
        note = training_versus_validation(history, training_only)
        fig.supxlabel("\n".join(textwrap.wrap(note, int(fig.get_figwidth() / 0.065))), fontsize=8)
    return fig


def training_versus_validation(history: dict, training_only=None) -> str:
    """Why a run's training and validation curves differ, with how often training looks worse here."""
    during = "" if not training_only else f", in training mode ({', '.join(training_only)} active)"
    after = "" if not training_only else ", in inference mode"
    note = (f"Training: the mean over each epoch's batches, measured while the weights were still changing{during}. "
            f"Validation: measured once after the epoch, with the epoch's final weights{after}.")
    if training_only == []:
        note += " The model has no dropout, batch normalization or augmentation: the gap comes from the averaging."
    worse = []
    for metric, below, word in (("accuracy", True, "below"), ("loss", False, "above")):
        train, val = history.get(metric), history.get(f"val_{metric}")
        if train is not None and val is not None and len(train) == len(val):
            train, val = np.asarray(train, dtype=np.float64), np.asarray(val, dtype=np.float64)
            count = int(np.sum(train < val) if below else np.sum(train > val))
            worse.append(f"training {metric} is {word} validation's in {count} of {len(train)} epochs")
    if worse:
        which = "Both make" if training_only else "That makes"
        note += f" {which} training look worse than the weights it ends with: here " + " and ".join(worse) + "."
    return note


def save_figure(fig, path, dpi: int = 120):
    """Write ``fig`` to ``path`` as a PNG, atomically (no half-written file), then close it; returns ``path``."""
    try:
        with atomic_write(path) as f:
            fig.savefig(f, format="png", dpi=dpi)
    finally:
        _mpl.close(fig)
    return path
